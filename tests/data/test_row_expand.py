"""``row_expand``: a reader option that turns each record of a nested layout into the rows it holds."""

from __future__ import annotations

import importlib
import sys

import pytest

from mtcore.data.readers import iter_rows
from mtcore.data.task_data import load_raw
from mtcore.errors import ConfigError, DataError
from mtcore.task import Source, Task

PASSAGES = [{"id": 1, "text": "Кот спит.", "questions": [{"q": "Кто спит?", "a": "кот"}, {"q": "Что делает?", "a": "спит"}]},
            {"id": 2, "text": "Пёс лает.", "questions": [{"q": "Кто лает?", "a": "пёс"}]}]


def per_question(record):
    for number, question in enumerate(record["questions"]):
        yield {"context": record["text"], "question": question["q"], "answer": question["a"], "idx": [record["id"], number]}


def test_each_record_becomes_its_rows_numbered_by_the_record(tmp_path, write):
    path = write.jsonl(tmp_path / "d.jsonl", PASSAGES)
    rows = list(iter_rows(path, row_expand=per_question))
    assert [(n, r["question"]) for n, r in rows] == [(1, "Кто спит?"), (1, "Что делает?"), (2, "Кто лает?")]
    kept = list(iter_rows(path, row_expand=per_question, row_filter={"answer": "пёс"}))  # the filter sees the expanded rows
    assert [(n, r["idx"]) for n, r in kept] == [(2, [2, 0])]


def test_a_record_the_expander_cannot_read_names_file_and_row(tmp_path, write):
    path = write.jsonl(tmp_path / "d.jsonl", [PASSAGES[0], {"id": 3, "text": "Без вопросов."}])
    with pytest.raises(DataError, match=r"d\.jsonl row 2: missing field 'questions' \(row_expand per_question\)"):
        list(iter_rows(path, row_expand=per_question))


def test_alias_and_bad_reference_are_one_line(tmp_path, write):
    path = write.jsonl(tmp_path / "d.jsonl", PASSAGES)
    with pytest.raises(ConfigError, match="did you mean 'row_expand'"):
        list(iter_rows(path, expand=per_question))
    with pytest.raises(ConfigError, match="row_expand must be a 'module:function'"):
        list(iter_rows(path, row_expand=42))
    with pytest.raises(ConfigError, match=r"row_expand 'operator:itemgeter2': .*has no attribute 'itemgeter2'.*did you mean 'itemgetter'"):
        list(iter_rows(path, row_expand="operator:itemgeter2"))


def test_an_expander_edited_between_runs_is_not_served_from_the_cache(tmp_path, write, cache_dir, monkeypatch):
    module = tmp_path / "mt_expand_edit_test.py"
    source = "def rows(record):\n    for q in record['questions']:\n        yield {'text': q['%s'], 'label': 'a'}\n"
    module.write_text(source % "q")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("mt_expand_edit_test")
    data = tmp_path / "data"
    write.jsonl(data / "train.jsonl", PASSAGES)
    task = Task(name="x", kind="text_classification", labels=("a", "b"),
                sources={"local": Source.local("jsonl", {"train": "train.jsonl"}, row_expand="mt_expand_edit_test:rows")})
    first = load_raw(task, "local", data_dir=data, splits=("train",), cache_dir=cache_dir)["train"]
    assert [r["text"] for r in first] == ["Кто спит?", "Что делает?", "Кто лает?"]
    module.write_text(source % "a")
    sys.modules.pop("mt_expand_edit_test")
    importlib.import_module("mt_expand_edit_test")
    second = load_raw(task, "local", data_dir=data, splits=("train",), cache_dir=cache_dir)["train"]
    assert [r["text"] for r in second] == ["кот", "спит", "пёс"]


def test_a_run_of_an_inline_task_predicts_a_nested_file_as_it_read_its_data(tmp_path, write, monkeypatch):
    """mt predict --input with the run's config: the inline task's row_expand flattens the file (the model file keeps no sources)."""
    import json

    import yaml
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    (tmp_path / "mt_expand_cli_test.py").write_text(
        "def rows(record):\n    for q in record['questions']:\n        yield {'text': q['q'], 'label': q['a']}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    records = [{"id": i, "questions": [{"q": f"кот спит {i}", "a": "yes"}, {"q": f"кот не спит {i}", "a": "no"}]} for i in range(8)]
    write.jsonl(tmp_path / "train.jsonl", records)
    config = {"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "evaluation": {"every": 100},
              "tasks": [{"define": {"name": "nested", "kind": "text_classification", "labels": ["no", "yes"],
                                    "files": {"train": "train.jsonl"}, "reader": {"row_expand": "mt_expand_cli_test:rows"}}}]}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "run.yaml", "--output-dir", "run"])
    assert trained.exit_code == 0, trained.output
    predicted = runner.invoke(app, ["predict", "run", "--input", "train.jsonl"])
    assert predicted.exit_code == 0, predicted.output
    rows = [json.loads(line) for line in predicted.stdout.splitlines() if line.strip()]
    assert len(rows) == 16 and {r["label"] for r in rows} <= {"no", "yes"}
