"""A signal during the last step's events (its periodic evaluation, when ``evaluation.every`` divides ``max_steps``) lets
the run finish, as one during the final evaluation does: it preempted a run that had finished training (exit 143, no
model/), and the requeued job evaluated it again."""

from __future__ import annotations

import os
import signal

from mtcore import Trainer
from mtcore.train import events


def test_a_signal_in_the_last_steps_evaluation_lets_the_run_finish(tmp_path, make_config, monkeypatch):
    after_step = events.after_step
    steps: list[int] = []

    def signalled_in_the_last_step(engine, *args):
        after_step(engine, *args)  # the step's evaluation has run
        steps.append(engine.state.step)
        if engine.state.step == engine.total_steps:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(events, "after_step", signalled_in_the_last_step)
    previous = signal.getsignal(signal.SIGTERM)
    config = make_config(schedule={"max_steps": 4, "warmup_steps": 0}, evaluation={"every": 2, "at_end": True})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert steps == [1, 2, 3, 4] and summary["steps"] == 4
    assert (tmp_path / "run" / "model" / "mtcore.json").is_file() and (tmp_path / "run" / "summary.json").is_file()
    assert signal.getsignal(signal.SIGTERM) is previous
