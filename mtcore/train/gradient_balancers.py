"""Loss strategies that choose the shared encoder's update from the tasks' gradients: MGDA, CAGrad and GradNorm.

Like ``pcgrad`` (:class:`~mtcore.train.losses.GradientCombiner`), each takes one batch of every
task per step, back-propagates every task separately, and combines the flat gradients of the shared
parameters; heads get their own task's gradient. Both work on the tasks' Gram matrix ``G Gᵀ``
(``K × K`` for ``K`` tasks, one host read per step) and return an update on the scale of ``sum``
(``K`` times a convex combination of the task gradients), so a learning rate and ``max_grad_norm``
tuned for ``sum`` or ``pcgrad`` carry over; the papers' updates are on the scale of one task's. Under gradient
accumulation and DDP they combine the gradients of the whole step's batch (summed over micro-steps, averaged over
processes: :class:`~mtcore.train.losses.GradientCombiner`), so every process takes the same update.

* ``mgda`` — the Multiple-Gradient Descent Algorithm as multi-task learning (Sener & Koltun 2018,
  "Multi-Task Learning as Multi-Objective Optimization"): the minimum-norm point of the convex hull
  of the task gradients, ``d = K · Σ αᵢ gᵢ`` with ``α = argmin_{α ∈ Δ} ‖Σ αᵢ gᵢ‖²`` (solved exactly).
  Every task's loss goes down along ``d`` unless ``d = 0`` (a Pareto-stationary point).
* ``cagrad`` — Conflict-Averse Gradient descent (Liu et al. 2021): the update that maximises the
  worst task's improvement within a ball of radius ``c · ‖ḡ‖`` around the mean gradient ``ḡ``,
  ``d = K · (ḡ + c ‖ḡ‖ / ‖g_w‖ · g_w) / (1 + c²)`` with ``g_w = Σ wᵢ gᵢ`` and ``w`` solving the
  paper's dual over the simplex (SLSQP, as its reference code). Option ``c`` (default 0.5; 0 is
  ``sum``).

* ``gradnorm`` — GradNorm (Chen et al. 2018): learned loss weights ``wᵢ`` (sum ``K``, start at 1) that
  pull each task's weighted gradient norm ``Gᵢ = wᵢ ‖gᵢ‖`` on the shared parameters towards
  ``mean(G) · rᵢ^α``, ``rᵢ`` the task's loss ratio ``Lᵢ(t) / Lᵢ(first step)`` over the mean ratio: a
  task that trains slower gets a larger weight. Each step trains on ``Σ wᵢ Lᵢ`` (the encoder gets
  ``Σ wᵢ gᵢ``, each head ``wᵢ`` times its gradient), then ``w`` takes one Adam step (option ``lr``,
  default 0.025) on the paper's ``Σ |Gᵢ − mean(G) rᵢ^α|`` (targets held fixed) and is renormalised
  to sum ``K``. Option ``alpha`` (default 1.5; 0 equalises the gradient norms). As in LibMTL, the
  norms are over all shared parameters, not the paper's last shared layer. Weights, first losses
  and Adam's moments are saved in checkpoints; no host read per step.

All three log, at logging steps (``loss_weights`` events), each task's effective weight in the last
update: ``d = Σ weightᵢ · gᵢ``.
"""

from __future__ import annotations

import itertools
import numbers
import warnings
from typing import Any

import numpy as np
import torch

from mtcore.errors import ConfigError
from mtcore.train.losses import GradientCombiner


def gram(grads: list[torch.Tensor], chunk: int = 1 << 21) -> np.ndarray:
    """The tasks' Gram matrix ``G Gᵀ`` (one host read), accumulated in float64 over chunks of the gradients: a float32
    product of 2·10⁷-long gradients was off by 0.6% of their squared norms on CPU, more than the small eigenvalues
    some methods invert."""
    matrix = torch.zeros(len(grads), len(grads), dtype=torch.float64, device=grads[0].device)
    for start in range(0, grads[0].numel(), chunk):
        block = torch.stack([g[start: start + chunk] for g in grads]).double()
        matrix += block @ block.T
    matrix = matrix.cpu().numpy()
    return (matrix + matrix.T) / 2


def min_norm_weights(matrix: np.ndarray) -> np.ndarray:
    """``argmin_{α ∈ simplex} αᵀ M α`` (MGDA's min-norm problem), exactly: the best of the optima of every
    face of the simplex (its KKT system on that face's tasks), up to :data:`EXACT_TASKS` tasks; above, SLSQP."""
    k = matrix.shape[0]
    matrix = _normalized(matrix)  # the same optimum at any scale; the tolerances below are absolute
    if k > EXACT_TASKS:
        from scipy.optimize import minimize

        start = np.full(k, 1.0 / k)
        result = minimize(lambda a: float(a @ matrix @ a), start, jac=lambda a: 2 * matrix @ a, bounds=[(0.0, 1.0)] * k,
                          constraints=({"type": "eq", "fun": lambda a: 1.0 - a.sum()},))
        alpha = np.clip(result.x, 0.0, None)
        return alpha / alpha.sum()
    best, best_value = np.full(k, 1.0 / k), float("inf")
    for size in range(1, k + 1):
        for face in itertools.combinations(range(k), size):
            idx = list(face)
            kkt = np.zeros((size + 1, size + 1))
            kkt[:size, :size] = 2 * matrix[np.ix_(idx, idx)]
            kkt[:size, size] = kkt[size, :size] = 1.0
            rhs = np.zeros(size + 1)
            rhs[size] = 1.0
            solution = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
            if solution.min() < -1e-12:
                continue
            alpha = np.zeros(k)
            alpha[idx] = np.clip(solution, 0.0, None)
            alpha /= alpha.sum()
            value = float(alpha @ matrix @ alpha)
            if value < best_value - 1e-15:
                best, best_value = alpha, value
    return best


#: Up to this many tasks the min-norm problem is solved exactly (2^K small linear systems).
EXACT_TASKS = 10


def _normalized(matrix: np.ndarray) -> np.ndarray:
    """``M / trace(M)``: the solutions do not change, and absolute tolerances (SLSQP's, the exact solver's
    comparison of objective values) no longer depend on the gradients' size (tiny gradients made SLSQP stop at its
    starting point, and the exact solver keep its first face: one task's gradient)."""
    scale = float(np.trace(matrix))
    return matrix / scale if scale > 0 else matrix


def cagrad_weights(matrix: np.ndarray, c: float) -> np.ndarray:
    """CAGrad's ``w``: ``argmin_{w ∈ simplex} wᵀ M b + c ‖ḡ‖ √(wᵀ M w)``, ``b`` uniform (the paper's dual)."""
    from scipy.optimize import minimize

    matrix = _normalized(matrix)
    k = matrix.shape[0]
    b = np.full(k, 1.0 / k)
    radius = c * np.sqrt(max(float(b @ matrix @ b), 0.0) + 1e-8)

    def objective(w: np.ndarray) -> float:
        return float(w @ matrix @ b + radius * np.sqrt(max(float(w @ matrix @ w), 0.0) + 1e-8))

    result = minimize(objective, b, bounds=[(0.0, 1.0)] * k, constraints=({"type": "eq", "fun": lambda w: 1.0 - w.sum()},))
    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum() if weights.sum() > 0 else b


def present_tasks(strategy: GradientCombiner, count: int) -> list[int]:
    """The indices in ``strategy.task_ids`` of the ``count`` gradients :meth:`combine` got: the step's tasks in training
    (a loop of one's own may leave some out of a step), else the first ``count`` tasks."""
    tasks = strategy.step_tasks
    return list(tasks) if tasks is not None and len(tasks) == count else list(range(count))


class _LoggedWeights(GradientCombiner):
    logs_weights = True
    #: Each task's weight in the last update (0: the task had no gradient in that step); None before the first.
    applied: dict[str, float] | None = None

    def _keep(self, weights: np.ndarray) -> None:
        self.applied = dict.fromkeys(self.task_ids, 0.0)
        self.applied.update({self.task_ids[i]: float(w) for i, w in zip(present_tasks(self, len(weights)), weights)})

    def task_weights(self) -> dict[str, float]:
        return dict(self.applied) if self.applied is not None else super().task_weights()


class MGDALoss(_LoggedWeights):
    """MGDA: ``K`` times the minimum-norm convex combination of the task gradients (see the module docstring)."""

    _warned_zero = False

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        matrix = gram(grads)
        zero = [self.task_ids[i] for i, norm_sq in zip(present_tasks(self, len(grads)), np.diag(matrix)) if not norm_sq > 0]
        if zero and len(grads) > 1 and not self._warned_zero:
            self._warned_zero = True  # once a run: it is usually a task wired past the encoder, not one step's chance
            warnings.warn(f"loss strategy 'mgda': task {zero[0]!r} has no gradient on the shared encoder at step {step} (its loss "
                          f"is 0 or does not reach the encoder), so the minimum-norm combination is 0 and the encoder does not "
                          f"change; fix that task, or use loss.strategy 'cagrad' or 'pcgrad'")
        alpha = min_norm_weights(matrix)
        self._keep(len(grads) * alpha)
        return len(grads) * sum(float(a) * g for a, g in zip(alpha, grads))


class CAGradLoss(_LoggedWeights):
    """CAGrad with radius ``c`` (see the module docstring)."""

    def __init__(self, task_ids: Any, weights: Any = None, c: float = 0.5, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not 0 <= c < float("inf"):
            raise ConfigError(f"loss strategy 'cagrad': option 'c' (the radius around the mean gradient, in its norms; "
                              f"0 is 'sum') must be a number >= 0, got {c!r}")
        self.c = float(c)

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        k = len(grads)
        mean = sum(grads) / k
        if self.c == 0:
            self._keep(np.ones(k))
            return k * mean
        matrix = gram(grads)
        w = cagrad_weights(matrix, self.c)
        g_w = sum(float(a) * g for a, g in zip(w, grads))
        norm_w = float(np.sqrt(max(float(w @ matrix @ w), 0.0)))
        mean_norm = float(np.sqrt(max(float(np.full(k, 1.0 / k) @ matrix @ np.full(k, 1.0 / k)), 0.0)))
        lam = self.c * mean_norm / norm_w if norm_w > 1e-12 * max(mean_norm, 1e-30) else 0.0  # g_w = 0: nothing to add
        self._keep((1 + k * lam * w) / (1 + self.c ** 2))  # d = Σ (1 + K λ wᵢ) / (1 + c²) · gᵢ
        return k * (mean + lam * g_w) / (1 + self.c ** 2)


class GradNormLoss(GradientCombiner):
    """GradNorm with restoring force ``alpha`` and weight learning rate ``lr`` (see the module docstring)."""

    logs_weights = True
    BETAS, EPS = (0.9, 0.999), 1e-8  # Adam's, for the K weights

    def __init__(self, task_ids: Any, weights: Any = None, alpha: float = 1.5, lr: float = 0.025, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        for name, value, what in (("alpha", alpha, "the restoring force; the paper uses 0.12 to 3"),
                                  ("lr", lr, "the learning rate of the loss weights")):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf") or (name == "lr" and value == 0):
                raise ConfigError(f"loss strategy 'gradnorm': option {name!r} ({what}) must be a number {'> 0' if name == 'lr' else '>= 0'}, "
                                  f"got {value!r}")
        self.alpha, self.lr = float(alpha), float(lr)
        k = len(self.task_ids)
        self.register_buffer("loss_weights", torch.ones(k, dtype=torch.float64))
        self.register_buffer("first_losses", torch.zeros(k, dtype=torch.float64))  # L_i at the first step: ratios start at 1
        self.register_buffer("moments", torch.zeros(2, k, dtype=torch.float64))  # Adam's m and v
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
        self._losses: torch.Tensor | None = None

    def step_losses(self, losses: torch.Tensor) -> None:
        self._losses = losses

    def head_scale(self, index: int) -> torch.Tensor:
        return self.loss_weights[index]

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        """The update with this step's weights, then one Adam step of the weights of the step's tasks (all of them in
        ``mt train``; a loop of one's own that leaves a task out of a step leaves its moments alone, and its weight moves
        only as all are renormalised to sum ``K``)."""
        self._used = self.loss_weights.clone()
        present = torch.tensor(present_tasks(self, len(grads)), device=self.loss_weights.device)
        w = self._used[present]
        update = sum(w[j].to(g.dtype) * g for j, g in enumerate(grads))  # this step's weights; w changes for the next
        losses = (self._losses if self._losses is not None else torch.ones_like(self._used))[present]
        first = self.first_losses[present]
        first = torch.where(first == 0, losses, first)  # L_i at the task's first step: its ratio starts at 1
        self.first_losses[present] = first
        ratio = losses / first.clamp(min=1e-12)
        relative = ratio / ratio.mean().clamp(min=1e-12)
        norms = torch.stack([g.double().norm() for g in grads])
        weighted = w * norms
        target = weighted.mean() * relative.pow(self.alpha)
        grad_w = torch.sign(weighted - target) * norms  # d/dw_i of sum_j |w_j ||g_j|| - target_j|, targets held fixed
        self.updates += 1
        (b1, b2), t = self.BETAS, self.updates.double()
        moments = self.moments[:, present]
        moments[0].mul_(b1).add_((1 - b1) * grad_w)
        moments[1].mul_(b2).add_((1 - b2) * grad_w * grad_w)
        self.moments[:, present] = moments
        step_w = self.lr * (moments[0] / (1 - b1 ** t)) / ((moments[1] / (1 - b2 ** t)).sqrt() + self.EPS)
        new = self._used.clone()
        new[present] = (w - step_w).clamp(min=0)
        total = new.sum()
        self.loss_weights.copy_(torch.where(total > 0, new * len(new) / total.clamp(min=1e-30), torch.ones_like(new)))
        return update

    def task_weights(self) -> dict[str, float]:
        used = getattr(self, "_used", self.loss_weights)
        return dict(zip(self.task_ids, used.float().tolist()))
