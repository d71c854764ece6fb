"""A SIGTERM/SIGUSR1 that reaches ``mt train`` while the run is being built (data, model, restore) is kept for the
training loop: the run stops after its first step with a checkpoint (exit 143), instead of dying silently."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


@pytest.fixture
def guarded():
    """A handler of the test's own, so that a signal nothing else catches cannot kill the test process."""
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    yield caught
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_while_the_run_is_built_stops_after_the_first_step_with_a_checkpoint(tmp_path: Path, make_config, monkeypatch,
                                                                                      guarded, helpers, signum):
    import mtcore.train.build as build

    real = build.build_engine

    def signalled_while_building(*args, **kwargs):
        os.kill(os.getpid(), signum)  # as a scheduler would, while data are read and the model is loaded
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "build_engine", signalled_while_building)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 4, "warmup_steps": 0})), encoding="utf-8")
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(run)])
    assert result.exit_code == 143, result.output
    assert f"preempted at step 1: checkpoint written to {run / 'checkpoints' / 'step-000001'}; continue with" in result.stderr
    assert [e["event"] for e in helpers.read_events(run)][-1] == "preempted" and not (run / "summary.json").exists()
    assert guarded == []  # the run kept it, not the test's handler
    assert signal.getsignal(signum) is not signal.SIG_DFL and signal.getsignal(signum).__module__ == __name__  # restored
    monkeypatch.setattr(build, "build_engine", real)
    resumed = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(run), "--resume"])
    assert resumed.exit_code == 0 and "trained: steps 4" in resumed.stdout, resumed.output


def test_under_torchrun_a_signal_while_starting_stops_at_once_through_the_cleanup(monkeypatch, guarded, capsys):
    """torchrun sends SIGTERM to the other workers when one fails while starting: the default handler killed
    them half-way, leaving config.yaml, an empty checkpoints/ and a half-written tiny encoder behind."""
    from mtcore.train.preemption import KeptSignals

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    cleaned = []
    with pytest.raises(SystemExit) as stopped:
        with KeptSignals():
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
                raise AssertionError("the signal did not stop the start")
            except BaseException:
                cleaned.append(True)  # what build_engine's StartGuard does on any exception
                raise
    assert stopped.value.code == 128 + signal.SIGTERM and cleaned == [True]
    assert capsys.readouterr().err.strip() == "error: SIGTERM received while the run was starting: stopping (what the start wrote is removed)"
    assert signal.getsignal(signal.SIGTERM) is not None and guarded == []  # the test's own handler is back, untouched


def test_a_signal_under_torchrun_after_the_loop_began_is_not_said_to_come_while_the_run_was_starting(monkeypatch, capsys):
    """Rank 1 failed at step 5 and torchrun signalled rank 0 while it was handling that: "received while the run was
    starting" (a flaky CI run), though the run had trained."""
    from mtcore.train.preemption import KeptSignals, Preemption

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit) as stopped:
        with KeptSignals():
            with Preemption():
                pass  # a training loop ran, and ended (on the other process's failure)
            os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == "error: SIGTERM received: stopped"
