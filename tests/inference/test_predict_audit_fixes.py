"""``mt predict`` audit fixes: a plugin writer's returned paths are checked; duplicate ids in ``--input`` are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _one_error_line(result, *parts: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output, result.output
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---- a plugin writer must write what it returns, under the path it is given ---------------------------------------


def _returns_unwritten(task, rows, output_path):
    return [output_path]


def _returns_none(task, rows, output_path):
    Path(output_path).write_text("x\n")


def _returns_nothing(task, rows, output_path):
    return []


def _returns_a_string(task, rows, output_path):
    Path(output_path).write_text("x\n")
    return str(output_path)


def _writes_beside(task, rows, output_path):
    leak = Path("leak.tsv")
    leak.write_text("".join(f"{row['idx']}\n" for row in rows))
    return [leak]


@pytest.mark.parametrize("writer, name, part", [
    (_returns_unwritten, "unwritten_test", "returned new/out.tsv but wrote no such file"),
    (_returns_none, "none_test", "returned None, not a list of the paths it wrote"),
    (_returns_nothing, "empty_test", "returned no paths: it wrote no predictions"),
    (_returns_a_string, "string_test", "not a list of the paths it wrote"),
    (_writes_beside, "beside_test", "returned 'leak.tsv', outside the output it was given (new/out.tsv)"),
])
def test_a_plugin_writer_that_did_not_write_what_it_returned_fails_and_leaves_nothing(cli, bert_model_dir, reviews_file, tmp_path,
                                                                                       monkeypatch, writer, name, part):
    from mtcore.plugins import register_component

    register_component("writer", name, writer)
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "new/out.tsv", "--format", name)
    assert result.exit_code == 1, result.output
    assert "wrote" not in result.stdout
    _one_error_line(result, f"writer 'user:{name}' (plugin 'user')", part, "nothing was written")
    assert _listing(tmp_path) == before  # no new/ folder, no hidden staging folder, no leak.tsv (the file it created beside)


# ---- an id given twice in an --input file is refused, whatever the format -------------------------------------------


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt, output", [("jsonl", None), ("csv", "p.csv")])
def test_an_idx_given_twice_is_refused_naming_the_file_id_and_both_rows(cli, bert_model_dir, tmp_path, monkeypatch, fmt, output):
    monkeypatch.chdir(tmp_path)
    path = _jsonl(tmp_path / "dup.jsonl", [{"review": "good movie", "idx": 1}, {"review": "so so", "idx": 2},
                                            {"review": "bad movie", "idx": 1}])
    before = _listing(tmp_path)
    args = ["-o", output] if output else []
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", path, "--format", fmt, *args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # refused before any prediction
    _one_error_line(result, f"{path} row 3 has idx 1, as {path} row 1 has", "give every row its own idx")
    assert _listing(tmp_path) == before


def test_an_idx_repeated_in_a_later_chunk_is_refused(cli, bert_model_dir, tmp_path, monkeypatch):
    from mtcore.predict import chunks

    monkeypatch.setattr(chunks, "CHUNK_ROWS", 2)
    rows = [{"review": "good movie", "idx": f"r{i}"} for i in range(5)] + [{"review": "bad movie", "idx": "r0"}]
    path = _jsonl(tmp_path / "dup.jsonl", rows)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", path, "-o", tmp_path / "p.jsonl")
    assert result.exit_code == 1, result.output
    _one_error_line(result, f'{path} row 6 has idx "r0", as {path} row 1 has')
    assert not (tmp_path / "p.jsonl").exists()


def test_an_rsg_submission_with_an_idx_given_twice_is_refused_and_writes_nothing(cli, trained_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _jsonl(tmp_path / "dupidx.jsonl", [{"premise": "a", "hypothesis": "b", "idx": 1},
                                               {"premise": "c", "hypothesis": "d", "idx": 1}])
    before = _listing(tmp_path)
    result = cli("predict", trained_run, "--task", "rsg:terra", "-i", path, "--format", "rsg", "-o", "subdup/")
    assert result.exit_code == 1, result.output
    _one_error_line(result, f"{path} row 2 has idx 1, as {path} row 1 has")
    assert _listing(tmp_path) == before  # no subdup/ folder
