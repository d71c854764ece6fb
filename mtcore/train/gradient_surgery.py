"""More loss strategies that combine the tasks' gradients on the shared encoder: IMTL-G, Aligned-MTL, GradVac and
Nash-MTL.

Like ``mgda`` and ``cagrad`` (:mod:`mtcore.train.gradient_balancers`), each is a
:class:`~mtcore.train.losses.GradientCombiner`: one batch of every task per step, one backward pass per task,
the flat gradients ``gᵢ`` of the shared parameters combined into the encoder's update (summed over micro-steps and
averaged over processes first, so every process takes the same update); heads get their own task's gradient.
Each works on the tasks' Gram matrix ``M = G Gᵀ`` (``K × K``, in float64, one host read per step), returns an
update on the scale of ``sum`` and logs, at logging steps (``loss_weights`` events), each task's effective weight in
the last update, ``d = Σ weightᵢ · gᵢ``.

* ``imtl`` — IMTL-G, the gradient half of "Towards Impartial Multi-task Learning" (Liu et al., ICLR 2021): the
  combination ``Σ αᵢ gᵢ`` with ``Σ αᵢ = 1`` whose projections onto every task's unit gradient ``uᵢ = gᵢ / ‖gᵢ‖``
  are equal, so no task's direction is favoured whatever its gradient's size. The paper's closed form
  ``α₂..K = g₁ Uᵀ (D Uᵀ)⁻¹`` (``D``, ``U`` the rows ``g₁ − gᵢ``, ``u₁ − uᵢ``) is, from the Gram matrix,
  ``α ∝ N⁻¹ C⁻¹ 1`` with ``C`` the tasks' cosines and ``N`` their norms; ``C⁻¹`` is a pseudo-inverse, so parallel
  gradients (a singular ``C``) get the least-squares answer, and opposite gradients of any sizes ``0``: no direction
  improves both. The update is ``K'`` times the paper's, ``K'`` the tasks with a non-zero gradient: equal,
  orthogonal gradients give ``sum``'s update; a task whose gradient is 0 (its loss does not reach the encoder) gets
  weight 0 and the others are balanced among themselves. From 3 tasks the paper's weights, summing to 1, can make
  the common projection negative (every task's loss would rise; 4% of synthetic draws of strongly correlated
  gradients of unequal sizes); then their sign is flipped (they sum to −1), and where mixed-sign weights would make
  the update longer than the longest task gradient (the bound of any convex combination) it is shortened to that
  length. Neither changes the paper's update when its weights are all ``>= 0``. Option ``loss_scale`` (default
  false: IMTL-G alone) adds IMTL-L, the paper's hybrid IMTL (LibMTL's ``IMTL``): a learned scale ``sᵢ`` per task
  (a parameter, from 0; it joins the optimizer at the head learning rate without weight decay, and checkpoints)
  and each task trains on ``e^sᵢ Lᵢ − sᵢ``, ``Lᵢ`` the task's loss of the whole step: ``sᵢ`` gets
  ``e^sᵢ Lᵢ − 1`` (towards ``e^sᵢ Lᵢ = 1``, ``sᵢ = −log Lᵢ``), each head the gradient of ``e^sᵢ Lᵢ``, and IMTL-G
  combines the encoder gradients ``e^sᵢ gᵢ`` of the scaled losses. Logged weights are then those of the raw
  ``gᵢ``: the IMTL-G weight times ``e^sᵢ``.
* ``aligned_mtl`` — Aligned-MTL (Senushkin et al., CVPR 2023, "Independent Component Alignment for Multi-Task
  Learning"): with ``M = V Λ Vᵀ`` restricted to its non-zero eigenvalues, the balance matrix
  ``B = √λ_min · V Λ^(−1/2) Vᵀ`` makes the aligned gradients ``B G`` orthogonal with equal norms ``√λ_min`` (their
  Gram matrix is ``λ_min`` times the identity on ``M``'s range: condition number 1); the update is their sum,
  ``d = Σᵢ (B 1)ᵢ gᵢ``, as the authors' code and LibMTL (already the scale of ``sum``: orthogonal gradients of one
  norm give ``sum``'s update). Option ``scale`` is the authors' ``scale_mode``: ``min`` (``√λ_min``), ``median``
  (the root of the kept eigenvalues' lower median, as ``torch.median``) or ``rmse`` (the root of their mean). A task whose gradient is 0, or lies in the others' span, adds no eigen-direction.
  Eigenvalues below ``K · eps · λ_max`` (float32's ``eps``) count as 0, as in the authors' code.
* ``gradvac`` — Gradient Vaccine (Wang et al., ICLR 2021, "Gradient Vaccine: Investigating and Improving
  Multi-task Optimization in Massively Multilingual Models"): PCGrad with a target similarity per ordered task
  pair. Each task's gradient, visiting the others in a random order seeded by ``(seed, step)`` (PCGrad's), whose
  cosine ``φᵢⱼ`` with ``gⱼ`` is below the target ``φ̂ᵢⱼ`` gets the multiple of ``gⱼ`` that raises it to ``φ̂ᵢⱼ``:
  ``‖gᵢ‖ (φ̂ᵢⱼ √(1 − φᵢⱼ²) − φᵢⱼ √(1 − φ̂ᵢⱼ²)) / (‖gⱼ‖ √(1 − φ̂ᵢⱼ²))``; the update is the sum of the corrected
  gradients (``sum``'s scale). After each visit the target moves towards the observed cosine,
  ``φ̂ᵢⱼ ← (1 − β) φ̂ᵢⱼ + β φᵢⱼ`` (the paper's rule; LibMTL moves it only when it corrects, so its targets never
  rise above 0). Targets start at 0, where the correction is PCGrad's projection: ``beta: 0`` is ``pcgrad``.
  Option ``beta`` (default 0.5, LibMTL's); the ``K × K`` targets are saved in checkpoints. One target per pair
  over the whole encoder (LibMTL's default), or with option ``groups`` ``layers`` / ``parameters`` one per pair in
  each group of :mod:`mtcore.train.gradient_groups`, each group corrected on its own slice of the gradients (targets
  ``groups × K × K``; logged weights are the groups' weights averaged by their share of the parameters).
* ``nash_mtl`` — Nash-MTL (Navon et al., ICML 2022, "Multi-Task Learning as a Bargaining Game"): the Nash bargaining
  solution ``Σ αᵢ gᵢ`` with ``α > 0`` solving ``(M α)ᵢ = 1 / αᵢ``: every task's loss falls (``gᵢ · d ∝ 1 / αᵢ``),
  and scaling one task's loss does not turn ``d`` (``αᵢ`` takes the scale). Solved exactly, not by the authors'
  sequence of cvxpy problems: with ``αᵢ = βᵢ / ‖gᵢ‖`` and ``C`` the non-zero gradients' cosines, ``β`` minimises the
  convex ``½ βᵀ (C + εI) β − Σ log βᵢ`` (its gradient is the condition's residual) by damped Newton steps on the
  ``K × K`` system, to float64 precision. The paper's update has norm ``√K`` whatever the gradients' sizes, and the
  authors' code clips the encoder's gradient to ``max_norm`` (1, the radius of the paper's ball of updates), so it
  always has norm 1. Here the update is ``√(Σ ‖gᵢ‖² / K')`` times the paper's (``K'`` the non-zero gradients), of
  norm ``√(Σ ‖gᵢ‖²)``: the scale of ``sum`` (its update for orthogonal gradients of one norm, ``g`` itself for one
  task), clipped by ``optimizer.max_grad_norm`` like any update, so no second clip. A zero gradient gets weight 0 and
  the others bargain as if its task were absent; parallel gradients need no help (``αᵢ ∝ 1 / ‖gᵢ‖``). The ridge
  ``ε = 1e-10`` (a private direction of relative size 1e-5 for each task) moves ``(M α)ᵢ αᵢ`` from 1 by ``ε βᵢ²`` and
  keeps the problem solvable where the paper's is not, when no direction improves some tasks together (0 in their
  gradients' convex hull, as opposite gradients): their ``βᵢ`` grow to about ``1 / √ε = 1e5`` and their terms
  cancel, so the update serves the other tasks, orthogonal to those, or is about 0 when none is left. Option
  ``update_every`` (default 1, the reference's ``update_weights_every``): the weights are solved every that many
  steps and held in between (saved in checkpoints). Heads get their own task's gradient (the reference gives them
  ``αᵢ`` times it).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mtcore.errors import ConfigError
from mtcore.train.gradient_balancers import _LoggedWeights, gram, present_tasks
from mtcore.train.gradient_groups import Run, check_covers, check_grouping, combine_by_group, group_grams, group_runs

#: A task gradient whose squared norm is below this share of the largest one's is treated as 0 by ``imtl``.
ZERO = 1e-20


def task_gram(grads: list[torch.Tensor]) -> tuple[np.ndarray, float]:
    """The tasks' Gram matrix (:func:`~mtcore.train.gradient_balancers.gram`, float64) and ``K`` times float32's
    ``eps``: below this share of the largest, an eigen- or singular value counts as 0."""
    return gram(grads), len(grads) * float(torch.finfo(torch.float32).eps)


def _live(matrix: np.ndarray) -> np.ndarray:
    diag = np.clip(np.diag(matrix), 0.0, None)
    return diag > ZERO * diag.max(initial=0.0) if diag.max(initial=0.0) > 0 else np.zeros(len(diag), dtype=bool)


def imtl_weights(matrix: np.ndarray, rcond: float = 1e-12) -> np.ndarray:
    """IMTL-G's ``α`` (``d = Σ αᵢ gᵢ``, the paper's scale) from the Gram matrix; see the module docstring for the
    pseudo-inverse, the zero gradients, the sign and the length bound."""
    alpha, live = np.zeros(matrix.shape[0]), _live(matrix)  # a zero gradient has no direction to balance
    if not live.any():
        return alpha
    norms = np.sqrt(np.diag(matrix)[live])
    cosines = matrix[np.ix_(live, live)] / np.outer(norms, norms)
    beta = np.linalg.pinv(cosines, rcond=rcond, hermitian=True) @ np.ones(len(norms))  # d ∝ Σ βᵢ uᵢ: uᵢ·d equal
    length = float(np.sqrt(max(float(beta @ cosines @ beta), 0.0)))  # ‖Σ βᵢ uᵢ‖
    if not length > 0:
        return alpha  # no direction has equal, non-zero projections (opposite gradients): no update
    total = float(np.sum(beta / norms))  # Σ αᵢ = 1 divides by it
    scale = 1.0 / abs(total) if total != 0 else float("inf")
    alpha[live] = beta / norms * min(scale, float(norms.max()) / length)
    return alpha


#: Aligned-MTL's ``scale`` option: the eigenvalue whose root scales the aligned gradients (the authors' ``scale_mode``).
ALIGNED_SCALES = ("min", "median", "rmse")


def balance_matrix(matrix: np.ndarray, rcond: float = 1e-12, scale: str = "min") -> np.ndarray:
    """Aligned-MTL's ``B = √λ · V Λ^(−1/2) Vᵀ`` over the eigenvalues of ``M`` above ``rcond · λ_max`` (0: none), ``λ``
    their smallest (``scale`` "min"), their lower median ("median", as ``torch.median``) or their mean ("rmse")."""
    values, vectors = np.linalg.eigh(matrix)
    if not values.max(initial=0.0) > 0:
        return np.zeros_like(matrix)
    keep = values > rcond * values.max()
    values, vectors = values[keep], vectors[:, keep]
    chosen = {"min": values.min(), "median": np.sort(values)[(len(values) - 1) // 2], "rmse": values.mean()}[scale]
    return np.sqrt(chosen) * (vectors / np.sqrt(values)) @ vectors.T


def vaccinate(matrix: np.ndarray, targets: np.ndarray, order: torch.Generator, beta: float) -> np.ndarray:
    """GradVac on the Gram matrix: the weights ``w`` of ``d = Σ wⱼ gⱼ``; ``targets`` (``K × K``) are updated in
    place. Each corrected gradient is kept as coefficients over the original ones, ``gᵢ' = Σₖ cᵢₖ gₖ``, so its
    norm and dot products come from ``M``. Pairs are visited as in :func:`~mtcore.train.losses.project_conflicting`."""
    k = matrix.shape[0]
    coefficients = np.eye(k)
    norms = np.sqrt(np.clip(np.diag(matrix), 0.0, None))
    for i in range(k):
        for j in torch.randperm(k, generator=order).tolist():
            if j == i:
                continue
            dots = coefficients[i] @ matrix  # gᵢ' · gₖ for every k
            norm_i = float(np.sqrt(max(float(dots @ coefficients[i]), 0.0)))
            if not (norm_i > 1e-6 * norms[i] and norms[j] > 1e-10 * norms.max()):
                continue  # no cosine with a zero (or projected-away) gradient: nothing to correct, the target stays
            cosine = float(np.clip(dots[j] / (norm_i * norms[j]), -1.0, 1.0))
            target = float(targets[i, j])
            sine_target = float(np.sqrt(max(1.0 - target ** 2, 0.0)))
            if cosine < target and sine_target > 1e-6:  # a target of ±1 (parallel) is out of reach of any multiple of gⱼ
                coefficients[i, j] += (norm_i * (target * np.sqrt(max(1.0 - cosine ** 2, 0.0)) - cosine * sine_target)
                                       / (norms[j] * sine_target))
            targets[i, j] = (1 - beta) * target + beta * cosine
    return coefficients.sum(0)


#: Nash-MTL's ridge on the cosine matrix: keeps the bargaining problem solvable (see the module docstring).
RIDGE = 1e-10


def bargain(cosines: np.ndarray, steps: int = 100) -> np.ndarray:
    """``β > 0`` with ``(C β)ᵢ βᵢ = 1`` for a positive definite ``C``: the minimiser of the self-concordant
    ``½ βᵀ C β − Σ log βᵢ`` by Newton's method, damped by ``1 / (1 + λ)`` (``λ`` the Newton decrement) while
    ``λ >= 1/4``, which keeps every iterate positive. It stops at ``λ < 1e-12`` or where rounding stops ``λ`` from
    halving (near-singular ``C``); 10 to 20 steps for well-conditioned ``C``, up to about 60 where the ridge decides."""
    beta = np.full(len(cosines), np.sqrt(len(cosines) / cosines.sum()))  # the best multiple of 1
    previous = float("inf")
    for _ in range(steps):
        residual = cosines @ beta - 1.0 / beta  # the gradient
        newton = np.linalg.solve(cosines + np.diag(beta ** -2.0), residual)
        decrement = float(np.sqrt(max(float(residual @ newton), 0.0)))
        if decrement < 1e-12 or previous < 0.25 and decrement > previous / 2:
            break
        beta = beta - (newton if decrement < 0.25 else newton / (1.0 + decrement))
        previous = decrement
    return beta


def nash_weights(matrix: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Nash-MTL's ``α`` at the paper's scale, ``(M α)ᵢ αᵢ = 1`` (up to the ridge), from the Gram matrix; 0 for a zero
    gradient."""
    alpha, live = np.zeros(matrix.shape[0]), _live(matrix)
    if not live.any():
        return alpha
    norms = np.sqrt(np.diag(matrix)[live])
    cosines = np.clip(matrix[np.ix_(live, live)] / np.outer(norms, norms), -1.0, 1.0)
    np.fill_diagonal(cosines, 1.0 + ridge)
    alpha[live] = bargain(cosines) / norms
    return alpha


def _combined(weights: np.ndarray, grads: list[torch.Tensor]) -> torch.Tensor:
    return sum(float(w) * g for w, g in zip(weights, grads))


class IMTLGLoss(_LoggedWeights):
    """IMTL-G: the combination with equal projections onto every task's unit gradient; with ``loss_scale``, IMTL-L's
    learned loss scales too (the hybrid IMTL; see the module docstring)."""

    def __init__(self, task_ids: Any, weights: Any = None, loss_scale: bool = False, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if not isinstance(loss_scale, bool):
            raise ConfigError(f"loss strategy 'imtl': option 'loss_scale' (IMTL-L's learned loss scales, the paper's hybrid "
                              f"IMTL; false: IMTL-G alone) must be true or false, got {loss_scale!r}")
        self.loss_scale = loss_scale
        if loss_scale:  # sᵢ: trained on e^sᵢ Lᵢ − sᵢ; in the optimizer and checkpoints as this module's parameter
            self.log_scales = nn.Parameter(torch.zeros(len(self.task_ids)))
        self._factors: np.ndarray | None = None  # e^sᵢ of the step's tasks, while end_backward combines
        self._unit: torch.Tensor | None = None  # the loop's loss scale (fp16's; else 1), for the −sᵢ term's gradient

    def backward(self, losses: Mapping[str, torch.Tensor], shared: Sequence[nn.Parameter], others: Sequence[nn.Parameter],
                 scale: Callable[[torch.Tensor], torch.Tensor], step: int) -> None:
        """With ``loss_scale``: the base class's on ``e^sᵢ Lᵢ``, ``s`` one more non-shared parameter (its gradient summed
        over micro-steps and averaged over processes with the heads'); the ``−sᵢ`` term is added once a step."""
        if not self.loss_scale:
            return super().backward(losses, shared, others, scale, step)
        s = self.log_scales
        self._unit = scale(torch.ones((), device=s.device, dtype=s.dtype)).detach()
        scaled = {task: torch.exp(s[self.task_ids.index(task)]) * loss for task, loss in losses.items()}
        return super().backward(scaled, shared, [*others, s], scale, step)

    def end_backward(self, shared: Sequence[nn.Parameter], others: Sequence[nn.Parameter], step: int,
                     reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        pending = getattr(self, "_pending", None)
        if not self.loss_scale or pending is None:
            return super().end_backward(shared, others, step, reduce_mean)
        s = self.log_scales
        trained = [g is not None for g in pending.shared]  # the tasks with a loss this step
        self._factors = torch.exp(s.detach()).double().cpu().numpy()[np.array(trained)]  # e^sᵢ as backward used it
        try:
            super().end_backward(shared, [*others, s], step, reduce_mean)
        finally:
            self._factors, unit, self._unit = None, self._unit, None
        if s.grad is not None and unit is not None:  # d(−sᵢ)/dsᵢ = −1 for each trained task, times the loss scale
            s.grad = s.grad - unit.to(s.grad.dtype) * torch.tensor(trained, dtype=s.grad.dtype, device=s.grad.device)

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        matrix, rcond = task_gram(grads)
        weights = max(int(_live(matrix).sum()), 1) * imtl_weights(matrix, rcond)  # K' times the paper's: the scale of sum
        factors = self._factors
        self._keep(weights if factors is None or len(factors) != len(weights) else weights * factors)  # of the raw gᵢ
        return _combined(weights, grads)


class AlignedMTLLoss(_LoggedWeights):
    """Aligned-MTL: the sum of the task gradients aligned by the balance matrix, at ``scale`` (see the module
    docstring)."""

    def __init__(self, task_ids: Any, weights: Any = None, scale: str = "min", **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if scale not in ALIGNED_SCALES:
            raise ConfigError(f"loss strategy 'aligned_mtl': option 'scale' (the eigenvalue whose root is the aligned "
                              f"gradients' norm) must be one of {', '.join(repr(m) for m in ALIGNED_SCALES)}, got {scale!r}")
        self.scale = str(scale)

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        matrix, rcond = task_gram(grads)
        weights = balance_matrix(matrix, rcond, self.scale).sum(1)  # B is symmetric: B 1
        self._keep(weights)
        return _combined(weights, grads)


class GradVacLoss(_LoggedWeights):
    """GradVac with EMA rate ``beta``, PCGrad's order seed ``seed`` and target cosines per ``groups`` (see the module
    docstring)."""

    def __init__(self, task_ids: Any, weights: Any = None, beta: float = 0.5, seed: int = 0, groups: str = "encoder",
                 **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta <= 1:
            raise ConfigError(f"loss strategy 'gradvac': option 'beta' (the rate at which the target cosines follow the "
                              f"observed ones; 0 is 'pcgrad') must be a number in [0, 1], got {beta!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ConfigError(f"loss strategy 'gradvac': option 'seed' must be an integer, got {seed!r}")
        self.beta, self.seed, self.groups = float(beta), int(seed), check_grouping(groups, "gradvac")
        self._runs: list[Run] | None = None  # set by attach() unless groups is 'encoder'
        self.group_names: list[str] = ["encoder"]
        k = len(self.task_ids)
        # φ̂ᵢⱼ, saved in checkpoints: K × K for the whole encoder, (groups × K × K) once attach() knows the groups
        self.register_buffer("targets", torch.zeros(k, k, dtype=torch.float64))

    def attach(self, model: nn.Module) -> None:
        if self.groups == "encoder":
            return
        self._runs, self.group_names = group_runs(model, self.groups)
        k = len(self.task_ids)
        self.targets = torch.zeros(len(self.group_names), k, k, dtype=torch.float64, device=self.targets.device)

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        order = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        everything = self.targets.detach().cpu().numpy().copy()
        present = present_tasks(self, len(grads))  # the step's tasks (a loop of one's own may leave some out)
        pairs = np.ix_(present, present)
        targets = everything[pairs] if everything.ndim == 2 else everything[(slice(None), *pairs)]
        if self.groups == "encoder":
            matrix, _ = task_gram(grads)
            weights = vaccinate(matrix, targets, order, self.beta)
            everything[pairs] = targets
            self.targets.copy_(torch.from_numpy(everything))
            self._keep(weights)
            return _combined(weights, grads)
        if self._runs is None:
            raise ConfigError(f"loss strategy 'gradvac': option groups={self.groups!r} needs the model's parameters; "
                              "call strategy.attach(model) before training (mt train does)")
        check_covers(self._runs, grads[0].numel(), "gradvac")
        if not self._runs:  # a frozen encoder: nothing shared to combine
            self._keep(np.ones(len(grads)))
            return torch.zeros_like(grads[0])
        grams = group_grams(grads, self._runs, len(self.group_names))
        weights = np.stack([vaccinate(grams[g], targets[g], order, self.beta) for g in range(len(self.group_names))])
        everything[(slice(None), *pairs)] = targets
        self.targets.copy_(torch.from_numpy(everything))
        sizes = np.zeros(len(self.group_names))
        for run in self._runs:
            sizes[run.group] += run.stop - run.start
        self._keep(sizes @ weights / max(sizes.sum(), 1))  # each group's weights, by its share of the parameters
        return combine_by_group(weights, grads, self._runs)


class NashMTLLoss(_LoggedWeights):
    """Nash-MTL, its weights solved every ``update_every`` steps (see the module docstring)."""

    def __init__(self, task_ids: Any, weights: Any = None, update_every: int = 1, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if isinstance(update_every, bool) or not isinstance(update_every, numbers.Integral) or update_every < 1:
            raise ConfigError(f"loss strategy 'nash_mtl': option 'update_every' (the steps from one solve of the weights to "
                              f"the next) must be an integer >= 1, got {update_every!r}")
        self.update_every = int(update_every)
        self.register_buffer("held", torch.zeros(len(self.task_ids), dtype=torch.float64))  # the last solve's, in checkpoints

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        present = present_tasks(self, len(grads))  # the step's tasks (a loop of one's own may leave some out)
        weights = self.held.detach().cpu().numpy()[present] if (step - 1) % self.update_every else None
        if weights is None or not weights.any():  # a solve step, or nothing held yet
            matrix, _ = task_gram(grads)
            alpha = nash_weights(matrix)
            weights = np.sqrt(np.trace(matrix) / max(int(_live(matrix).sum()), 1)) * alpha  # ‖d‖² = Σ ‖gᵢ‖²: sum's scale
            held = np.zeros(len(self.task_ids))
            held[present] = weights
            self.held.copy_(torch.from_numpy(held))
        self._keep(weights)
        return _combined(weights, grads)
