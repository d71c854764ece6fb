"""Python API gaps from a user audit: ``smoke_train`` with a Task that is not registered (from
``tasks_from_yaml``), and a main_metric that is not among the task's metrics ("did you mean")."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.errors import ConfigError, MtError
from mtcore.task import Task
from mtcore.testing import smoke_train
from mtcore.yaml_tasks import tasks_from_yaml

ROWS = "".join(f'{{"review": "{text}", "label": "{label}"}}\n' for text, label in
               [("Lovely tea", "positive"), ("Awful smell", "negative"), ("Nice", "positive"), ("Bad", "negative")])


def lowercase(row):
    """A module-level preprocessing step: a smoke run names it 'module:function' in its config."""
    return {**row, "review": row["review"].lower()}


@pytest.fixture
def yaml_task(tmp_path):
    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text(ROWS)
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump({"tasks": [{
        "name": "reviews", "kind": "text_classification", "labels": ["negative", "positive"], "inputs": {"text": "review"},
        "files": {"train": "train.jsonl", "validation": "validation.jsonl"}}]}))
    (task,) = tasks_from_yaml(tmp_path / "tasks.yaml")
    return task


def test_smoke_train_trains_a_task_from_tasks_from_yaml_beside_a_registered_one(yaml_task, tmp_path):
    result = smoke_train([yaml_task.replace(preprocess=(lowercase,)), "rsg:terra"], output_dir=tmp_path / "run", steps=2)
    assert result.steps == 2 and sorted(result.metrics) == ["rsg:terra", "user:reviews"]
    saved = yaml.safe_load((result.output_dir / "config.yaml").read_text())
    assert saved["tasks"][0]["define"]["preprocess"] == [f"{__name__}:lowercase"]


def test_smoke_train_refuses_a_task_whose_code_has_no_name_in_one_line(yaml_task, tmp_path):
    with pytest.raises(MtError) as caught:
        smoke_train(yaml_task.replace(preprocess=(lambda row: row,)), output_dir=tmp_path / "run", steps=1)
    message = str(caught.value)
    assert message.startswith("task 'reviews' is not registered, and its preprocessing step ") and "<lambda>" in message
    assert "give it a module-level function, or register the task and pass its id" in message
    assert not (tmp_path / "run").exists()


def test_a_main_metric_not_among_the_metrics_gets_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Task(name="toxic", kind="text_classification", labels=("ok", "toxic"), metrics=("accuracy", "f1_macro"), main_metric="f1")
    assert "main_metric 'f1' is not among its metrics ['accuracy', 'f1_macro'] (did you mean 'f1_macro'?)" in str(caught.value)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [{"id": "rsg:terra"}], "schedule": {"max_steps": 2}}))
    result = CliRunner().invoke(app, ["check", str(config), "tasks.0.main_metric=f1"])
    line = result.stderr.strip()
    assert result.exit_code == 2 and len(line.splitlines()) == 1, result.output
    assert "main_metric 'f1' is not among its metrics" in line and "(did you mean 'f1_macro'?)" in line, line
