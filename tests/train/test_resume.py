"""Exact resume: a run killed with ``kill -9`` and resumed ends with bit-identical weights (CPU)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml


@pytest.mark.parametrize("variant", [
    {"sampler": {"name": "temperature"}, "loss": {"strategy": "single"}},
    {"loss": {"strategy": "uncertainty"}, "optimizer": {"lr": 1e-3, "gradient_accumulation_steps": 2}},
    {"lora": {"r": 4, "alpha": 8}, "optimizer": {"lr": 5e-3}},  # adapters on a frozen encoder: kept apart in checkpoints
    {"lora": {"r": 4, "alpha": 8, "per_task": True}, "optimizer": {"lr": 5e-3}},  # each task's own (model/lora/ compared too)
    {"freeze_encoder_steps": 10},  # killed while the heads train alone, resumed into the encoder's own schedule
], ids=["single-temperature", "uncertainty-accumulation", "lora", "lora-per-task", "freeze-encoder-steps"])
def test_kill_9_then_resume_is_bit_identical(tmp_path: Path, make_config, helpers, monkeypatch, variant):
    """The killed run is a real ``mt train`` process; the uninterrupted run and ``mt train --resume`` run in this
    process (as the preemption tests resume: no process start-up each), on one thread as that process trains."""
    for name in [name for name in os.environ if name.startswith("MT_")]:  # as helpers.subprocess_env leaves them out
        monkeypatch.delenv(name)
    variant = dict(variant)
    lora = variant.pop("lora", None)
    frozen_steps = variant.pop("freeze_encoder_steps", 0)
    if lora is not None:
        pytest.importorskip("peft")
    config = make_config(schedule={"max_steps": 24, "warmup_steps": 2}, checkpoint={"every": 4, "keep_last": 2},
                         evaluation={"every": 6, "at_end": True}, **variant)
    if lora is not None:
        config["encoder"]["options"] = {"lora": lora}
    config["encoder"]["freeze_encoder_steps"] = frozen_steps
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    _mt_train_in_this_process(str(path), "--output-dir", str(tmp_path / "full"))  # the uninterrupted run, the reference

    run = tmp_path / "killed"
    helpers.kill_after_checkpoint(path, run, 8)
    assert not (run / "model").exists()
    # what a kill in the middle of writing a checkpoint leaves behind: never read, cleaned up
    (run / "checkpoints" / ".tmp-step-000999").mkdir()
    (run / "checkpoints" / ".tmp-step-000999" / "optimizer.safetensors").write_bytes(b"half")
    # ... and one while model/ or a JSON file is written (save_model's staging folder, the model set aside, write_json's file)
    for name in (".model.tmp-k3j2_x", ".model.old-0a1b2c3d"):
        (run / name / "heads").mkdir(parents=True)
        (run / name / "heads" / "rsg_terra.safetensors").write_bytes(b"half")
    (run / ".tmp-h7q2.json").write_text('{"half', encoding="utf-8")

    _mt_train_in_this_process(str(path), "--output-dir", str(run), "--resume")
    summary = json.loads((run / "summary.json").read_text())
    assert "/checkpoints/step-0000" in summary["resumed_from"] and summary["steps"] == 24
    assert summary["train_seconds"] > summary["train_seconds_this_process"] > 0  # the killed process's seconds count too

    a, b = helpers.load_weights(tmp_path / "full" / "model"), helpers.load_weights(run / "model")
    assert a.keys() == b.keys() and len(a) > 10
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert different == []
    # the event log reads like the uninterrupted run's (timings aside)
    def evals(run_dir: Path) -> list:
        return [(e["step"], e["metrics"]) for e in helpers.read_events(run_dir) if e["event"] == "eval"]

    def losses(run_dir: Path) -> list:
        return [(e["step"], e["task"], e["loss"]) for e in helpers.read_events(run_dir) if e["event"] == "train"]

    assert evals(run) == evals(tmp_path / "full") and len(evals(run)) == 4
    assert losses(run) == losses(tmp_path / "full")
    assert not list((run / "checkpoints").glob(".tmp-*")) and not list(run.glob(".*"))


def _mt_train_in_this_process(*args: str) -> None:
    """``mt train ARGS`` in this process (CliRunner), on one thread as the ``mt`` subprocesses train (their weights
    are bit-identical to this run's)."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(app, ["train", *args])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output[-3000:]


def test_a_resume_before_the_first_checkpoint_restarts_exactly_like_a_fresh_run(tmp_path: Path, make_config, helpers):
    """The run stopped before any checkpoint (its tiny demo encoder already built in the run
    folder): --resume starts over and must end where an uninterrupted run ends."""
    from mtcore import Trainer
    from mtcore.train.monitor import NonFiniteLossError

    def config(**debug):
        return make_config(encoder={"tiny": {"arch": "bert", "hidden_size": 32, "num_layers": 1, "num_heads": 2}},
                           schedule={"max_steps": 6, "warmup_steps": 1}, checkpoint={"every": 4}, debug=debug)

    Trainer(config(), output_dir=tmp_path / "straight").train()
    with pytest.raises(NonFiniteLossError):
        Trainer(config(inject_nan_at_step=3), output_dir=tmp_path / "crashed").train()
    assert not list((tmp_path / "crashed" / "checkpoints").glob("step-*"))
    Trainer(config(inject_nan_at_step=3), output_dir=tmp_path / "crashed", resume=True,
            overrides=["debug.inject_nan_at_step=null"]).train()
    straight, resumed = helpers.load_weights(tmp_path / "straight" / "model"), helpers.load_weights(tmp_path / "crashed" / "model")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


DAMAGES = {
    "sampler.json removed": lambda d: (d / "sampler.json").unlink(),
    "sampler.json cut short": lambda d: (d / "sampler.json").write_text((d / "sampler.json").read_text()[:20]),
    "state.json cut short": lambda d: (d / "state.json").write_text((d / "state.json").read_text()[:20]),
    "state.json emptied": lambda d: (d / "state.json").write_text(""),
    "model weights removed": lambda d: (d / "model.safetensors").unlink(),
    "model weights cut short": lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100]),
    "optimizer layout cut short": lambda d: (d / "optimizer.json").write_text((d / "optimizer.json").read_text()[:20]),
    "rng files removed": lambda d: [p.unlink() for p in d.glob("rng-0.*")],
    # files whose values were edited (they were 'unexpected TypeError/AttributeError/RecursionError', or replaced the live
    # scheduler's optimizer with a string)
    "state.json step not a number": lambda d: _edit_json(d / "state.json", lambda state: {**state, "step": "x"}),
    "scheduler state with a key of its own": lambda d: _edit_json(
        d / "trainer.json", lambda t: {"$dict": [[k, {"$dict": [*v["$dict"], ["optimizer", "x"]]} if k == "scheduler" else v]
                                               for k, v in t["$dict"]]}),
    "scheduler base_lrs as text": lambda d: _edit_json(
        d / "trainer.json", lambda t: {"$dict": [[k, {"$dict": [[a, "abc" if a == "base_lrs" else b] for a, b in v["$dict"]]}
                                                  if k == "scheduler" else v] for k, v in t["$dict"]]}),
    "trainer.json nested thousands deep": lambda d: (d / "trainer.json").write_text("[" * 5000 + "]" * 5000),
    "rng state of another shape": lambda d: (d / "rng-0.json").write_text('{"$dict": [["python", [1, 2]]]}'),
}


def _edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, small_encoder, small_tasks) -> Path:
    """A 6-step run checkpointed at steps 2, 4 and 6 (its model/ is the reference for a resumed copy)."""
    from mtcore import Trainer

    config = {"seed": 3, "cpu": True, "precision": "fp32", "encoder": {"path": str(small_encoder)}, "tasks": small_tasks,
              "optimizer": {"lr": 1e-3}, "schedule": {"max_steps": 6, "warmup_steps": 1}, "batching": {"batch_size": 8},
              "evaluation": {"every": None, "at_end": True}, "checkpoint": {"every": 2, "keep_last": 3},
              "logging": {"every": 2, "progress": "none", "plot": False}}
    run = tmp_path_factory.mktemp("finished") / "run"
    Trainer(config, output_dir=run).train()
    return run


def _interrupted_copy(run: Path, target: Path) -> Path:
    """``run`` as it was when killed right after its last checkpoint (no model/, no summary), at ``target``."""
    import shutil

    shutil.copytree(run / "checkpoints", target / "checkpoints")
    shutil.copy(run / "metrics.jsonl", target / "metrics.jsonl")
    (target / "config.yaml").write_text((run / "config.yaml").read_text(encoding="utf-8").replace(str(run), str(target)), encoding="utf-8")
    return target


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_latest_checkpoint_is_one_line_naming_it_and_an_earlier_one_resumes(finished_run, tmp_path, helpers, damage):
    """A checkpoint whose files were cut short or removed (a copy interrupted, a disk cleaned up):
    `--resume` names the file and the fix in one line, changes nothing, and after the fix resumes exactly."""
    import shutil

    from typer.testing import CliRunner

    from mtcore.cli.app import app

    run = _interrupted_copy(finished_run, tmp_path / "run")
    latest = run / "checkpoints" / "step-000006"
    DAMAGES[damage](latest)
    before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    result = CliRunner().invoke(app, ["train", str(run / "config.yaml"), "--output-dir", str(run), "--resume"])
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and str(latest) in line and "unexpected" not in line, line
    assert "delete" in line and "earlier one" in line
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == before  # the run is left as it was

    shutil.rmtree(latest)  # what the message says: the previous complete checkpoint takes over
    result = CliRunner().invoke(app, ["train", str(run / "config.yaml"), "--output-dir", str(run), "--resume"])
    assert result.exit_code == 0, result.stderr
    assert json.loads((run / "summary.json").read_text())["resumed_from"].endswith("step-000004")
    expected, resumed = helpers.load_weights(finished_run / "model"), helpers.load_weights(run / "model")
    assert expected.keys() == resumed.keys() and all(torch.equal(expected[k], resumed[k]) for k in expected)


def test_a_checkpoint_whose_optimizer_state_fits_other_parameters_is_one_line(finished_run, tmp_path):
    """A checkpoint written for other trainable parameters (an older mtcore trained the multiple-choice scorer's
    shared bias) gave 'unexpected ValueError' from torch; now one line naming it and the way on, nothing changed."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app
    from mtcore.train.state_files import load_state, save_state

    run = _interrupted_copy(finished_run, tmp_path / "run")
    (run / "model").mkdir()  # as if the run had finished: its model is the way on
    for step in ("step-000002", "step-000004", "step-000006"):
        state = load_state(run / "checkpoints" / step / "optimizer")
        state["param_groups"][-1]["params"].append(max(p for g in state["param_groups"] for p in g["params"]) + 1)
        save_state(state, run / "checkpoints" / step / "optimizer")
    before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    result = CliRunner().invoke(app, ["train", str(run / "config.yaml"), "--output-dir", str(run), "--resume"])
    line = result.stderr.strip()
    assert result.exit_code == 2 and len(line.splitlines()) == 1 and "unexpected" not in line, line
    assert "step-000006" in line and "does not fit this model's trainable parameters" in line
    assert f"encoder.path={run / 'model'} encoder.load_heads=true" in line
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == before


def test_a_checkpoint_of_another_number_of_processes_is_refused_naming_the_launch(finished_run, tmp_path):
    """It resumed with a warning about the sampler's order, silently halving the global batch and
    (with epochs) stretching the schedule."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    run = _interrupted_copy(finished_run, tmp_path / "run")
    latest = run / "checkpoints" / "step-000006"
    sampler = json.loads((latest / "sampler.json").read_text())
    sampler["world_size"] = 2  # as torchrun --nproc_per_node 2 wrote it
    (latest / "sampler.json").write_text(json.dumps(sampler))
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    result = CliRunner().invoke(app, ["train", str(run / "config.yaml"), "--output-dir", str(run), "--resume"])
    assert result.exit_code == 2, result.output
    assert f"cannot resume from {latest}: it was written by 2 process(es) and this launch has 1" in result.output
    assert "torchrun --nproc_per_node 2" in result.output
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # nothing changed in the run


def test_a_moved_run_folder_resumes_where_it_is_now(finished_run, tmp_path, helpers):
    """A run copied off a cluster or renamed was refused for good ("holds a config.yaml that no run wrote here"):
    its config.yaml names the folder it was written in. It now continues, exactly, with a warning saying where it came from."""
    import shutil

    from typer.testing import CliRunner

    from mtcore.cli.app import app

    run = tmp_path / "moved"
    shutil.copytree(finished_run / "checkpoints", run / "checkpoints")
    shutil.copy(finished_run / "metrics.jsonl", run / "metrics.jsonl")
    shutil.copy(finished_run / "config.yaml", run / "config.yaml")  # its first line still names finished_run
    shutil.rmtree(run / "checkpoints" / "step-000006")
    (run / "checkpoints" / "step-000004" / "state.json").write_text("")  # damaged: the failed resume changes nothing
    before = {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["train", str(run / "config.yaml"), "--output-dir", str(run), "--resume"])
    assert result.exit_code == 1 and "step-000004" in result.stderr, result.output
    assert {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # config.yaml too
    shutil.rmtree(run / "checkpoints" / "step-000004")
    result = CliRunner().invoke(app, ["train", str(run / "config.yaml"), "--output-dir", str(run), "--resume"])
    assert result.exit_code == 0, result.stderr
    assert f"warning: the run in {str(run)!r} was started in {str(finished_run)!r} (moved or copied since)" in result.stderr
    assert str(run) in (run / "config.yaml").read_text(encoding="utf-8").splitlines()[0]  # rewritten for this folder
    expected, resumed = helpers.load_weights(finished_run / "model"), helpers.load_weights(run / "model")
    assert expected.keys() == resumed.keys() and all(torch.equal(expected[k], resumed[k]) for k in expected)


def test_a_resume_with_another_cpu_thread_count_warns_that_it_is_not_bit_identical(finished_run, tmp_path):
    """CPU kernels split their sums by thread: OMP_NUM_THREADS 1 vs 2 moved weights by ~1e-8, and --resume said nothing."""
    import shutil

    from typer.testing import CliRunner

    from mtcore.cli.app import app

    threads = torch.get_num_threads()
    states = [json.loads((finished_run / "checkpoints" / f"step-00000{step}" / "state.json").read_text()) for step in (2, 4, 6)]
    assert [state["cpu_threads"] for state in states] == [threads] * 3
    assert 0 < states[0]["train_seconds"] < states[1]["train_seconds"] < states[2]["train_seconds"]
    same = _interrupted_copy(finished_run, tmp_path / "same")
    result = CliRunner().invoke(app, ["train", str(same / "config.yaml"), "--output-dir", str(same), "--resume"])
    assert result.exit_code == 0 and "CPU threads" not in result.stderr, result.output

    other = _interrupted_copy(finished_run, tmp_path / "other")
    shutil.rmtree(other / "checkpoints" / "step-000006")
    torch.set_num_threads(threads + 1)
    try:
        result = CliRunner().invoke(app, ["train", str(other / "config.yaml"), "--output-dir", str(other), "--resume"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert (f"warning: --resume: {other / 'checkpoints' / 'step-000004'} was written with {threads} CPU threads and this "
            f"process has {threads + 1};") in result.stderr
    assert f"for bit-identical weights resume with OMP_NUM_THREADS={threads}" in result.stderr


def test_a_scheduler_state_of_another_torch_version_still_resumes(finished_run, tmp_path):
    """torch 2.4-2.x kept 'verbose' in a scheduler's state (later versions have no such attribute): refused as damaged."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    run = _interrupted_copy(finished_run, tmp_path / "run")
    _edit_json(run / "checkpoints" / "step-000006" / "trainer.json",
               lambda t: {"$dict": [[k, {"$dict": [*v["$dict"], ["verbose", False]]} if k == "scheduler" else v] for k, v in t["$dict"]]})
    result = CliRunner().invoke(app, ["train", str(run / "config.yaml"), "--output-dir", str(run), "--resume"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "summary.json").read_text())["resumed_from"].endswith("step-000006")
