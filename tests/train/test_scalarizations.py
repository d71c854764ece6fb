"""GLS and STCH weigh each task's loss by the derivative of their function at the step's own losses, which the loop
runs forward before the step on the random streams the step then draws (the same dropout masks: the same losses), so
the weights are exact under dropout, gradient accumulation and DDP (tests/train/test_ddp.py)."""

from __future__ import annotations

import math

import pytest
import torch

from mtcore import Trainer
from mtcore.errors import ConfigError
from mtcore.train.scalarizations import EPS, GLSLoss, STCHLoss
from mtcore.train.step_losses import StepLosses


def _losses(tasks, values):
    step = StepLosses(tasks)
    for task, value in zip(tasks, values):
        step.add(task, torch.tensor(value), 1.0)
    return step


def test_gls_weights_are_the_geometric_mean_over_each_loss_the_step_trains_with_dropout_on(make_config, tmp_path, helpers):
    config = make_config(loss={"strategy": "gls"}, schedule={"max_steps": 4, "warmup_steps": 1}, checkpoint={"every": None},
                         logging={"every": 1, "progress": "none", "plot": False})
    assert not any("dropout" in str(t.get("head_options")) for t in config["tasks"])  # the encoder's and heads' dropout: on
    Trainer(config, output_dir=tmp_path / "run").train()
    events = helpers.read_events(tmp_path / "run")
    for step in range(1, 5):
        trained = {e["task"]: e["loss"] for e in events if e["event"] == "train" and e["step"] == step}
        [weights] = [e["weights"] for e in events if e["event"] == "loss_weights" and e["step"] == step]
        mean = math.exp(sum(math.log(v) for v in trained.values()) / len(trained))
        assert weights == pytest.approx({t: mean / v for t, v in trained.items()}, rel=1e-5), (step, weights, trained)


def test_stch_warms_up_on_log_losses_takes_the_nadir_from_its_second_half_then_a_smooth_maximum():
    tasks = ["a", "b", "c"]
    stch = STCHLoss(tasks, mu=0.5, warmup_steps=4)
    seen = [[2.0, 1.0, 4.0], [1.0, 3.0, 2.0], [3.0, 1.0, 1.0], [1.0, 2.0, 3.0]]
    for step, values in enumerate(seen, start=1):
        stch.before_step(_losses(tasks, values), step)
        assert list(stch.task_weights().values()) == pytest.approx([1 / v for v in values])  # the gradient of Σ log L
    nadir = [(x + y) / 2 for x, y in zip(seen[2], seen[3])]  # steps 3 and 4
    now = [1.5, 1.5, 0.5]
    stch.before_step(_losses(tasks, now), 5)
    relative = [math.log(v / n) / 0.5 for v, n in zip(now, nadir)]
    soft = [math.exp(r) / sum(math.exp(x) for x in relative) for r in relative]
    assert list(stch.task_weights().values()) == pytest.approx([3 * s / v for s, v in zip(soft, now)])
    state = stch.state_dict()
    resumed = STCHLoss(tasks, mu=0.5, warmup_steps=4)
    resumed.load_state_dict(state)
    resumed.before_step(_losses(tasks, now), 5)
    assert resumed.task_weights() == stch.task_weights()
    for options, name in (({"mu": 0}, "mu"), ({"mu": float("nan")}, "mu"), ({"warmup_steps": 0}, "warmup_steps"),
                          ({"warmup_steps": 1.5}, "warmup_steps")):
        with pytest.raises(ConfigError, match=f"option '{name}'"):
            STCHLoss(tasks, **options)


def test_a_step_whose_losses_are_not_finite_trains_as_sum_and_a_zero_loss_counts_as_eps():
    gls = GLSLoss(["a", "b"])
    gls.before_step(_losses(["a", "b"], [float("nan"), 1.0]), 1)
    assert gls.task_weights() == {"a": 1.0, "b": 1.0}
    gls.before_step(_losses(["a", "b"], [0.0, 1.0]), 2)
    assert gls.task_weights()["a"] == pytest.approx(math.sqrt(EPS) / EPS, rel=1e-6)  # G / L with L = ε
    stch = STCHLoss(["a", "b"], warmup_steps=2)
    stch.before_step(_losses(["a", "b"], [1.0, float("inf")]), 2)
    assert stch.task_weights() == {"a": 1.0, "b": 1.0} and stch.nadir_counts.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("loss", [{"strategy": "gls"}, {"strategy": "stch", "options": {"warmup_steps": 2}}], ids=["gls", "stch"])
def test_two_micro_steps_train_as_one_step_of_their_rows(loss, make_config, tmp_path, helpers):
    """The weights come from the whole step's losses, not each micro-step's."""
    worst = helpers.accumulation_difference(make_config, tmp_path, loss)
    assert worst < 1e-5, worst
