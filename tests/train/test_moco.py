"""MoCo: its tracked gradients and weights follow the paper's updates step by step (checked against a direct float64
computation), the simplex projection is the nearest point, fp16's loss scale stays out of the state, a checkpoint's
state continues exactly, and 2 micro-steps train as one step of their rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.train.moco import MoCoLoss, project_to_simplex


def _reference(steps, beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0):
    """The paper's updates, in float64 numpy: (update, λ) after each step of (grads, losses)."""
    k = len(steps[0][0])
    y, lam, out = np.zeros((k, len(steps[0][0][0]))), np.full(k, 1.0 / k), []
    for t, (grads, losses) in enumerate(steps, start=1):
        g = np.array([loss * x / (np.linalg.norm(x) + 1e-8) for x, loss in zip(grads, losses)])
        y = y - beta / t ** beta_sigma * (y - g)
        stepped = lam - gamma / t ** gamma_sigma * (y @ y.T + rho * np.eye(k)) @ lam
        from scipy.optimize import minimize

        found = minimize(lambda v: ((v - stepped) ** 2).sum(), np.full(k, 1.0 / k), method="SLSQP", bounds=[(0, None)] * k,
                         constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}], options={"ftol": 1e-15})
        lam = found.x
        out.append((k * lam @ y, lam))
    return out


def test_the_tracked_gradients_and_weights_follow_the_papers_updates():
    rng = np.random.default_rng(0)
    steps = [([rng.normal(size=6) * s for s in (0.1, 1.0, 5.0)], rng.uniform(0.2, 2.0, size=3)) for _ in range(5)]
    expected = _reference(steps, rho=0.01)
    moco = MoCoLoss(["a", "b", "c"], rho=0.01)
    for (grads, losses), (update, lam) in zip(steps, expected):
        moco.step_losses(torch.tensor(losses, dtype=torch.float64))
        got = moco.combine([torch.tensor(g, dtype=torch.float32) for g in grads], step=1)
        np.testing.assert_allclose(got.numpy(), update, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(moco.lambdas.numpy(), lam, atol=1e-6)
        assert list(moco.task_weights().values()) == pytest.approx(list(3 * lam), abs=1e-5)


def test_the_simplex_projection_is_the_nearest_point():
    rng = np.random.default_rng(1)
    for _ in range(50):
        v = rng.normal(size=rng.integers(1, 7)) * rng.choice([0.1, 1, 10])
        p = project_to_simplex(v)
        assert p.min() >= 0 and p.sum() == pytest.approx(1.0)
        for _ in range(20):  # any other point of the simplex is at least as far
            q = rng.dirichlet(np.ones(len(v)))
            assert ((p - v) ** 2).sum() <= ((q - v) ** 2).sum() + 1e-12


def test_fp16s_loss_scale_stays_out_of_the_state_and_comes_back_on_the_update():
    grads = [torch.randn(5, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    plain, scaled = MoCoLoss(["a", "b"]), MoCoLoss(["a", "b"])
    for strategy in (plain, scaled):
        strategy.step_losses(torch.tensor([0.7, 1.3], dtype=torch.float64))
    update = plain.combine(grads, 1)
    scaled.loss_unit = torch.tensor(1024.0, dtype=torch.float64)
    assert torch.allclose(scaled.combine([1024 * g for g in grads], 1), 1024 * update, rtol=1e-5)
    assert torch.allclose(scaled.averages, plain.averages) and torch.equal(scaled.lambdas, plain.lambdas)


def test_a_checkpointed_state_continues_exactly_and_bad_options_are_refused():
    rng = np.random.default_rng(2)
    draws = [[torch.tensor(rng.normal(size=4), dtype=torch.float32) for _ in range(3)] for _ in range(3)]
    first = MoCoLoss(["a", "b", "c"])
    for grads in draws[:2]:
        first.combine(grads, 1)
    resumed = MoCoLoss(["a", "b", "c"])
    resumed.load_state_dict(first.state_dict())
    assert torch.equal(resumed.combine(draws[2], 3), first.combine(draws[2], 3))
    for options, name in (({"beta": 0}, "beta"), ({"beta": 1.5}, "beta"), ({"gamma": -1}, "gamma"), ({"rho": float("nan")}, "rho"),
                          ({"beta_sigma": "x"}, "beta_sigma")):
        with pytest.raises(ConfigError, match=f"option '{name}'"):
            MoCoLoss(["a", "b"], **options)


def test_two_micro_steps_train_as_one_step_of_their_rows(make_config, tmp_path, helpers):
    worst = helpers.accumulation_difference(make_config, tmp_path, {"strategy": "moco"})
    assert worst < 1e-5, worst


def test_large_losses_project_without_losing_the_simplex():
    """At 1e16 and above, x - 1 == x: no rank passed and the projection raised IndexError (two regression tasks of
    targets about 1e5 at step 1)."""
    for vector in ([-1e17, -2e17], [1e20, -1e20], [1e16, 1e16 + 4]):
        projected = project_to_simplex(np.array(vector))
        assert projected.sum() == pytest.approx(1.0) and projected.min() >= 0
    moco = MoCoLoss(["a", "b"])
    moco.step_losses(torch.tensor([3.5e10, 3.4e10], dtype=torch.float64))
    assert torch.isfinite(moco.combine([torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])], 1)).all()
