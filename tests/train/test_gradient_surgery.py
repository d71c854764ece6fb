"""IMTL-G, Aligned-MTL, GradVac and Nash-MTL: each update has its paper's defining property (equal projections onto
the unit gradients; aligned gradients with condition number 1; corrected cosines reaching their targets; the Nash
bargaining condition), matches a direct float64 computation (the papers' closed forms, an SVD, PCGrad, a root finder),
and stays finite on zero and parallel gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.train.gradient_surgery import (RIDGE, AlignedMTLLoss, GradVacLoss, IMTLGLoss, NashMTLLoss, balance_matrix,
                                         nash_weights, task_gram)
from mtcore.train.losses import PCGradLoss


def _grads(seed: int, k: int, n: int = 7) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=generator, dtype=torch.float64) for _ in range(k)]


def _tasks(k: int) -> list[str]:
    return [f"t{i}" for i in range(k)]


def _logged_sum(strategy, grads):
    weights = strategy.task_weights()
    return sum(weights[t] * g for t, g in zip(strategy.task_ids, grads))


def _paper_imtl(grads: list[torch.Tensor]) -> np.ndarray:
    """Liu et al.'s closed form: α₂..K = g₁ Uᵀ (D Uᵀ)⁻¹, D and U the rows g₁ − gᵢ and u₁ − uᵢ; α₁ = 1 − Σ α₂..K."""
    g = torch.stack(grads).numpy()
    u = g / np.linalg.norm(g, axis=1, keepdims=True)
    rest = g[0] @ (u[0] - u[1:]).T @ np.linalg.inv((g[0] - g[1:]) @ (u[0] - u[1:]).T)
    return np.concatenate([[1 - rest.sum()], rest])


def _projections(d: torch.Tensor, grads: list[torch.Tensor]) -> np.ndarray:
    return np.array([float(d @ g / g.norm()) for g in grads])


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_imtl_projects_equally_onto_every_unit_gradient_and_is_k_times_the_paper_s_closed_form(seed, k):
    grads = _grads(seed, k)
    strategy = IMTLGLoss(_tasks(k))
    d = strategy.combine(grads, step=1)
    projections = _projections(d, grads)
    assert projections.min() > 0 and np.allclose(projections, projections[0], rtol=1e-9), projections
    alpha = _paper_imtl(grads)
    paper = sum(float(a) * g for a, g in zip(alpha, grads))
    assert _projections(paper, grads)[0] > 0 and paper.norm() <= max(g.norm() for g in grads)  # no safeguard applies
    assert torch.allclose(d, k * paper, rtol=1e-9, atol=1e-12)
    assert torch.allclose(_logged_sum(strategy, grads), d)


def test_imtl_flips_the_paper_s_weights_where_they_raise_every_loss_and_bounds_the_update_s_length():
    """Three tasks, a small one between two large ones: the paper's weights sum to 1 with a negative common projection
    (every loss would rise); near where their sum crosses 0 the update is longer than any task gradient."""
    def grads(size):
        return [torch.tensor(v, dtype=torch.float64) for v in ([1.0, 0.0, 0.1], [0.7 * size, 0.7 * size, 0.1 * size], [0.0, 1.0, 0.1])]

    ascent = grads(0.3)
    paper = sum(float(a) * g for a, g in zip(_paper_imtl(ascent), ascent))
    assert _projections(paper, ascent).max() < 0
    d = IMTLGLoss(_tasks(3)).combine(ascent, step=1)
    assert torch.allclose(d, -3 * paper, rtol=1e-9)  # the same direction's equal projections, made positive
    long = grads(0.7)
    paper = sum(float(a) * g for a, g in zip(_paper_imtl(long), long))
    longest = max(float(g.norm()) for g in long)
    assert paper.norm() > longest
    d = IMTLGLoss(_tasks(3)).combine(long, step=1)
    projections = _projections(d, long)
    assert float(d.norm()) == pytest.approx(3 * longest) and projections.min() > 0
    assert np.allclose(projections, projections[0], rtol=1e-9)


def test_imtl_one_task_zero_parallel_and_opposite_gradients():
    g = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    h = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)
    assert torch.allclose(IMTLGLoss(["a"]).combine([g], step=1), g)
    # orthogonal gradients of one norm: every weight 1, sum's update
    e = [torch.eye(3, dtype=torch.float64)[i] * 2 for i in range(3)]
    assert torch.allclose(IMTLGLoss(_tasks(3)).combine(e, step=1), sum(e))
    # a zero gradient: weight 0, the others balanced as if it were absent
    strategy = IMTLGLoss(["a", "b", "c"])
    with_zero = strategy.combine([g, zero, h], step=1)
    assert torch.allclose(with_zero, IMTLGLoss(["a", "c"]).combine([g, h], step=1)) and strategy.task_weights()["b"] == 0
    # parallel gradients (a singular system): the harmonic mean of their norms along them, K times
    assert torch.allclose(IMTLGLoss(["a", "b"]).combine([g, 2 * g], step=1), 2 * (4 / 3) * g)
    # opposite gradients: no direction improves both, no update
    for other in (-g, -3 * g):
        assert torch.allclose(IMTLGLoss(["a", "b"]).combine([g, other], step=1), zero, atol=1e-12)
    assert torch.equal(IMTLGLoss(["a", "b"]).combine([zero, zero], step=1), zero)
    for grads in ([g, 2 * g, h], [g, g + 1e-9 * h, h], [g.float(), (2 * g).float(), h.float()]):
        assert torch.isfinite(IMTLGLoss(_tasks(3)).combine(grads, step=1)).all()


def _svd_aligned(grads: list[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The sum of the aligned gradients from the SVD G = U S Wᵀ: σ_min Σᵢ (U_r W_rᵀ)ᵢ over the r non-zero σ."""
    u, s, wt = torch.linalg.svd(torch.stack(grads), full_matrices=False)
    r = int((s > s[0] * 1e-7).sum())
    return (s[r - 1] * u[:, :r] @ wt[:r]).sum(0), r


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_aligned_mtl_gradients_are_orthogonal_with_the_smallest_singular_value_and_sum_to_the_update(seed, k):
    grads = _grads(seed, k)
    matrix, rcond = task_gram(grads)
    aligned = torch.from_numpy(balance_matrix(matrix, rcond)) @ torch.stack(grads)
    eigenvalues = np.linalg.eigvalsh((aligned @ aligned.T).numpy())
    assert np.allclose(eigenvalues, np.linalg.eigvalsh(matrix).min(), rtol=1e-9)  # λ_min · I: condition number 1
    strategy = AlignedMTLLoss(_tasks(k))
    d = strategy.combine(grads, step=1)
    assert torch.allclose(d, aligned.sum(0)) and torch.allclose(d, _svd_aligned(grads)[0], rtol=1e-9)
    assert torch.allclose(_logged_sum(strategy, grads), d)


def test_aligned_mtl_one_task_rank_deficient_and_zero_gradients():
    g, h = _grads(7, 2, n=5)
    zero = torch.zeros(5, dtype=torch.float64)
    assert torch.allclose(AlignedMTLLoss(["a"]).combine([g], step=1), g)
    e = [torch.eye(3, dtype=torch.float64)[i] * 2 for i in range(3)]
    assert torch.allclose(AlignedMTLLoss(_tasks(3)).combine(e, step=1), sum(e))  # orthogonal, one norm: sum
    for grads, rank in (([g, h, g + h], 2), ([g, zero, h], 2), ([g, 2 * g], 1), ([g, -g], 1)):
        matrix, rcond = task_gram(grads)
        aligned = torch.from_numpy(balance_matrix(matrix, rcond)) @ torch.stack(grads)
        eigenvalues = np.sort(np.linalg.eigvalsh((aligned @ aligned.T).numpy()))[::-1]
        assert np.allclose(eigenvalues[:rank], eigenvalues[0], rtol=1e-9) and np.allclose(eigenvalues[rank:], 0, atol=1e-9)
        d = AlignedMTLLoss(_tasks(len(grads))).combine(grads, step=1)
        expected, r = _svd_aligned(grads)
        assert r == rank and torch.allclose(d, expected, rtol=1e-7, atol=1e-9), (grads, d, expected)
    assert torch.equal(AlignedMTLLoss(["a", "b"]).combine([zero, zero], step=1), zero)
    assert torch.isfinite(AlignedMTLLoss(_tasks(3)).combine([g.float(), h.float(), (g + h).float()], step=1)).all()


@pytest.mark.parametrize("k", [3, 4])
def test_gradvac_with_targets_held_at_0_is_pcgrad(k):
    conflicts = 0
    for seed in range(4):
        grads = _grads(seed, k)
        conflicts += sum(float(a @ b) < 0 for a in grads for b in grads)
        for step in (1, 2, 9):
            gradvac, pcgrad = GradVacLoss(_tasks(k), beta=0.0, seed=5), PCGradLoss(_tasks(k), seed=5)
            assert torch.allclose(gradvac.combine(grads, step), pcgrad.combine(grads, step), rtol=1e-9, atol=1e-12)
            assert torch.count_nonzero(gradvac.targets) == 0
    assert conflicts > 0


def test_gradvac_raises_each_cosine_below_its_target_to_it_and_moves_the_targets_by_the_ema_rule():
    g1, g2 = torch.tensor([1.0, 0.2, 0.0], dtype=torch.float64), torch.tensor([0.1, 2.0, -0.3], dtype=torch.float64)
    cosine = float(g1 @ g2 / (g1.norm() * g2.norm()))
    strategy = GradVacLoss(["a", "b"], beta=0.25)
    strategy.targets.copy_(torch.tensor([[0.0, 0.6], [0.1, 0.0]], dtype=torch.float64))  # 0.6 above the cosine, 0.1 below it
    d = strategy.combine([g1, g2], step=1)
    w = strategy.task_weights()  # d = g1' + g2', g1' = g1 + c g2, g2' = g2 (no correction): weights (1, 1 + c)
    assert w["a"] == pytest.approx(1.0) and w["b"] > 1.0
    corrected = g1 + (w["b"] - 1) * g2
    assert float(corrected @ g2 / (corrected.norm() * g2.norm())) == pytest.approx(0.6, abs=1e-12)
    assert torch.allclose(d, corrected + g2)
    expected = [[0.0, 0.75 * 0.6 + 0.25 * cosine], [0.75 * 0.1 + 0.25 * cosine, 0.0]]  # the cosine seen before correcting
    assert torch.allclose(strategy.targets, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)
    h1, h2 = torch.tensor([0.5, -1.0, 0.2], dtype=torch.float64), torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    strategy.combine([h1, h2], step=2)
    new = float(h1 @ h2 / (h1.norm() * h2.norm()))
    assert strategy.targets[1, 0].item() == pytest.approx(0.75 * expected[1][0] + 0.25 * new, abs=1e-12)


def test_gradvac_targets_are_saved_in_the_state_dict_and_resume_the_same_updates():
    grads = _grads(3, 3)
    first = GradVacLoss(_tasks(3), beta=0.5)
    for step in range(1, 4):
        first.combine([g * (1 + 0.1 * step) for g in grads], step)
    state = first.state_dict()
    assert set(state) == {"targets"} and torch.count_nonzero(state["targets"]) == 6
    resumed = GradVacLoss(_tasks(3), beta=0.5)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.combine(grads, 4), first.combine(grads, 4))
    fresh = GradVacLoss(_tasks(3), beta=0.5)
    assert not torch.allclose(fresh.combine(grads, 4), resumed.combine(grads, 4))


def test_gradvac_zero_and_parallel_gradients_and_its_options():
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)
    strategy = GradVacLoss(_tasks(3), beta=1.0)
    for step, grads in enumerate(([g, zero, 2 * g], [g, -g, zero], [g, g, g], [zero, zero, zero]), start=1):
        assert torch.isfinite(strategy.combine(grads, step)).all() and torch.isfinite(strategy.targets).all()
    assert strategy.targets[0, 1] == pytest.approx(1.0) and strategy.targets[1, 0] == pytest.approx(1.0)  # last: parallel
    assert torch.isfinite(strategy.combine([g, -g, 2 * g], 5)).all()  # targets of 1 cannot be reached: no correction
    for options, match in (({"beta": 1.5}, "option 'beta'"), ({"beta": True}, "option 'beta'"), ({"seed": 0.5}, "option 'seed'")):
        with pytest.raises(ConfigError, match=match) as info:
            GradVacLoss(["a", "b"], **options)
        assert "\n" not in str(info.value)


def _nash_scale(grads: list[torch.Tensor]) -> float:
    """mtcore's factor on the paper's update: ``‖d‖² = Σ ‖gᵢ‖²`` over the K' tasks with a non-zero gradient."""
    return float(np.sqrt(sum(float(g @ g) for g in grads) / sum(bool(g.any()) for g in grads)))


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", range(3))
def test_nash_mtl_weights_solve_the_bargaining_condition_and_match_an_independent_root(seed, k):
    from scipy.optimize import root

    grads = _grads(seed, k)
    matrix, _ = task_gram(grads)
    alpha = nash_weights(matrix)
    assert alpha.min() > 0 and np.allclose(alpha * (matrix @ alpha), 1.0, rtol=0, atol=1e-8)  # (M α)ᵢ = 1 / αᵢ
    norms = np.sqrt(np.diag(matrix))
    found = root(lambda a: a * (matrix @ a) - 1.0, 1.0 / norms, jac=lambda a: np.diag(matrix @ a) + a[:, None] * matrix,
                 tol=1e-12)
    assert np.abs(found.fun).max() < 1e-12 and np.allclose(alpha, found.x, rtol=1e-7, atol=0), (alpha, found.x)
    strategy = NashMTLLoss(_tasks(k))
    d = strategy.combine(grads, step=1)
    paper = sum(float(a) * g for a, g in zip(alpha, grads))
    assert torch.allclose(d, _nash_scale(grads) * paper, rtol=1e-12, atol=0)
    assert torch.allclose(_logged_sum(strategy, grads), d)
    assert float(paper @ paper) == pytest.approx(k, rel=1e-8)  # the paper's update has norm √K
    gains = np.array([float(d @ g) for g in grads])  # every task's loss falls: gᵢ · d = scale / αᵢ
    assert np.allclose(gains, _nash_scale(grads) / alpha, rtol=1e-8)


def test_nash_mtl_one_task_is_its_normalised_gradient_times_its_norm_and_the_direction_ignores_loss_scales():
    g, h, j = _grads(11, 3)
    alpha = nash_weights(task_gram([g])[0])
    assert alpha[0] == pytest.approx(1 / float(g.norm()), rel=1e-9)  # the paper: α = 1 / ‖g‖, d = g / ‖g‖
    assert torch.allclose(NashMTLLoss(["a"]).combine([g], step=1), g, rtol=1e-9)  # times ‖g‖: sum's update
    e = [torch.eye(3, dtype=torch.float64)[i] * 2 for i in range(3)]
    assert torch.allclose(NashMTLLoss(_tasks(3)).combine(e, step=1), sum(e), rtol=1e-9)  # orthogonal, one norm: sum
    d = NashMTLLoss(_tasks(3)).combine([g, h, j], step=1)
    scales = (1e-6, 1.0, 3e3)  # each task's loss scaled: the weights take the scale, the direction stays
    scaled = NashMTLLoss(_tasks(3)).combine([c * x for c, x in zip(scales, (g, h, j))], step=1)
    assert torch.allclose(scaled / scaled.norm(), d / d.norm(), rtol=0, atol=1e-9)
    assert float(scaled.norm()) ** 2 == pytest.approx(sum(float((c * x).norm()) ** 2 for c, x in zip(scales, (g, h, j))), rel=1e-8)


def test_nash_mtl_zero_parallel_and_opposite_gradients():
    g, h = _grads(7, 2, n=5)
    zero = torch.zeros(5, dtype=torch.float64)
    # a zero gradient: weight 0, the others bargain as if its task were absent
    strategy = NashMTLLoss(["a", "b", "c"])
    assert torch.allclose(strategy.combine([g, zero, h], step=1), NashMTLLoss(["a", "c"]).combine([g, h], step=1), rtol=1e-12)
    assert strategy.task_weights()["b"] == 0
    # parallel gradients (a singular M, no ridge needed): αᵢ ∝ 1 / ‖gᵢ‖, d along them with norm √(Σ ‖gᵢ‖²)
    assert torch.allclose(NashMTLLoss(["a", "b"]).combine([g, 2 * g], step=1), 5 ** 0.5 * g, rtol=1e-9)
    # opposite gradients (no direction improves both): weights about scale / (‖gᵢ‖ √ε) that cancel, d about 0
    for other in (-g, -3 * g):
        strategy = NashMTLLoss(["a", "b"])
        d = strategy.combine([g, other], step=1)
        assert float(d.norm()) < 1e-9 * float(g.norm())
        expected = [_nash_scale([g, other]) / (float(x.norm()) * RIDGE ** 0.5) for x in (g, other)]
        assert np.allclose(list(strategy.task_weights().values()), expected, rtol=1e-4)
    # with a third task, the opposite pair cancels and the update serves the third, off the pair's line
    for other in (-g, -3 * g):
        d = NashMTLLoss(_tasks(3)).combine([g, other, h], step=1)
        off = h - float(h @ g) / float(g @ g) * g
        assert torch.allclose(d, _nash_scale([g, other, h]) * off / off.norm(), rtol=1e-8, atol=0)
    assert torch.equal(NashMTLLoss(["a", "b"]).combine([zero, zero], step=1), zero)
    for grads in ([g, 2 * g, h], [g, g + 1e-9 * h, h], [g, -g + 1e-9 * h, h], [g.float(), (-g).float(), h.float()]):
        strategy = NashMTLLoss(_tasks(3))
        assert torch.isfinite(strategy.combine(grads, step=1)).all()
        assert all(np.isfinite(w) for w in strategy.task_weights().values())


def test_nash_mtl_holds_its_weights_between_solves_and_resumes_them_from_the_state_dict():
    grads = _grads(5, 3)
    later = [g * (1 + 0.3 * i) + 0.1 for i, g in enumerate(grads)]
    strategy = NashMTLLoss(_tasks(3), update_every=3)
    first = strategy.combine(grads, step=1)
    held = strategy.task_weights()
    for step in (2, 3):  # the weights of step 1, on the new gradients
        assert torch.allclose(strategy.combine(later, step), _logged_sum(strategy, later)) and strategy.task_weights() == held
    assert strategy.task_weights() == held
    assert torch.allclose(NashMTLLoss(_tasks(3)).combine(grads, step=1), first)
    state = strategy.state_dict()
    assert set(state) == {"held"}
    resumed = NashMTLLoss(_tasks(3), update_every=3)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.combine(later, 3), strategy.combine(later, 3))
    assert not torch.allclose(NashMTLLoss(_tasks(3), update_every=3).combine(later, 3), resumed.combine(later, 3))  # nothing held: solves
    solved = strategy.combine(later, 4)  # 3 steps on: solves again
    assert torch.allclose(solved, NashMTLLoss(_tasks(3)).combine(later, 4)) and strategy.task_weights() != held
    for value in (0, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="option 'update_every'") as info:
            NashMTLLoss(["a", "b"], update_every=value)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("scale", ["median", "rmse"])
def test_aligned_mtl_scale_picks_the_eigenvalue_whose_root_is_the_aligned_norm(scale):
    grads = _grads(11, 4)
    matrix, rcond = task_gram(grads)
    values = np.sort(np.linalg.eigvalsh(matrix))
    chosen = {"median": values[1], "rmse": values.mean()}[scale]  # 4 eigenvalues: torch.median's lower middle one
    aligned = torch.from_numpy(balance_matrix(matrix, rcond, scale)) @ torch.stack(grads)
    assert np.allclose((aligned @ aligned.T).numpy(), chosen * np.eye(4), atol=1e-9 * chosen)
    d = AlignedMTLLoss(_tasks(4), scale=scale).combine(grads, step=1)
    assert torch.allclose(d, np.sqrt(chosen / values[0]) * AlignedMTLLoss(_tasks(4)).combine(grads, step=1))
    with pytest.raises(ConfigError, match="option 'scale'.*'min', 'median', 'rmse'"):
        AlignedMTLLoss(_tasks(2), scale="mean")


def _tiny_model(layers: int = 2):
    from torch import nn

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense, self.norm = nn.Linear(3, 3), nn.LayerNorm(3)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings = nn.Embedding(5, 3)
            self.layer = nn.ModuleList([Layer() for _ in range(layers)])
            self.pooler = nn.Linear(3, 2)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.heads = Encoder(), nn.ModuleDict({"a": nn.Linear(3, 2)})

    return Model()


@pytest.mark.parametrize("groups", ["layers", "parameters"])
def test_gradvac_groups_keep_targets_and_corrections_per_group(groups):
    """Two tasks (so the seeded visiting order cannot matter): each group's slice of the update is what GradVac over
    the whole encoder gives for that slice alone, and each group moves its own targets."""
    from mtcore.train.optim import split_parameters

    model = _tiny_model()
    shared, _ = split_parameters(model)
    sizes = [p.numel() for p in shared]
    strategy = GradVacLoss(["a", "b"], beta=0.5, groups=groups)
    strategy.attach(model)
    expected_groups = 4 if groups == "layers" else len(shared)  # embeddings, layer0, layer1, top
    assert strategy.targets.shape == (expected_groups, 2, 2) and len(strategy.group_names) == expected_groups
    if groups == "layers":
        assert strategy.group_names == ["encoder.embeddings", "encoder.layer0", "encoder.layer1", "encoder.top"]
    bounds = np.cumsum([0, *sizes])
    if groups == "layers":  # embeddings: 1 tensor, each layer: 4, pooler: 2
        cuts = [0, 1, 5, 9, 11]
        slices = [(bounds[a], bounds[b]) for a, b in zip(cuts, cuts[1:])]
    else:
        slices = list(zip(bounds[:-1], bounds[1:]))
    singles = [GradVacLoss(["a", "b"], beta=0.5) for _ in slices]
    for step in range(1, 4):
        grads = _grads(step, 2, n=int(bounds[-1]))
        d = strategy.combine(grads, step)
        for single, (start, stop), targets in zip(singles, slices, strategy.targets):
            part = single.combine([g[start:stop] for g in grads], step)
            assert torch.allclose(d[start:stop], part, rtol=1e-12, atol=1e-12)
            assert torch.allclose(targets, single.targets, rtol=0, atol=1e-12)
    assert len({round(float(t[0, 1]), 9) for t in strategy.targets}) > 1  # the groups' targets differ
    state = strategy.state_dict()
    resumed = GradVacLoss(["a", "b"], beta=0.5, groups=groups)
    resumed.attach(_tiny_model())
    resumed.load_state_dict(state)
    grads = _grads(9, 2, n=int(bounds[-1]))
    assert torch.equal(resumed.combine(grads, 4), strategy.combine(grads, 4))


def test_gradvac_groups_option_and_use_without_attach():
    with pytest.raises(ConfigError, match="option 'groups'.*'encoder', 'layers', 'parameters'.*'layer'"):
        GradVacLoss(["a", "b"], groups="layer")
    unattached = GradVacLoss(["a", "b"], groups="layers")
    with pytest.raises(ConfigError, match=r"attach\(model\)"):
        unattached.combine(_grads(0, 2), step=1)
    attached = GradVacLoss(["a", "b"], groups="layers")
    attached.attach(_tiny_model())
    with pytest.raises(ConfigError, match="cover 59 gradient entries, but the gradients have 7"):
        attached.combine(_grads(0, 2), step=1)
    plain = GradVacLoss(["a", "b"])
    plain.attach(_tiny_model())  # the whole encoder: nothing to size
    assert plain.targets.shape == (2, 2)


def test_gradvac_groups_on_a_frozen_encoder_combine_nothing():
    """'unexpected ValueError: need at least one array to stack' when no encoder parameter trains."""
    model = _tiny_model()
    model.encoder.requires_grad_(False)
    for groups in ("layers", "parameters"):
        strategy = GradVacLoss(["a", "b"], groups=groups)
        strategy.attach(model)
        empty = [torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)]
        assert strategy.combine(empty, step=1).numel() == 0 and strategy.task_weights() == {"a": 1.0, "b": 1.0}
