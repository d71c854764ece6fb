"""Mistakes in an inline task's files get a line that says what is wrong: a broken link, a JSON Lines file
read as CSV, a missing validation file (with the holdout way out)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app

ROWS = '{"text": "good film", "label": "pos"}\n{"text": "bad film", "label": "neg"}\n{"text": "great", "label": "pos"}\n'


def _check(tmp_path: Path, **define) -> tuple[int, str]:
    task = {"name": "reviews", "kind": "text_classification", "labels": ["neg", "pos"],
            "files": {"train": "data/train.jsonl", "validation": "data/dev.jsonl"}, **define}
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [{"define": task}], "schedule": {"max_steps": 2}}))
    result = CliRunner().invoke(app, ["check", str(config)])
    return result.exit_code, result.stderr.strip()


def _files(tmp_path: Path, dev: bool = True) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text(ROWS)
    if dev:
        (data / "dev.jsonl").write_text(ROWS)
    return data


def test_json_lines_read_as_csv_says_so(tmp_path):
    _files(tmp_path)
    code, line = _check(tmp_path, format="csv")
    assert code == 1 and len(line.splitlines()) == 1, line
    assert "the file looks like JSON Lines: set format: jsonl" in line and "did you mean" not in line, line


def test_a_missing_validation_file_suggests_holdout(tmp_path):
    _files(tmp_path, dev=False)
    code, line = _check(tmp_path)
    assert code == 1 and "no file matches" in line and "dev.jsonl" in line and "holdout: 0.1" in line, line
    code, line = _check(tmp_path, files={"train": "data/train.jsonl"})  # a definition without validation: not this error
    assert "holdout: 0.1" not in line


def test_a_broken_link_is_named_with_its_target(tmp_path):
    data = _files(tmp_path, dev=False)
    os.symlink(tmp_path / "gone" / "dev.jsonl", data / "dev.jsonl")
    code, line = _check(tmp_path)
    assert code == 1 and len(line.splitlines()) == 1, line
    assert "dev.jsonl is a broken link: it points to" in line and "gone" in line and "did you mean" not in line, line


def test_a_data_file_that_is_a_folder_says_so(tmp_path):
    """A folder named like a data file got "no file matches ... (did you mean 'train_long.jsonl'?)"."""
    data = _files(tmp_path)
    (data / "dev.jsonl").unlink()
    (data / "dev.jsonl").mkdir()
    (data / "dev.jsonl" / "part-0.jsonl").write_text(ROWS)
    code, line = _check(tmp_path)
    assert code == 1 and len(line.splitlines()) == 1, line
    assert f"{data / 'dev.jsonl'} is a folder, not a file (holding part-0.jsonl); name the data file itself" in line, line
