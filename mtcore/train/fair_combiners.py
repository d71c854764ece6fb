"""Loss strategies whose update conflicts with no task: UPGrad and FairGrad, two gradient combiners.

Like ``nash_mtl`` (:mod:`mtcore.train.gradient_surgery`) each is a :class:`~mtcore.train.losses.GradientCombiner`:
one batch of every task per step, one backward pass per task, the flat gradients ``gᵢ`` of the shared parameters
summed over the step's micro-steps and averaged over processes before they are combined, so every process takes the
same update; heads get their own task's gradient. Both work on the tasks' Gram matrix ``M = G Gᵀ`` (float64, one host
read per step) and log, at logging steps (``loss_weights`` events), each task's weight in the update ``d = Σ wᵢ gᵢ``.

* ``upgrad`` — UPGrad, "Unconflicting Projection of Gradients" (Quinton & Rey 2024, "Jacobian Descent for
  Multi-Objective Optimization"; TorchJD's aggregator): each task's gradient, times its preference ``uᵢ``, is
  projected onto the dual cone of the task gradients, ``{x : gⱼ · x >= 0 for every j}``, and the projections are
  added. So the update lowers no task's loss to first order (``gⱼ · d >= 0`` for every task), gradients that conflict
  with none are added as they are (``d = Σ uᵢ gᵢ``: ``sum``'s update, TorchJD's mean times ``K``), and a
  conflicting one loses just what conflicts. The projection of ``uᵢ gᵢ`` is ``Gᵀ v`` with
  ``v = argmin_{v >= uᵢ eᵢ} vᵀ M v`` (the paper's Proposition; TorchJD solves it with quadprog): here a non-negative
  least squares problem on a Cholesky factor of the Gram matrix over the gradients' mean squared norm (Lawson–Hanson,
  exact), with a ridge of ``1e-10`` (:data:`UPGRAD_RIDGE`): the multiples of
  gradients that cancel each other (opposite or dependent ones) cost something, so the weights stay bounded instead of
  drifting to 1e15 on rounding and cancelling in float32 (TorchJD adds ``1e-4``). A zero gradient gets weight 0 (no
  projection, no constraint). Preferences ``uᵢ`` are ``loss.weights`` (each task's ``weight``,
  default 1; TorchJD's ``pref_vector``), so ``weights: {a: 2}`` counts task ``a`` twice before the projections.
* ``fairgrad`` — FairGrad (Ban & Ji, ICML 2024, "Fair Resource Allocation in Multi-Task Learning"): the update
  ``d = Σ wᵢ gᵢ``, ``w > 0``, that maximises the α-fair utility of the tasks' first-order improvements
  ``gᵢ · d``; its condition is ``(M w)ᵢ = wᵢ^(−1/α)``: ``gᵢ · d = wᵢ^(−1/α) > 0`` for every task. Option ``alpha``
  (default 2, the authors' QM9 script's): near 0 the weights approach 1 (``sum``), 1 is proportional fairness
  (``nash_mtl``'s condition), 2 minimum potential delay, larger values approach max-min fairness (the worst task's
  improvement first). Solved exactly, not by the authors' ``scipy.optimize.least_squares`` on the residual: ``w``
  minimises the convex ``½ wᵀ M̃ w − Σ h(wᵢ)``, ``h' = w^(−1/α)``, by Newton steps with backtracking that keep
  ``w > 0``, on ``M̃ = M / s``, ``s`` the mean squared norm of the non-zero gradients: the paper's weights for
  gradients of mean squared norm 1, and the update ``Σ wᵢ gᵢ`` of the raw gradients then scales with them as
  ``sum``'s does (orthogonal gradients of one norm give ``sum``'s update; at ``alpha: 1`` this is ``nash_mtl``'s
  update). The authors' update is ``K`` times theirs, clipped to norm 1; here ``optimizer.max_grad_norm`` clips as
  for any update. As ``nash_mtl``, a ridge ``ε = 1e-10^((α+1)/(2α))`` (at least ``1e-12``) on ``M̃``'s diagonal keeps the problem solvable
  where the paper's is not (no direction improves some tasks together, as opposite gradients): their weights grow to
  about ``1e5`` and their terms cancel. A zero gradient gets weight 0 and the others are balanced as if its task
  were absent.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mtcore.errors import ConfigError
from mtcore.train.gradient_balancers import _LoggedWeights, present_tasks
from mtcore.train.gradient_surgery import _combined, _live, task_gram


#: ``upgrad``'s ridge on the normalised Gram matrix (mean diagonal 1): the multiples of the gradients that cancel each
#: other (opposite or dependent gradients) cost something, so the weights stay of the size of the preferences instead
#: of drifting to 1e15 on rounding (TorchJD adds 1e-4); a task's gain ``gⱼ · d`` may then fall below 0 by about
#: ``ε vⱼ`` of the mean squared norm.
UPGRAD_RIDGE = 1e-10


def upgrad_weights(matrix: np.ndarray, preferences: np.ndarray) -> np.ndarray:
    """UPGrad's ``w`` (``d = Σ wᵢ gᵢ``) from the Gram matrix: ``Σᵢ argmin_{v >= uᵢ eᵢ} vᵀ (M̃ + εI) v`` over the non-zero
    gradients, ``u`` the preferences, ``M̃`` the Gram matrix over their mean squared norm, ``ε`` :data:`UPGRAD_RIDGE`;
    0 for a zero gradient (it has no projection, and constrains nothing)."""
    from scipy.optimize import nnls

    weights, live = np.zeros(matrix.shape[0]), _live(matrix)
    if not live.any():
        return weights
    sub = matrix[np.ix_(live, live)]
    sub = sub / (np.trace(sub) / len(sub)) + UPGRAD_RIDGE * np.eye(len(sub))
    root = np.linalg.cholesky(sub).T  # rootᵀ root = M̃ + εI
    total = np.zeros(len(sub))
    for j, preference in enumerate(preferences[live]):
        base = np.zeros(len(sub))
        base[j] = preference
        lifted, _ = nnls(root, -root @ base)  # v = base + lifted, lifted >= 0: ‖root v‖² = vᵀ (M̃ + εI) v
        total += base + lifted
    weights[live] = total
    return weights



#: The largest ``alpha`` ``fairgrad`` takes: beyond, ``w^(−1/α)`` is about 1 for any weight a float can hold, and
#: the update is max-min fairness's already.
MAX_ALPHA = 100


def fairness_ridge(alpha: float) -> float:
    """FairGrad's ridge on ``M̃``'s diagonal: ``1e-10^((α+1)/(2α))``, so tasks no direction improves together get
    weights of about ``1e5`` whatever ``α`` (``nash_mtl``'s ``1e-10`` at ``α = 1``); at least ``1e-12`` (below ``α``
    about 0.7; their weights then stay smaller), which float64 still adds to a diagonal of 1."""
    return max(10.0 ** (-10.0 * (alpha + 1) / (2 * alpha)), 1e-12)


def fair_weights(matrix: np.ndarray, alpha: float) -> np.ndarray:
    """FairGrad's ``w`` at the scale of the raw gradients (see the module docstring): ``(M̃ w)ᵢ = wᵢ^(−1/α)`` on the
    non-zero gradients, ``M̃`` the Gram matrix over their mean squared norm plus the ridge; 0 for a zero gradient."""
    weights, live = np.zeros(matrix.shape[0]), _live(matrix)
    if live.any():
        sub = matrix[np.ix_(live, live)]
        sub = sub / (np.trace(sub) / len(sub)) + fairness_ridge(alpha) * np.eye(len(sub))
        weights[live] = _by_weights(sub, alpha) if alpha <= 1 else _by_improvements(sub, alpha)
    return weights


def _by_weights(sub: np.ndarray, alpha: float) -> np.ndarray:
    """``α <= 1``: ``w`` minimises the convex ``½ wᵀ M̃ w − Σ h(wᵢ)``, ``h' = w^(−1/α)``. (A small ``α`` drives some
    improvements ``uᵢ`` towards 0 while the weights stay moderate.)"""

    def objective(w: np.ndarray) -> float:
        if not w.min() > 0:
            return float("inf")
        power = 1.0 - 1.0 / alpha
        h = np.log(w) if alpha == 1 else w ** power / power
        return float(0.5 * w @ sub @ w - h.sum())

    def newton(w: np.ndarray) -> np.ndarray:
        gradient = sub @ w - w ** (-1.0 / alpha)
        return -np.linalg.solve(sub + np.diag(w ** (-1.0 / alpha - 1.0) / alpha), gradient), gradient

    return _minimize(objective, newton, np.ones(len(sub)))


def _by_improvements(sub: np.ndarray, alpha: float) -> np.ndarray:
    """``α > 1``: the improvements ``u = M̃ w`` (``wᵢ = uᵢ^(−α)``) maximise the concave ``Σ U(uᵢ) − ½ uᵀ M̃⁻¹ u``,
    ``U' = u^(−α)`` (the α-fair utility). They stay of moderate size where a large ``α`` spreads the weights over
    hundreds of orders of magnitude."""
    from scipy.linalg import cho_factor, cho_solve

    factor = cho_factor(sub)

    def objective(u: np.ndarray) -> float:  # the negated utility
        if not u.min() > 0:
            return float("inf")
        with np.errstate(over="ignore", divide="ignore"):
            value = float(0.5 * u @ cho_solve(factor, u) - (u ** (1.0 - alpha) / (1.0 - alpha)).sum())
        return value if np.isfinite(value) else float("inf")

    def newton(u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore"):  # (αD + M̃⁻¹) s = u^(−α) − M̃⁻¹ u, times M̃
            step = np.linalg.solve(np.eye(len(sub)) + alpha * sub * u ** (-alpha - 1.0), sub @ u ** -alpha - u)
            return step, cho_solve(factor, u) - u ** -alpha

    with np.errstate(under="ignore"):
        return _minimize(objective, newton, np.ones(len(sub))) ** -alpha


def _minimize(objective: Callable[[np.ndarray], float], newton: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
              x: np.ndarray, steps: int = 100) -> np.ndarray:
    """Newton's method on a convex ``objective`` (``newton(x)``: the step and the gradient), each step halved until
    it lowers the objective by Armijo's share (``inf`` outside the domain keeps the iterates inside); it stops where
    the squared Newton decrement is below float64's reach or no step helps."""
    value = objective(x)
    for _ in range(steps):
        try:
            step, gradient = newton(x)
        except np.linalg.LinAlgError:  # a Newton system singular to float64: the last iterate is as close as it gets
            break
        decrement = -float(gradient @ step)
        if not (np.isfinite(step).all() and decrement > 1e-28 * max(1.0, float(x @ x))):
            break
        t = 1.0
        while t > 1e-12:
            trial = x + t * step
            trial_value = objective(trial)
            if trial_value <= value - 1e-4 * t * decrement:
                break
            t /= 2
        else:
            break  # rounding: no step lowers the objective any more
        x, value = trial, trial_value
    return x


class UPGradLoss(_LoggedWeights):
    """UPGrad: the sum of each task's gradient, times its preference (``loss.weights``), projected onto the dual cone
    of the task gradients (see the module docstring)."""

    uses_weights = True

    def __init__(self, task_ids: Any, weights: Any = None, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if self.task_ids and not any(self.weights.values()):
            raise ConfigError("loss.weights: every task's preference for loss strategy 'upgrad' (loss.weights, else each task's "
                              "weight) is 0, so nothing would train; give one task a weight > 0")

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        matrix, _ = task_gram(grads)
        preferences = np.array([self.weights[self.task_ids[i]] for i in present_tasks(self, len(grads))])
        weights = upgrad_weights(matrix, preferences)
        self._keep(weights)
        return _combined(weights, grads)


class FairGradLoss(_LoggedWeights):
    """FairGrad with fairness ``alpha`` (see the module docstring)."""

    def __init__(self, task_ids: Any, weights: Any = None, alpha: float = 2.0, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha <= MAX_ALPHA:
            raise ConfigError(f"loss strategy 'fairgrad': option 'alpha' (the fairness: near 0 is 'sum', 1 is the condition "
                              f"of 'nash_mtl', larger values favour the worst task) must be a number > 0 and <= {MAX_ALPHA}, got {alpha!r}")
        self.alpha = float(alpha)

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        matrix, _ = task_gram(grads)
        weights = fair_weights(matrix, self.alpha)
        self._keep(weights)
        return _combined(weights, grads)
