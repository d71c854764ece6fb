"""MGDA and CAGrad: their weights solve the papers' problems (checked against a brute-force search over
the simplex), their updates have the scale of ``sum``, and a run trains with them from the config."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.train.gradient_balancers import CAGradLoss, MGDALoss, cagrad_weights, gram, min_norm_weights


def _simplex(k: int, steps: int = 60):
    for point in itertools.product(range(steps + 1), repeat=k - 1):
        if sum(point) <= steps:
            yield np.array([*point, steps - sum(point)], dtype=float) / steps


def _grads(seed: int, k: int, n: int = 6) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=generator, dtype=torch.float64) for _ in range(k)]


@pytest.mark.parametrize("seed", range(6))
def test_min_norm_weights_reach_the_smallest_norm_of_the_convex_hull(seed):
    grads = _grads(seed, 3)
    matrix = gram(grads)
    alpha = min_norm_weights(matrix)
    assert alpha.min() >= -1e-12 and alpha.sum() == pytest.approx(1.0)
    best = min(float(a @ matrix @ a) for a in _simplex(3))
    assert float(alpha @ matrix @ alpha) <= best + 1e-9


@pytest.mark.parametrize("scale", [1e-16, 1e-15, 1e-8, 1.0, 1e8])
def test_min_norm_weights_do_not_change_with_the_gradients_scale(scale):
    """The exact solver compared objective values with an absolute 1e-15: for gradients of norm below ~3e-8 it kept
    one task's gradient (weights [1, 0, 0]), an update that could raise another task's loss."""
    matrix = gram(_grads(1, 3))
    expected = min_norm_weights(matrix)
    assert expected.max() < 0.99  # an interior point: the test can tell it from one task's gradient
    assert min_norm_weights(matrix * scale) == pytest.approx(expected, abs=1e-9)


def test_mgda_on_two_gradients_matches_the_closed_form_and_stops_at_a_pareto_stationary_point():
    g1, g2 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64)
    alpha = min_norm_weights(gram([g1, g2]))
    expected = float((g2 - g1) @ g2 / ((g2 - g1) @ (g2 - g1)))  # Sener & Koltun's two-task solution
    assert alpha[0] == pytest.approx(expected)
    opposite = MGDALoss(["a", "b"]).combine([g1, -g1], step=1)
    assert torch.allclose(opposite, torch.zeros(2, dtype=torch.float64))  # no direction improves both: no update
    same = MGDALoss(["a", "b"]).combine([g1, g1], step=1)
    assert torch.allclose(same, 2 * g1)  # the scale of sum


@pytest.mark.parametrize("seed", range(4))
def test_cagrad_weights_minimise_the_paper_s_dual(seed):
    grads, c = _grads(seed, 3), 0.5
    matrix = gram(grads)
    w = cagrad_weights(matrix, c)
    b = np.full(3, 1 / 3)
    radius = c * np.sqrt(b @ matrix @ b)

    def objective(x):
        return float(x @ matrix @ b + radius * np.sqrt(x @ matrix @ x + 1e-8))

    assert objective(w) <= min(objective(x) for x in _simplex(3)) + 1e-4


def test_cagrad_improves_the_worst_task_more_than_the_mean_and_c_0_is_sum():
    grads = [torch.tensor([1.0, 0.1], dtype=torch.float64), torch.tensor([-0.8, 1.0], dtype=torch.float64)]
    d = CAGradLoss(["a", "b"], c=0.5).combine(grads, step=1)
    mean = sum(grads)
    worst = lambda u: min(float(u @ g) for g in grads)  # noqa: E731 - the first-order gain of the task that gains least
    assert worst(d / d.norm()) > worst(mean / mean.norm())
    assert torch.allclose(CAGradLoss(["a", "b"], c=0).combine(grads, step=1), mean)
    weights = CAGradLoss(["a", "b"], c=0.5)
    weights.combine(grads, step=1)
    logged = weights.task_weights()  # d = Σ weight_i g_i
    assert torch.allclose(logged["a"] * grads[0] + logged["b"] * grads[1], d)
    with pytest.raises(ConfigError, match="option 'c'"):
        CAGradLoss(["a", "b"], c=-1)


@pytest.mark.parametrize("strategy", ["mgda", "cagrad", "gradnorm", "imtl", "aligned_mtl", "gradvac", "nash_mtl", "db_mtl", "moco",
                                      "excess_mtl"])
def test_a_run_trains_with_the_strategy_and_logs_its_weights(strategy, make_config, tmp_path):
    from mtcore import Trainer

    config = make_config(loss={"strategy": strategy}, schedule={"max_steps": 6, "warmup_steps": 1}, checkpoint={"every": None})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["steps"] == 6 and all(np.isfinite(v) for v in summary["final"]["metrics"].values())
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    weights = [e for e in events if e["event"] == "loss_weights"]
    assert weights and len(weights[-1]["weights"]) == len(config["tasks"]), weights[-1:]


@pytest.mark.parametrize("strategy", ["pcgrad", "gradnorm", "db_mtl"])
def test_gradient_accumulation_combines_the_gradients_of_the_whole_step(strategy, make_config, tmp_path, helpers):
    """2 micro-steps of 4 rows train as one step of 8 rows: each task's gradient (and loss, for GradNorm's weights) is
    summed over the micro-steps before it is combined (it was refused: combining each micro-step alone differs)."""
    worst = helpers.accumulation_difference(make_config, tmp_path, {"strategy": strategy})
    assert worst < 1e-5, worst


def test_above_the_exact_limit_the_min_norm_weights_come_from_slsqp(monkeypatch):
    import mtcore.train.gradient_balancers as balancers

    monkeypatch.setattr(balancers, "EXACT_TASKS", 2)
    matrix = gram(_grads(4, 3))
    alpha = balancers.min_norm_weights(matrix)
    assert alpha.min() >= 0 and alpha.sum() == pytest.approx(1.0)
    assert float(alpha @ matrix @ alpha) <= min(float(a @ matrix @ a) for a in _simplex(3)) + 1e-6


def test_cagrad_does_not_depend_on_the_gradients_size_and_logs_sane_weights_for_a_zero_gradient():
    """SLSQP's absolute tolerance stopped it at its starting point for small gradients (×0.001: a scaled sum),
    and a zero task gradient logged weights like 1.3e8."""
    grads = [torch.tensor([1.0, 0.2, 0.0], dtype=torch.float64), torch.tensor([-0.6, 1.0, 0.1], dtype=torch.float64),
             torch.tensor([0.1, -0.9, 0.5], dtype=torch.float64)]
    base = cagrad_weights(gram(grads), 0.5)
    for scale in (1e-2, 1e-3, 1e-5):
        assert np.allclose(cagrad_weights(gram([g * scale for g in grads]), 0.5), base, atol=1e-3), scale
    strategy = CAGradLoss(["a", "b", "c"], c=0.5)
    zero = [grads[0], grads[1], torch.zeros(3, dtype=torch.float64)]
    d = strategy.combine(zero, step=1)
    weights = strategy.task_weights()
    assert all(0 <= w < 10 for w in weights.values()), weights
    assert torch.allclose(sum(weights[t] * g for t, g in zip("abc", zero)), d)


@pytest.mark.parametrize("strategy", ["mgda", "cagrad", "pcgrad", "gradnorm"])
def test_a_nan_loss_stops_the_run_with_the_nan_message_not_a_solver_error(strategy, make_config, tmp_path):
    """mgda crashed with 'unexpected LinAlgError: SVD did not converge' (and LAPACK lines) on a NaN gradient."""
    from mtcore.cli.app import app
    from typer.testing import CliRunner
    import yaml

    config = make_config(loss={"strategy": strategy}, schedule={"max_steps": 6, "warmup_steps": 1}, checkpoint={"every": None})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(tmp_path / "run.yaml"), "--output-dir", str(tmp_path / "run"),
                                      "debug.inject_nan_at_step=3"])
    assert result.exit_code == 1 and "became NaN or infinite at step 3" in result.output, result.output
    assert "unexpected" not in result.output


def test_mgda_warns_once_when_a_task_has_no_gradient_on_the_encoder():
    mgda = MGDALoss(["a", "b"])
    g, zero = torch.tensor([1.0, 2.0]), torch.zeros(2)
    with pytest.warns(UserWarning, match="task 'b' has no gradient on the shared encoder at step 3") as caught:
        update = mgda.combine([g, zero], 3)
    assert torch.equal(update, torch.zeros(2)) and len(caught) == 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mgda.combine([g, zero], 4)  # once a run
        MGDALoss(["a", "b"]).combine([g, -g], 1)  # opposite gradients: 0 too, but both tasks reach the encoder


def test_every_built_in_strategy_but_the_fixed_ones_and_pcgrad_logs_its_weights():
    """docs/loss-strategies.md: single, sum and weighted (fixed weights) and pcgrad (projections) log no loss_weights."""
    from mtcore.plugins import load_registry

    registry = load_registry()
    built_in = [c for c in registry.components["loss"].values() if c.plugin == "mtcore"]
    silent = sorted(c.name for c in built_in if not getattr(c.load(), "logs_weights", False))
    assert silent == ["pcgrad", "single", "sum", "weighted"]
    assert len(built_in) == 22  # docs/benchmarks.md's loss table has a row for each
