"""A checkpoint records each task's labels: resuming, or scoring the checkpoint, with other labels now (a plugin that
reordered its list) is one line, never a head whose outputs are read as the wrong labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtcore import Trainer
from mtcore.cli.app import app
from mtcore.errors import ConfigError


def test_a_checkpoint_trained_with_other_labels_is_refused_by_resume_and_by_evaluate(tmp_path: Path, make_config):
    Trainer(make_config(), output_dir=tmp_path / "run").train()
    (tmp_path / "run" / "summary.json").unlink()  # as if it had stopped
    checkpoint = tmp_path / "run" / "checkpoints" / "step-000006"
    state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
    assert state["task_labels"]["user:sent"] == ["negative", "positive"] and state["task_labels"]["user:pair"] == ["different", "same"]
    evaluated = CliRunner().invoke(app, ["evaluate", str(checkpoint), "--json"])
    assert evaluated.exit_code == 0, evaluated.output  # as recorded: scored
    # the run trained 'sent' with its labels the other way round (as a plugin's earlier version listed them)
    state["task_labels"]["user:sent"] = ["positive", "negative"]
    (checkpoint / "state.json").write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"task 'user:sent' was trained with the labels \[positive, negative\] \(2\) and has "
                                          r"\[negative, positive\] \(2\) now .*start a new run"):
        Trainer(make_config(), output_dir=tmp_path / "run", resume=True).train()
    for command in (["evaluate", str(checkpoint)], ["predict", str(checkpoint), "--task", "user:sent", "--split", "validation"]):
        refused = CliRunner().invoke(app, command)
        assert refused.exit_code == 2 and ("error: task 'user:sent' has the labels ['negative', 'positive'] now, and its head was "
                                           "trained with ['positive', 'negative']") in refused.stderr, refused.output
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.output
    # the other tasks are scored (the whole checkpoint was refused)
    scored = CliRunner().invoke(app, ["evaluate", str(checkpoint), "--tasks", "user:pair", "--json"])
    assert scored.exit_code == 0, scored.output
    assert set(json.loads(scored.stdout)["tasks"]) == {"user:pair"}
    predicted = CliRunner().invoke(app, ["predict", str(checkpoint), "--task", "user:pair", "--split", "validation"])
    assert predicted.exit_code == 0 and len(predicted.stdout.splitlines()) == 16, predicted.output


def test_the_start_event_records_the_versions_the_run_trained_with(tmp_path: Path, make_config, helpers):
    from importlib.metadata import version

    Trainer(make_config(schedule={"max_steps": 2, "warmup_steps": 0}), output_dir=tmp_path / "run").train()
    [start] = [e for e in helpers.read_events(tmp_path / "run") if e["event"] == "start"]
    versions = start["versions"]
    assert versions["torch"] == version("torch") and versions["transformers"] == version("transformers")
    assert versions["mtcore"] == version("mtcore") and versions["python"].count(".") == 2
    assert versions["plugins"]["mt-russian-superglue"] == version("mt-russian-superglue")  # an installed plugin distribution
    assert "mtcore" not in versions["plugins"] and "gpu" not in versions  # no GPU here


def test_a_run_model_whose_task_labels_changed_is_refused_by_evaluate_and_predict(tmp_path: Path, make_config):
    """The checkpoints were refused, and the run's own model/ scored with the plugin's new order: wrong labels, exit 0."""
    Trainer(make_config(schedule={"max_steps": 2, "warmup_steps": 0}), output_dir=tmp_path / "run").train()
    manifest_path = tmp_path / "run" / "model" / "mtcore.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["tasks"]["user:sent"]["labels"] = ["positive", "negative"]  # as trained by the plugin's earlier version
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    for command in (["evaluate", str(tmp_path / "run")], ["predict", str(tmp_path / "run"), "--task", "user:sent", "--split", "validation"]):
        refused = CliRunner().invoke(app, command)
        assert refused.exit_code == 2, refused.output
        assert refused.stderr.strip().splitlines()[-1] == (
            "error: task 'user:sent' has the labels ['negative', 'positive'] now, and its head was trained with ['positive', "
            "'negative'] (its plugin or its labels changed since?), so the head's outputs would be read as other labels: the labels "
            "must be the same, in the same order; use the plugin version and labels the model trained with")
    other = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), "--tasks", "user:pair", "--json"])
    assert other.exit_code == 0, other.output  # the tasks whose labels did not change are scored


def test_a_warm_start_from_a_checkpoint_gives_a_changed_task_a_new_head_and_loads_the_others(tmp_path: Path, make_config, helpers):
    """A new run from a checkpoint was refused as a resume is ("start a new run", which it was)."""
    Trainer(make_config(), output_dir=tmp_path / "run").train()
    checkpoint = tmp_path / "run" / "checkpoints" / "step-000006"
    state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
    state["task_labels"]["user:sent"] = ["positive", "negative"]
    (checkpoint / "state.json").write_text(json.dumps(state), encoding="utf-8")
    config = make_config(encoder={"path": str(checkpoint), "load_heads": True}, schedule={"max_steps": 1, "warmup_steps": 0})
    Trainer(config, output_dir=tmp_path / "warm").train()
    [start] = [e for e in helpers.read_events(tmp_path / "warm") if e["event"] == "start"]
    assert any("task 'user:sent' differs from the saved one (labels: ['negative', 'positive'] here, ['positive', 'negative'] saved)"
               in note for note in start["notes"]), start["notes"]
    assert any("trained heads of user:pair, user:mc loaded" in note for note in start["notes"]), start["notes"]


def test_a_warm_start_from_a_checkpoint_whose_task_had_another_number_of_labels_gives_it_a_new_head(tmp_path: Path, make_config, helpers):
    """The checkpoint's heads were built with the labels of now and its weights loaded into them: a size mismatch,
    "unexpected RuntimeError"."""
    import yaml

    first = make_config()
    first["tasks"][0]["define"]["labels"] = ["negative", "positive", "neutral"]  # as the plugin listed them then
    Trainer(first, output_dir=tmp_path / "run").train()
    saved_config = tmp_path / "run" / "config.yaml"
    config = yaml.safe_load(saved_config.read_text(encoding="utf-8"))
    config["tasks"][0]["define"]["labels"] = ["negative", "positive"]  # and now
    saved_config.write_text(yaml.safe_dump(config), encoding="utf-8")
    checkpoint = tmp_path / "run" / "checkpoints" / "step-000006"
    warm = make_config(encoder={"path": str(checkpoint), "load_heads": True}, schedule={"max_steps": 1, "warmup_steps": 0})
    Trainer(warm, output_dir=tmp_path / "warm").train()
    [start] = [e for e in helpers.read_events(tmp_path / "warm") if e["event"] == "start"]
    assert any("task 'user:sent' differs from the saved one (labels: ['negative', 'positive'] here, ['negative', 'positive', "
               "'neutral'] saved)" in note for note in start["notes"]), start["notes"]
    assert any("trained heads of user:pair, user:mc loaded" in note for note in start["notes"]), start["notes"]


def test_the_versions_list_an_installed_plugin_that_failed_to_load(monkeypatch):
    from types import SimpleNamespace

    import mtcore.plugins
    from mtcore.registry import PluginInfo
    from mtcore.train.versions import run_versions

    plugins = [PluginInfo(name="mtcore", distribution="mtcore", version="0.1.0", builtin=True),
               PluginInfo(name="ok", distribution="mt-ok", version="1.0"),
               PluginInfo(name="bad", distribution="mt-bad", version="2.0", status="failed", error="ImportError: x")]
    monkeypatch.setattr(mtcore.plugins, "load_registry", lambda warn=False: SimpleNamespace(plugins=plugins))
    assert run_versions()["plugins"] == {"mt-ok": "1.0", "mt-bad": "2.0"}
