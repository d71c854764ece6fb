"""What a run tells about itself: config differences in ``mt compare``, each task's own best, the gradient norm,
and ``mt check``'s warnings and notes about selecting on test and about ``mt export``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app

TASKS = ["rsg:terra", "rsg:parus"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two 4-step runs: one clipping every gradient (max_grad_norm 1e-6, not evaluated), one not clipping,
    evaluated every step."""
    from mtcore.testing import smoke_train

    root = tmp_path_factory.mktemp("diagnostics")
    made = {}
    for name, overrides, evaluate in (("clipped", ["optimizer.max_grad_norm=1e-6"], False),
                                      ("free", ["optimizer.max_grad_norm=null", "optimizer.lr=5e-3", "evaluation.every=1"], True)):
        made[name] = smoke_train(TASKS, output_dir=root / name, steps=4, batch_size=4, evaluate=evaluate,
                                 overrides=[*overrides, "logging.every=2"]).output_dir
    return made


def _events(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event["event"] == kind]


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text(encoding="utf-8"))


def test_compare_lists_the_config_keys_that_differ_from_the_first_run(runs):
    result = CliRunner().invoke(app, ["compare", str(runs["clipped"]), str(runs["free"]), "--json"])
    assert result.exit_code == 0, result.stderr
    first, second = json.loads(result.stdout)
    assert first["differs"] == {}  # the reference
    assert second["differs"] == {"optimizer.lr": 5e-3, "optimizer.max_grad_norm": None,  # output_dir and logging left out
                                 "evaluation.every": 1, "evaluation.at_end": True}
    table = CliRunner().invoke(app, ["compare", str(runs["clipped"]), str(runs["free"])], env={"COLUMNS": "300"})
    assert table.exit_code == 0, table.stderr
    assert "differs" in table.stdout and "optimizer.lr=0.005" in table.stdout and "optimizer.max_grad_norm=null" in table.stdout


def test_the_summary_records_each_tasks_own_best_beside_the_best_aggregates_figures(runs):
    summary = _summary(runs["free"])
    evals = _events(runs["free"], "eval")
    assert len(evals) == 4
    for task in TASKS:
        info = summary["tasks"][task]
        main = info["main_metric"]
        values = [(event["metrics"][f"{task}/{main}"], event["step"]) for event in evals]
        top = max(value for value, _ in values)
        assert info["own_best"] == {"step": next(step for value, step in values if value == top), "metric": main, "value": top}
        assert info["best_step"] == summary["best"]["step"]  # "best" is taken at the best aggregate's step


def test_compare_best_says_it_is_the_best_aggregate_and_shows_each_tasks_own_best(runs, tmp_path):
    result = CliRunner().invoke(app, ["compare", str(runs["free"]), "--best", "--json"])
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    summary = _summary(runs["free"])
    assert row["best_step"] == summary["best"]["step"]
    assert row["own_best"] == {task: summary["tasks"][task]["own_best"] for task in TASKS}
    table = CliRunner().invoke(app, ["compare", str(runs["free"]), "--best"], env={"COLUMNS": "300"})
    assert table.exit_code == 0 and "best aggregate" in table.stdout and "best at" in table.stdout
    own = summary["tasks"]["rsg:terra"]["own_best"]
    assert f"rsg:terra {own['metric']} {own['value']:.4f} at step {own['step']}" in table.stdout
    # a summary written before own_best existed still compares
    old = tmp_path / "old"
    old.mkdir()
    for task in TASKS:
        del summary["tasks"][task]["own_best"], summary["tasks"][task]["best_step"]
    (old / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    result = CliRunner().invoke(app, ["compare", str(old), str(runs["free"]), "--best", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["own_best"] is None and rows[0]["differs"] is None and rows[1]["differs"] is None  # no config.yaml to compare


def test_train_events_carry_the_gradient_norm_before_clipping_at_logging_steps(runs):
    clipped, free = _events(runs["clipped"], "train"), _events(runs["free"], "train")
    assert {event["step"] for event in clipped} == {2, 4}
    assert all(isinstance(event["grad_norm"], float) and event["grad_norm"] > 0 for event in clipped + free)
    # clipped to 1e-6 every step, the weights barely move: the norm logged is the one before clipping, far above it
    assert all(event["grad_norm"] > 1e-3 for event in clipped)


def test_the_gradient_norm_is_the_same_whether_or_not_the_run_clips(tmp_path):
    """Step 1 (logging every step): the norm clip_grad_norm_ returns and the one computed without clipping agree."""
    from mtcore.testing import smoke_train

    norms = []
    for name, clip in (("a", "1e-6"), ("b", "null")):
        run = smoke_train(TASKS, output_dir=tmp_path / name, steps=1, batch_size=4,
                          overrides=[f"optimizer.max_grad_norm={clip}", "logging.every=1"]).output_dir
        norms.append([event["grad_norm"] for event in _events(run, "train") if event["step"] == 1][0])
    assert norms[0] == pytest.approx(norms[1], rel=1e-5) and norms[0] > 1e-3


def _config(tmp_path: Path, tasks: list) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "tasks": tasks}), encoding="utf-8")
    return path


def test_check_warns_when_the_run_would_select_on_the_test_split(tmp_path):
    config = str(_config(tmp_path, ["rsg:terra"]))
    result = CliRunner().invoke(app, ["check", config, "--no-data", "evaluation.split=test", "evaluation.every=2",
                                      "evaluation.early_stopping_patience=2"])
    assert result.exit_code == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "evaluation.split is 'test'" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ")
    assert "early stopping" in warned[0] and "mt evaluate RUN --split test" in warned[0]
    for quiet in (["evaluation.split=validation", "evaluation.every=2", "evaluation.early_stopping_patience=2"],
                  ["evaluation.split=test"],  # evaluated at the end only: nothing is chosen by it
                  ["evaluation.split=test", "evaluation.every=2", "checkpoint.keep_best=false"]):
        result = CliRunner().invoke(app, ["check", config, "--no-data", *quiet])
        assert result.exit_code == 0 and "evaluation.split is 'test'" not in result.stderr, (quiet, result.stderr)


def test_check_notes_each_head_mt_export_would_refuse(tmp_path):
    config = _config(tmp_path, [{"id": "rsg:terra", "source": "sample"},  # CLS pooling, no pooler: BERT's classifier differs
                                {"id": "rsg:parus", "source": "sample"}])
    result = CliRunner().invoke(app, ["check", str(config), "tasks.1.head_options={pooling: pooler}"])
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: mt export")]
    assert len(notes) == 1, result.stdout
    assert "task 'rsg:terra' cannot be exported as a plain BertForSequenceClassification" in notes[0]
    assert "head_options {pooling: pooler}" in notes[0]
    result = CliRunner().invoke(app, ["check", str(config), "tasks.0.head_options={pooling: pooler}",
                                      "tasks.1.head_options={pooling: pooler}"])
    assert result.exit_code == 0 and "note: mt export" not in result.stdout, result.stdout


def test_compare_says_which_tasks_came_and_went_where_the_task_lists_differ(runs, tmp_path):
    """A run of other tasks showed `tasks=[{"id":"rsg:terra","define":n...` (a task entry's JSON cut at 32 characters)."""
    import shutil

    import yaml

    other = shutil.copytree(runs["free"], tmp_path / "other-tasks")
    config = yaml.safe_load((other / "config.yaml").read_text(encoding="utf-8"))
    kept = config["tasks"][0]
    config["tasks"] = [kept, *({**kept, "id": None, "define": {"name": name, "kind": "text_classification"}} for name in ("mine", "yours"))]
    (other / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    table = CliRunner().invoke(app, ["compare", str(runs["free"]), str(other)], env={"COLUMNS": "300"})
    assert table.exit_code == 0, table.stderr
    assert f"tasks +user:mine +user:yours -{TASKS[1]}" in table.stdout, table.stdout
    assert '"define"' not in table.stdout
    [_, row] = json.loads(CliRunner().invoke(app, ["compare", str(runs["free"]), str(other), "--json"]).stdout)
    assert row["differs"]["tasks"] == config["tasks"] and "tasks_changed" not in row  # --json keeps the whole entries


def test_compare_shows_a_kept_tasks_changed_settings_beside_the_tasks_that_came_and_went(runs, tmp_path):
    """With another task list, a task both runs trained with another max_length showed only `tasks -<the other>`."""
    import shutil

    import yaml

    other = shutil.copytree(runs["free"], tmp_path / "fewer-tasks")
    config = yaml.safe_load((other / "config.yaml").read_text(encoding="utf-8"))
    kept = {**config["tasks"][0], "max_length": 17}
    config["tasks"] = [kept]
    (other / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    table = CliRunner().invoke(app, ["compare", str(runs["free"]), str(other)], env={"COLUMNS": "300"})
    assert table.exit_code == 0, table.stderr
    assert f"tasks -{TASKS[1]} {TASKS[0]}.max_length=17" in table.stdout, table.stdout


def test_check_notes_many_heads_mt_export_would_refuse_once(tmp_path):
    """48 inline tasks printed 40 notes of the same advice, about 300 characters each (a scale audit)."""
    rows = tmp_path / "d.jsonl"
    rows.write_text('{"text": "a b", "label": "x"}\n{"text": "b c", "label": "y"}\n', encoding="utf-8")
    tasks = [{"define": {"name": f"t{i}", "kind": "text_classification", "labels": ["x", "y"],
                         "files": {"train": str(rows), "validation": str(rows)}}} for i in range(5)]
    result = CliRunner().invoke(app, ["check", str(_config(tmp_path, tasks))])
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: mt export")]
    assert notes == [next(line for line in notes)] and notes[0].startswith(
        "note: mt export (after training): 5 tasks cannot be exported as plain transformers models (user:t0, user:t1, user:t2, ...); "
        "the first: task 'user:t0' cannot be exported as a plain BertForSequenceClassification"), result.stdout
