"""Weights that diverge while the training losses stay finite (huge, not yet NaN) give an evaluation loss that is NaN
or infinite. That evaluation was logged and even marked the best, its weights checkpointed, and the NaN error at the
next step named that checkpoint "the last good" one; the run now stops at the evaluation itself."""

from __future__ import annotations

import pytest

from mtcore import Trainer
from mtcore.train import events
from mtcore.train.monitor import NonFiniteLossError

from .conftest import read_events


def test_an_evaluation_with_a_nan_loss_stops_the_run_before_it_counts_or_is_checkpointed(tmp_path, make_config, monkeypatch):
    evaluate = events.evaluate

    def diverged_at_step_4(model, *args, **kwargs):
        metrics = evaluate(model, *args, **kwargs)
        if events_seen and events_seen[-1] == 4:
            metrics["user:pair/loss"] = float("nan")
        return metrics

    events_seen: list[int] = []
    after_step = events.after_step
    monkeypatch.setattr(events, "after_step", lambda engine, *a: (events_seen.append(engine.state.step), after_step(engine, *a))[1])
    monkeypatch.setattr(events, "evaluate", diverged_at_step_4)
    run = tmp_path / "run"
    config = make_config(evaluation={"every": 2, "at_end": True}, checkpoint={"every": 2, "keep_last": 3})
    with pytest.raises(NonFiniteLossError) as info:
        Trainer(config, output_dir=run).train()
    assert str(info.value) == ("the validation loss of task 'user:pair' became NaN or infinite at the evaluation of step 4 (the weights "
                               f"diverged); training stopped and the last good checkpoint is {run / 'checkpoints' / 'step-000002'} "
                               "(lower optimizer.lr, keep optimizer.max_grad_norm, or check the task's data)")
    logged = read_events(run)
    assert [e["step"] for e in logged if e["event"] == "eval"] == [2]  # step 4's is not logged, nor the best
    assert [e["step"] for e in logged if e["event"] == "error"] == [4]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002"]
