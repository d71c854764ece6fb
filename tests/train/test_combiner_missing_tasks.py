"""A loop of one's own may call a gradient combiner's ``backward`` / ``end_backward`` with some tasks left out of a step
(hooks.md's contract): ``combine`` then gets only the present tasks' gradients, and every combiner maps them to the
right tasks — weights logged under the right names, per-task state (GradVac's target cosines, Nash-MTL's held weights,
GradNorm's weights and moments) read and written at the right tasks — where they were taken by position (wrong names,
the wrong pair's targets, a RuntimeError from GradNorm and Nash-MTL)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from mtcore.plugins import get_component

COMBINERS = ["pcgrad", "mgda", "cagrad", "gradnorm", "imtl", "aligned_mtl", "gradvac", "nash_mtl", "db_mtl", "moco", "excess_mtl", "upgrad",
             "fairgrad"]
TASKS = ["a", "b", "c"]


def _problem():
    torch.manual_seed(0)
    encoder = nn.Linear(4, 3).double()
    heads = nn.ModuleDict({t: nn.Linear(3, 1).double() for t in TASKS})
    data = {t: (torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)) for t in TASKS}
    return encoder, heads, data


def _step(strategy, model, tasks, step):
    encoder, heads, data = model
    shared, others = list(encoder.parameters()), list(heads.parameters())
    for p in shared + others:
        p.grad = None
    losses = {t: ((heads[t](encoder(data[t][0])) - data[t][1]) ** 2).mean() for t in tasks}
    strategy.backward(losses, shared, others, lambda loss: loss, step)
    strategy.end_backward(shared, others, step)
    return [p.grad.clone() for p in shared]


@pytest.mark.parametrize("name", COMBINERS)
def test_a_step_without_a_task_combines_and_logs_the_present_tasks_as_a_strategy_of_those_tasks_would(name):
    cls = get_component("loss", name)
    model = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        three, two = cls(TASKS), cls(["b", "c"])
        got, expected = _step(three, model, ["b", "c"], 1), _step(two, model, ["b", "c"], 1)
        for g, e in zip(got, expected):
            assert torch.allclose(g, e, rtol=1e-9, atol=1e-12), name
        if three.logs_weights and name not in ("gradnorm", "excess_mtl"):  # these log their loss weights: 'a' keeps its own
            logged, alone = three.task_weights(), two.task_weights()
            assert logged["a"] == 0 and logged["b"] == pytest.approx(alone["b"]) and logged["c"] == pytest.approx(alone["c"]), logged
        _step(three, model, TASKS, 2)  # then a step with every task: no error, finite weights
        assert all(np.isfinite(w) for w in three.task_weights().values())
        assert all(torch.isfinite(p.grad).all() for p in model[0].parameters())


def test_per_task_state_is_kept_at_the_present_tasks():
    from mtcore.train.gradient_balancers import GradNormLoss
    from mtcore.train.gradient_surgery import GradVacLoss, NashMTLLoss

    model = _problem()
    model[1]["c"].weight.data.neg_()  # b and c pull the encoder apart: GradVac corrects and moves their targets
    gradvac = GradVacLoss(TASKS, beta=0.5)
    _step(gradvac, model, ["b", "c"], 1)
    targets = gradvac.targets.numpy()
    assert targets[0].tolist() == [0, 0, 0] and targets[:, 0].tolist() == [0, 0, 0]  # 'a' had no gradient: its pairs stay
    assert targets[1, 2] != 0 and targets[2, 1] != 0
    nash = NashMTLLoss(TASKS, update_every=2)
    _step(nash, model, ["b", "c"], 1)
    held = nash.held.numpy()
    assert held[0] == 0 and held[1] > 0 and held[2] > 0
    _step(nash, model, ["a", "b"], 2)  # held weights of the step's tasks: 'a' has none held, so it is left out of the update
    assert nash.task_weights()["a"] == 0 and nash.task_weights()["b"] == pytest.approx(held[1])
    gradnorm = GradNormLoss(TASKS)
    _step(gradnorm, model, ["b", "c"], 1)
    assert gradnorm.moments[:, 0].tolist() == [0, 0] and gradnorm.first_losses[0] == 0  # 'a' trained nothing yet
    assert float(gradnorm.loss_weights.sum()) == pytest.approx(3)
    _step(gradnorm, model, TASKS, 2)
    assert gradnorm.first_losses[0] > 0  # its first loss: the step it first trained
