"""A run stopped between two logging steps (SIGTERM after a step, Ctrl-C after a checkpoint) and resumed logs the
uninterrupted run's ``train`` events: the checkpoint keeps the logging window's sums. Ctrl-C's ``interrupted`` event
stays in ``metrics.jsonl`` after the resume."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml

from mtcore.train import events
from mtcore.train.preemption import Preempted


def _losses(helpers, run: Path) -> list:
    return [(e["step"], e["task"], e["loss"], e["batches"]) for e in helpers.read_events(run) if e["event"] == "train"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shared_make_config, helpers):
    root = tmp_path_factory.mktemp("window")
    config = root / "config.yaml"  # logging every 4 steps, checkpoints every 3: windows straddle checkpoints
    config.write_text(yaml.safe_dump(shared_make_config(schedule={"max_steps": 12, "warmup_steps": 1}, checkpoint={"every": 3, "keep_last": 3},
                                                        logging={"every": 4, "progress": "none", "plot": False})))
    helpers.train_in_this_process(config, root / "reference")
    return config, root / "reference"


def _stop_at(monkeypatch, step: int, stop) -> None:
    original = events.after_step

    def after_step(engine, *args, **kwargs):
        original(engine, *args, **kwargs)
        if engine.state.step == step:
            stop()

    monkeypatch.setattr(events, "after_step", after_step)


def test_sigterm_between_logging_steps_then_resume_logs_the_uninterrupted_losses(tmp_path, setup, helpers, monkeypatch):
    config, reference = setup
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _stop_at(patch, 6, lambda: os.kill(os.getpid(), signal.SIGTERM))  # window 5-8: stopped after step 6, checkpoint 6
        with pytest.raises(Preempted):
            helpers.train_in_this_process(config, run)
    helpers.train_in_this_process(config, run, resume=True)
    assert _losses(helpers, run) == _losses(helpers, reference) and len(_losses(helpers, reference)) >= 6


def test_ctrl_c_event_stays_after_resume_and_the_losses_are_the_uninterrupted_ones(tmp_path, setup, helpers, monkeypatch):
    config, reference = setup
    run = tmp_path / "run"

    def interrupt():
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        _stop_at(patch, 7, interrupt)  # latest checkpoint: step 6, inside the window 5-8
        with pytest.raises(KeyboardInterrupt):
            helpers.train_in_this_process(config, run)
    helpers.train_in_this_process(config, run, resume=True)
    found = [e for e in helpers.read_events(run) if e["event"] == "interrupted"]
    assert len(found) == 1 and found[0]["step"] == 7 and found[0]["checkpoint"].endswith("step-000006")
    assert _losses(helpers, run) == _losses(helpers, reference)


# ---- --seeds into a --grid folder and --grid into a --seeds folder: refused before anything is written ----
def _tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [{"id": "rsg:terra", "source": "sample"}],
                                    "schedule": {"max_steps": 1}, "batching": {"batch_size": 4}, "checkpoint": {"every": None},
                                    "logging": {"progress": "none", "plot": False}}))
    return path


@pytest.mark.parametrize("marker, args, holds", [
    ("grid.json", ["--seeds", "2"], "holds the runs of a grid (grid.json)"),
    ("seeds.json", ["--grid", "optimizer.lr=1e-4,1e-3"], "holds runs of several seeds (seeds.json)"),
    ("seeds.json", ["--grid", "optimizer.lr=1e-4,1e-3", "--seeds", "2"], "holds runs of several seeds (seeds.json)"),
], ids=["seeds-into-grid", "grid-into-seeds", "grid-seeds-into-seeds"])
def test_seeds_and_grid_folders_do_not_mix(tmp_path, marker, args, holds):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    out = tmp_path / "out"
    out.mkdir()
    (out / marker).write_text('{"runs": []}' if marker == "grid.json" else "{}")
    before = sorted(p.name for p in out.iterdir())
    result = CliRunner().invoke(app, ["train", str(_tiny_config(tmp_path)), "-o", str(out), *args])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert holds in line and "choose a folder of its own" in line, line
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written
