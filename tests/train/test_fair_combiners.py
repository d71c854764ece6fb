"""UPGrad and FairGrad: each update has its paper's defining property (no task's loss rises, the projections of an
independent solver; the α-fair condition), meets ``sum`` and ``nash_mtl`` where the papers say it does, and stays
finite on zero, parallel and opposite gradients."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.train.fair_combiners import MAX_ALPHA, FairGradLoss, UPGradLoss, fair_weights, fairness_ridge
from mtcore.train.gradient_surgery import NashMTLLoss, task_gram


def _grads(seed: int, k: int, n: int = 7, spread: bool = True) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    scales = torch.rand(k, generator=generator, dtype=torch.float64) * 10 + 0.1 if spread else torch.ones(k, dtype=torch.float64)
    return [float(s) * torch.randn(n, generator=generator, dtype=torch.float64) for s in scales]


def _tasks(k: int) -> list[str]:
    return [f"t{i}" for i in range(k)]


def _logged_sum(strategy, grads):
    weights = strategy.task_weights()
    return sum(weights[t] * g for t, g in zip(strategy.task_ids, grads))


def _dual_cone_projection(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The point of ``{y : rows @ y >= 0}`` nearest ``x``, by SLSQP in the gradients' own space (not the Gram matrix)."""
    from scipy.optimize import minimize

    found = minimize(lambda y: float(((y - x) ** 2).sum()), x, jac=lambda y: 2 * (y - x), method="SLSQP",
                     constraints=[{"type": "ineq", "fun": lambda y: rows @ y, "jac": lambda y: rows}],
                     options={"ftol": 1e-13, "maxiter": 1000})
    assert found.success or found.status == 8, found.message  # 8: no descent left at the tolerance, at the optimum
    assert (rows @ found.x).min() >= -1e-9 * float(np.sum(rows ** 2))
    return found.x


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", range(4))
def test_upgrad_sums_the_projections_onto_the_dual_cone_and_conflicts_with_no_task(seed, k):
    grads = _grads(seed, k)
    preferences = {t: 0.5 + i for i, t in enumerate(_tasks(k))}
    strategy = UPGradLoss(_tasks(k), weights=preferences)
    d = strategy.combine(grads, step=1)
    rows = torch.stack(grads).numpy()
    expected = sum(_dual_cone_projection(preferences[t] * rows[i], rows) for i, t in enumerate(_tasks(k)))
    assert np.allclose(d.numpy(), expected, rtol=0, atol=1e-6 * np.linalg.norm(expected)), (d, expected)
    gains = rows @ d.numpy()
    assert gains.min() >= -1e-9 * float(np.sum(rows ** 2)), gains  # no task's loss rises to first order
    assert torch.allclose(_logged_sum(strategy, grads), d)
    assert torch.allclose(strategy.combine(grads, step=2), d)  # the preferences stay (not the last step's logged weights)


def test_upgrad_adds_gradients_that_conflict_with_none_as_they_are_and_drops_what_conflicts():
    a, b, c = (torch.tensor(v, dtype=torch.float64) for v in ([1.0, 0, 0], [1.0, 2.0, 0], [0, 0, 3.0]))  # dot products >= 0
    assert torch.allclose(UPGradLoss(_tasks(3)).combine([a, b, c], step=1), a + b + c, rtol=1e-9)  # sum's update
    assert torch.allclose(UPGradLoss(_tasks(3), weights={"t1": 3.0}).combine([a, b, c], step=1), a + 3 * b + c, rtol=1e-9)
    # opposite gradients cancel each other's projections; a third, orthogonal one is kept
    g, h = torch.tensor([2.0, 0, 0], dtype=torch.float64), torch.tensor([0, 1.0, 0], dtype=torch.float64)
    strategy = UPGradLoss(_tasks(3))
    assert torch.allclose(strategy.combine([g, -g, h], step=1), h, atol=1e-12)
    assert torch.allclose(_logged_sum(strategy, [g, -g, h]), h, atol=1e-12)
    zero = torch.zeros(3, dtype=torch.float64)
    assert torch.equal(UPGradLoss(["a", "b"]).combine([zero, zero], step=1), zero)
    assert torch.allclose(UPGradLoss(["a", "b"]).combine([g, zero], step=1), g)  # a zero gradient constrains nothing
    for grads in ([g, 2 * g, h], [g, -g + 1e-9 * h, h], [g.float(), (-g).float(), h.float()]):
        assert torch.isfinite(UPGradLoss(_tasks(3)).combine(grads, step=1)).all()
    with pytest.raises(ConfigError, match="preference.*is 0"):
        UPGradLoss(["a", "b"], weights={"a": 0, "b": 0})


@pytest.mark.parametrize("alpha", [0.05, 0.5, 1.0, 2.0, 5.0, 20.0, MAX_ALPHA])
@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_fairgrad_weights_solve_the_alpha_fair_condition(alpha, k):
    for seed in range(6):
        grads = _grads(seed, k)
        matrix, _ = task_gram(grads)
        weights = fair_weights(matrix, alpha)
        scaled = matrix / (np.trace(matrix) / k) + fairness_ridge(alpha) * np.eye(k)
        assert weights.min() >= 0 and np.isfinite(weights).all()
        with np.errstate(divide="ignore", over="ignore"):
            wanted = weights ** (-1.0 / alpha)
        gains = scaled @ weights  # every task improves: gᵢ · d > 0 (to float64's rounding of M̃ w)
        reach = 1e-12 * float(np.abs(scaled).max() * weights.sum())
        assert gains.min() > -reach, gains
        held = weights > 1e-250  # a weight a float cannot hold (a task far ahead of the others) is 0: its gain may be larger
        assert np.allclose(gains[held], wanted[held], rtol=1e-6, atol=reach), (alpha, seed, gains, wanted)
        low = ~held & np.isfinite(wanted)
        assert (gains[low] >= wanted[low] * (1 - 1e-6)).all(), (gains, wanted)


def test_fairgrad_meets_nash_mtl_at_alpha_1_sum_on_orthogonal_gradients_and_scales_with_the_gradients():
    for seed in range(3):
        grads = _grads(seed, 3)
        assert torch.allclose(FairGradLoss(_tasks(3), alpha=1.0).combine(grads, 1), NashMTLLoss(_tasks(3)).combine(grads, 1),
                              rtol=1e-6)
    e = [torch.eye(3, dtype=torch.float64)[i] * 2 for i in range(3)]
    for alpha in (0.5, 2.0, 10.0):
        assert torch.allclose(FairGradLoss(_tasks(3), alpha=alpha).combine(e, 1), sum(e), rtol=2e-5)  # orthogonal (the ridge), one norm: sum
    grads = _grads(5, 3)
    d = FairGradLoss(_tasks(3)).combine(grads, 1)
    assert torch.allclose(FairGradLoss(_tasks(3)).combine([1e-4 * g for g in grads], 1), 1e-4 * d, rtol=1e-7)  # as sum's
    # a larger alpha favours the task that improves least
    gains = {alpha: [float(g @ FairGradLoss(_tasks(3), alpha=alpha).combine(grads, 1)) for g in grads] for alpha in (0.1, 10.0)}
    worst = int(np.argmin(gains[0.1]))
    assert gains[10.0][worst] / max(gains[10.0]) > gains[0.1][worst] / max(gains[0.1]), gains


def test_fairgrad_zero_and_opposite_gradients_and_its_option():
    g, h = _grads(7, 2, n=5)
    zero = torch.zeros(5, dtype=torch.float64)
    strategy = FairGradLoss(["a", "b", "c"])
    assert torch.allclose(strategy.combine([g, zero, h], 1), FairGradLoss(["a", "c"]).combine([g, h], 1), rtol=1e-12)
    assert strategy.task_weights()["b"] == 0
    assert torch.equal(FairGradLoss(["a", "b"]).combine([zero, zero], 1), zero)
    for alpha in (0.5, 2.0, 50.0):  # an opposite pair cancels; the update serves the third task, off the pair's line
        d = FairGradLoss(_tasks(3), alpha=alpha).combine([g, -g, h], 1)
        off = h - float(h @ g) / float(g @ g) * g
        assert torch.allclose(d / d.norm(), off / off.norm(), atol=1e-4), alpha
        assert torch.isfinite(FairGradLoss(_tasks(3), alpha=alpha).combine([g.float(), (-g).float(), h.float()], 1)).all()
    for bad in (0, -1, True, "2", float("inf"), MAX_ALPHA * 2):
        with pytest.raises(ConfigError, match="option 'alpha'"):
            FairGradLoss(["a", "b"], alpha=bad)


@pytest.mark.parametrize("strategy, options", [("upgrad", {}), ("fairgrad", {"alpha": 5})])
def test_a_run_trains_with_the_strategy_its_options_and_preferences(strategy, options, make_config, tmp_path):
    from mtcore import Trainer

    config = make_config(loss={"strategy": strategy, "options": options, **({"weights": {"sent": 2.0}} if strategy == "upgrad" else {})},
                         schedule={"max_steps": 4, "warmup_steps": 1}, checkpoint={"every": None})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["steps"] == 4 and all(np.isfinite(v) for v in summary["final"]["metrics"].values())
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    weights = [e for e in events if e["event"] == "loss_weights"]
    assert weights and len(weights[-1]["weights"]) == len(config["tasks"]), weights[-1:]


def test_upgrad_stays_unconflicting_and_bounded_with_zero_tiny_and_opposite_gradients():
    """A zero or a 1e-8-scale gradient, or exactly opposite ones, made the factor of M singular: weights of 1e11-1e15 that
    cancelled in float32 and an update against a task (4-14% of random draws)."""
    from mtcore.train.fair_combiners import upgrad_weights

    rng = np.random.default_rng(0)
    for trial in range(300):
        g = rng.normal(size=(4, 8)) * rng.uniform(0.1, 10, size=(4, 1))
        g[trial % 4] *= (0.0, 1e-8, 1.0)[trial % 3]  # a zero, a tiny or an ordinary gradient
        if trial % 5 == 0:
            g[(trial + 1) % 4] = -2 * g[(trial + 2) % 4]  # two exactly opposite
        matrix = g @ g.T
        weights = upgrad_weights(matrix, np.ones(4))
        assert np.abs(weights).max() < 1e6, weights
        gains = g @ (weights @ g)
        assert gains.min() >= -1e-6 * float(np.trace(matrix)), (trial, weights, gains)
        assert all(weights[i] == 0 for i in range(4) if not g[i].any())  # a zero gradient: weight 0


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.3, 0.45])
def test_fairgrad_with_a_small_alpha_solves_opposite_gradients(alpha):
    """The ridge fell below float64's reach next to a diagonal of 1 (alpha < 0.46): a singular Newton system, a traceback."""
    g, h = _grads(3, 2, n=5)
    for grads in ([g, -g], [g, -2 * g], [g, -g, h]):
        d = FairGradLoss(_tasks(len(grads)), alpha=alpha).combine(grads, 1)
        assert torch.isfinite(d).all()
