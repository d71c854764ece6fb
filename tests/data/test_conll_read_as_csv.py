"""A CoNLL file read as CSV (a token task given format: csv) is named as CoNLL, with the fix."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


def test_a_conll_file_read_as_csv_says_it_looks_like_conll(tmp_path: Path):
    for name in ("train.conll", "dev.conll"):
        (tmp_path / name).write_text("Today O\nAnna B-PER\n\nParis B-LOC\n", encoding="utf-8")
    define = {"name": "ner", "kind": "token_classification", "labels": ["O", "B-PER", "B-LOC"],
              "files": {"train": "train.conll", "validation": "dev.conll"}, "format": "csv"}
    config = tmp_path / "ner.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [{"define": define}], "schedule": {"max_steps": 2}}))
    result = CliRunner().invoke(app, ["check", str(config)])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert "the row has one field 'Today O'; the file looks like CoNLL (a token and its tags per line): set format: conll" in line
    define["format"] = "conll"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [{"define": define}], "schedule": {"max_steps": 2}}))
    assert CliRunner().invoke(app, ["check", str(config)]).exit_code == 0
