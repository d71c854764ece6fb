"""A missing split file's "did you mean" points at that split's file (dev.jsonl for validation.jsonl),
never at another split's own file, and when the near file is in another format it says how to read it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.plugins import load_registry

ROWS = '{"text": "good film", "label": "pos"}\n{"text": "bad film", "label": "neg"}\n{"text": "great", "label": "pos"}\n'
DEFINE = {"name": "reviews", "kind": "text_classification", "labels": ["neg", "pos"],
          "files": {"train": "data/train.jsonl", "validation": "data/validation.jsonl"}}

PLUGIN = '''
from mtcore.hookspecs import hookimpl
from mtcore.task import Source, Task


@hookimpl
def mt_register_tasks(register):
    register(Task(name="comments", kind="text_classification", labels=("neg", "pos"),
                  sources={"local": Source.local("csv", {"train": "train.csv", "validation": "dev.csv"})}))
'''


def _check(tmp_path: Path, config: dict, *overrides: str) -> tuple[int, str]:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, **config}))
    result = CliRunner().invoke(app, ["check", str(path), *overrides])
    return result.exit_code, result.stderr.strip()


def _data(tmp_path: Path, *names: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name in names:
        (data / name).write_text(ROWS)
    return data


def test_a_missing_validation_file_suggests_the_dev_file_not_the_train_file(tmp_path):
    _data(tmp_path, "train.jsonl", "dev.jsonl", "ner_train.jsonl", "ner_dev.jsonl")
    code, line = _check(tmp_path, {"tasks": [{"define": DEFINE}]})
    assert code == 1 and len(line.splitlines()) == 1, line
    assert "no file matches" in line and "validation.jsonl' (did you mean 'dev.jsonl'?)" in line, line


def test_another_splits_file_is_never_offered_as_the_missing_one(tmp_path):
    _data(tmp_path, "train.jsonl")
    code, line = _check(tmp_path, {"tasks": [{"define": DEFINE}]})
    assert code == 1 and len(line.splitlines()) == 1, line
    assert "did you mean" not in line and "the folder holds 'train.jsonl'" in line and "holdout: 0.1" in line, line


@pytest.fixture
def csv_plugin(tmp_path):
    """A plugin whose task reads CSV files (train.csv, dev.csv) under data_dir, on sys.path."""
    root = tmp_path / "site"
    (root / "mt_ux15_csv").mkdir(parents=True)
    (root / "mt_ux15_csv" / "__init__.py").write_text("")
    (root / "mt_ux15_csv" / "plugin.py").write_text(PLUGIN)
    dist = root / "mt_ux15_csv-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mt-ux15-csv\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[mtcore]\nux15csv = mt_ux15_csv.plugin\n")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    load_registry(refresh=True, warn=False)
    yield "ux15csv:comments"
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m.startswith("mt_ux15_csv")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    load_registry(refresh=True, warn=False)


def test_a_file_in_another_format_names_the_format_and_the_override_that_reads_it(tmp_path, csv_plugin):
    data = _data(tmp_path, "train.jsonl", "dev.jsonl")
    entry = {"id": csv_plugin, "source": "local", "data_dir": str(data)}
    code, line = _check(tmp_path, {"tasks": [entry]})
    assert code == 1 and len(line.splitlines()) == 1, line
    override = "sources: {local: {format: jsonl, files: {train: train.jsonl, ...}}}"
    assert "no file matches 'train.csv'; the folder has 'train.jsonl', but this split is read as csv" in line, line
    assert f"to read the jsonl file, set the task entry's {override}" in line and "did you mean" not in line, line
    # the override it names is real: with the other split filled in, the same entry reads the files
    entry["sources"] = yaml.safe_load(override.replace("sources: ", "").replace(", ...", ", validation: dev.jsonl"))
    code, line = _check(tmp_path, {"tasks": [entry]})
    assert code == 0, line
