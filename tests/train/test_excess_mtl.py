"""ExcessMTL: its weights follow the paper's multiplicative updates of the excess-risk estimates step by step (a direct
float64 computation), the heads train with the step's weights, fp16's loss scale stays out of the statistics, and a
checkpointed state continues exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.train.excess_mtl import ExcessMTLLoss


def _reference(steps, step_size=0.01):
    """(update, weights the step trained with) per step, the weights moved after each step (float64 numpy)."""
    k = len(steps[0])
    squares, weights, first, out = np.zeros((k, len(steps[0][0]))), np.ones(k), None, []
    for grads in steps:
        g = np.array(grads)
        out.append((weights @ g, weights.copy()))
        squares += g ** 2
        excess = np.array([(g[i] ** 2 / np.sqrt(squares[i] + 1e-7)).sum() for i in range(k)])
        if first is None:
            first = excess
        else:
            weights = weights * np.exp(step_size * excess / first)
            weights = weights * k / weights.sum()
    return out


def test_the_weights_follow_the_excess_risk_updates():
    rng = np.random.default_rng(0)
    steps = [[rng.normal(size=6) * s for s in (0.1, 1.0, 5.0)] for _ in range(6)]
    strategy = ExcessMTLLoss(["a", "b", "c"], step_size=0.5)
    for grads, (update, weights) in zip(steps, _reference(steps, step_size=0.5)):
        got = strategy.combine([torch.tensor(g, dtype=torch.float32) for g in grads], step=1)
        np.testing.assert_allclose(got.numpy(), update, rtol=1e-5, atol=1e-6)
        assert list(strategy.task_weights().values()) == pytest.approx(list(weights), rel=1e-6)
    assert strategy.loss_weights.sum().item() == pytest.approx(3) and len(set(strategy.loss_weights.tolist())) == 3
    assert float(strategy.head_scale(2)) == pytest.approx(float(strategy.loss_weights[2]))


def test_fp16s_loss_scale_stays_out_and_a_checkpointed_state_continues_exactly():
    rng = np.random.default_rng(1)
    draws = [[torch.tensor(rng.normal(size=4), dtype=torch.float32) for _ in range(2)] for _ in range(3)]
    plain, scaled = ExcessMTLLoss(["a", "b"], step_size=0.3), ExcessMTLLoss(["a", "b"], step_size=0.3)
    for grads in draws[:2]:
        plain.combine(grads, 1)
        scaled.loss_unit = torch.tensor(512.0, dtype=torch.float64)
        scaled.combine([512 * g for g in grads], 1)
    assert torch.allclose(scaled.square_sums, plain.square_sums) and torch.allclose(scaled.loss_weights, plain.loss_weights)
    resumed = ExcessMTLLoss(["a", "b"], step_size=0.3)
    resumed.load_state_dict(plain.state_dict())
    assert torch.equal(resumed.combine(draws[2], 3), plain.combine(draws[2], 3))
    assert torch.equal(resumed.loss_weights, plain.loss_weights)
    for bad in (0, -1, float("inf"), "x", True):
        with pytest.raises(ConfigError, match="option 'step_size'"):
            ExcessMTLLoss(["a", "b"], step_size=bad)


def test_two_micro_steps_train_as_one_step_of_their_rows(make_config, tmp_path, helpers):
    worst = helpers.accumulation_difference(make_config, tmp_path, {"strategy": "excess_mtl", "options": {"step_size": 0.5}})
    assert worst < 1e-5, worst


def test_a_gradient_far_above_the_first_ones_keeps_the_weights_finite():
    """λ·exp(η r) overflowed to inf for r above about 709/η: NaN weights, a run stopped blaming the strategy."""
    strategy = ExcessMTLLoss(["a", "b"])
    strategy.combine([torch.full((1000,), 1e-6), torch.full((1000,), 1e-3)], 1)
    for step in (2, 3):
        update = strategy.combine([torch.full((1000,), 1e-3), torch.full((1000,), 1e-3)], step)
        assert torch.isfinite(update).all() and torch.isfinite(strategy.loss_weights).all()
    assert strategy.loss_weights.tolist() == pytest.approx([2.0, 0.0], abs=1e-9)  # the task whose gradient jumped takes all
