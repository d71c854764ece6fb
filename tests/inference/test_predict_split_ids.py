"""``mt predict --split`` on data whose rows repeat an idx wrote every prediction silently; a submission joined by id
keeps one of each. An ``--input`` file with repeats is refused; a split's data is the dataset's, so it gets a warning."""

from __future__ import annotations

import json


def _train_on(tmp_path, name, rows) -> None:
    """A one-step run in tmp_path/run of a task ``user:<name>`` whose train and validation split are ``rows``."""
    from mtcore import Trainer

    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = {"encoder": {"tiny": "bert"}, "cpu": True, "schedule": {"max_steps": 1}, "checkpoint": {"every": None},
              "evaluation": {"at_end": False}, "logging": {"progress": "none", "plot": False},
              "tasks": [{"define": {"name": name, "kind": "text_classification", "labels": ["a", "b"],
                                    "files": {"train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "train.jsonl")}}}]}
    Trainer(config, output_dir=tmp_path / "run").train()


def test_a_split_whose_rows_repeat_an_idx_is_predicted_with_a_warning(cli, tmp_path):
    rows = [{"idx": i % 5, "text": f"слово {i}", "label": "a" if i % 2 else "b"} for i in range(8)]
    _train_on(tmp_path, "ids", rows)
    result = cli("predict", tmp_path / "run", "--split", "validation", "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    assert ("warning: task user:ids's validation split (local): 3 prediction rows repeat an idx an earlier row has (the first: 0); "
            "a submission or a join by idx keeps one prediction of each") in result.stderr
    assert [json.loads(line)["idx"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == [r["idx"] for r in rows]


def test_a_split_is_predicted_and_written_a_chunk_at_a_time_as_an_input_file_is(cli, tmp_path, monkeypatch):
    """`mt predict --split` held every prediction row before writing (a 10,000-label model: 5.4 GB for 6,000 rows; a
    scale audit); now mtcore's jsonl/csv writers take each chunk as it comes, the output as one pass's, ids numbered on."""
    from mtcore.predict import chunks, writers

    _train_on(tmp_path, "s", [{"text": f"слово {i} {'да' * (i % 4)}", "label": "a" if i % 2 else "b"} for i in range(23)])  # no ids
    for fmt in ("jsonl", "csv"):
        whole = cli("predict", tmp_path / "run", "--split", "validation", "-o", tmp_path / f"whole.{fmt}")
        assert whole.exit_code == 0, whole.output
    calls: list[int] = []
    for name in ("JsonlSink", "CsvSink"):
        add = getattr(writers, name).add
        monkeypatch.setattr(getattr(writers, name), "add", lambda self, rows, _add=add: (calls.append(len(rows)), _add(self, rows))[1])
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 5)
    for fmt in ("jsonl", "csv"):
        calls.clear()
        result = cli("predict", tmp_path / "run", "--split", "validation", "-o", tmp_path / f"chunked.{fmt}")
        assert result.exit_code == 0, result.output
        assert "wrote 23 predictions of user:s" in result.stderr and calls == [5, 5, 5, 5, 3], calls
        assert (tmp_path / f"chunked.{fmt}").read_text(encoding="utf-8") == (tmp_path / f"whole.{fmt}").read_text(encoding="utf-8")
    assert [json.loads(line)["idx"] for line in (tmp_path / "chunked.jsonl").read_text().splitlines()] == list(range(23))
    calls.clear()  # --task all into a folder: the same chunks, into the same all-or-none folder
    result = cli("predict", tmp_path / "run", "--task", "all", "--split", "validation", "-o", tmp_path / "folder")
    assert result.exit_code == 0, result.output
    assert calls == [5, 5, 5, 5, 3], calls
    assert (tmp_path / "folder" / "user_s.jsonl").read_text(encoding="utf-8") == (tmp_path / "whole.jsonl").read_text(encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["user_s.jsonl"]  # no hidden .mt-write-* left
