"""Exact resume: a run killed with ``kill -9`` and resumed ends with bit-identical weights (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml


def _wait_for_checkpoint(run_dir: Path, min_step: int, process: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("step-*") if (p / "state.json").is_file())
        if done and done[-1] >= min_step:
            return done[-1]
        if process.poll() is not None:
            raise AssertionError(f"the run ended before checkpoint {min_step}: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared in time")


@pytest.mark.parametrize("variant", [
    {"sampler": {"name": "temperature"}, "loss": {"strategy": "single"}},
    {"loss": {"strategy": "uncertainty"}, "optimizer": {"lr": 1e-3, "gradient_accumulation_steps": 2}},
], ids=["single-temperature", "uncertainty-accumulation"])
def test_kill_9_then_resume_is_bit_identical(tmp_path: Path, make_config, helpers, variant):
    config = make_config(schedule={"max_steps": 24, "warmup_steps": 2}, checkpoint={"every": 4, "keep_last": 2},
                         evaluation={"every": 6, "at_end": True}, **variant)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = helpers.subprocess_env()
    full = subprocess.run(helpers.mt_command("train", str(path), "--output-dir", str(tmp_path / "full")),
                          capture_output=True, text=True, env=env, timeout=300)
    assert full.returncode == 0, full.stderr

    run = tmp_path / "killed"
    process = subprocess.Popen(helpers.mt_command("train", str(path), "--output-dir", str(run), "debug.step_delay_s=0.05"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_for_checkpoint(run, 8, process)
        time.sleep(0.07)  # somewhere inside a later step
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    assert not (run / "model").exists()
    # what a kill in the middle of writing a checkpoint leaves behind: never read, cleaned up
    (run / "checkpoints" / ".tmp-step-000999").mkdir()
    (run / "checkpoints" / ".tmp-step-000999" / "optimizer.safetensors").write_bytes(b"half")

    resumed = subprocess.run(helpers.mt_command("train", str(path), "--output-dir", str(run), "--resume"),
                             capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert "/checkpoints/step-0000" in summary["resumed_from"] and summary["steps"] == 24

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
    assert not list((run / "checkpoints").glob(".tmp-*"))


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
