"""``mt predict --split`` on data whose rows repeat an idx wrote every prediction silently; a submission joined by id
keeps one of each. An ``--input`` file with repeats is refused; a split's data is the dataset's, so it gets a warning."""

from __future__ import annotations

import json


def test_a_split_whose_rows_repeat_an_idx_is_predicted_with_a_warning(cli, tmp_path):
    from mtcore import Trainer

    rows = [{"idx": i % 5, "text": f"слово {i}", "label": "a" if i % 2 else "b"} for i in range(8)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = {"encoder": {"tiny": "bert"}, "cpu": True, "schedule": {"max_steps": 1}, "checkpoint": {"every": None},
              "evaluation": {"at_end": False}, "logging": {"progress": "none", "plot": False},
              "tasks": [{"define": {"name": "ids", "kind": "text_classification", "labels": ["a", "b"],
                                    "files": {"train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "train.jsonl")}}}]}
    Trainer(config, output_dir=tmp_path / "run").train()
    result = cli("predict", tmp_path / "run", "--split", "validation", "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    assert ("warning: task user:ids's validation split (local): 3 prediction rows repeat an idx an earlier row has (the first: 0); "
            "a submission or a join by idx keeps one prediction of each") in result.stderr
    assert [json.loads(line)["idx"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == [r["idx"] for r in rows]
