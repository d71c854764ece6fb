"""MoCo: Mitigating Gradient Bias in Multi-objective Learning (Fernando et al., ICLR 2023), a gradient combiner.

Like ``db_mtl`` (:mod:`mtcore.train.db_mtl`) it is a :class:`~mtcore.train.losses.GradientCombiner` that keeps a
moving average of each task's gradient on the shared parameters (the step's gradient, summed over its micro-steps
and averaged over processes, so accumulation and DDP combine the whole step's batch). MoCo's point is that MGDA's
weights, computed from one batch's noisy gradients, are biased; it tracks each gradient with an average ``yᵢ`` and
moves the weights ``λ`` by one projected gradient step per update instead of solving for them:

* ``yᵢ ← yᵢ − βₜ (yᵢ − gᵢ)``, ``gᵢ`` the task's gradient normalised and scaled by its loss, ``Lᵢ gᵢ / ‖gᵢ‖`` (as the
  authors' code and LibMTL: the tasks weigh by their losses, not by their gradients' sizes);
* ``λ ← Π_Δ(λ − γₜ (Y Yᵀ + ρ I) λ)``, one step towards MGDA's minimum-norm combination of the ``yᵢ``, ``Π_Δ`` the
  Euclidean projection onto the simplex (the paper's; LibMTL takes a softmax of the stepped vector instead);
* the update is ``K · Σ λᵢ yᵢ`` (``K`` times the paper's convex combination, as ``mgda``'s: equal, orthogonal tracked
  gradients give ``sum``'s update of them).

``βₜ = beta / t^beta_sigma`` and ``γₜ = gamma / t^gamma_sigma``, ``t`` the update from 1; options ``beta`` (0.5),
``beta_sigma`` (0.5), ``gamma`` (0.1), ``gamma_sigma`` (0.5) and ``rho`` (0), the defaults of LibMTL's ``MoCo``.
``λ`` starts uniform and the averages at 0 (so the first update is ``βₜ = beta`` times the step's normalised
gradients). Because the gradients are normalised and scaled by their losses, the update's size follows the losses,
not the gradients' norms: about ``K`` times a loss, so ``max_grad_norm`` (1.0) usually clips it — watch the logged
``grad_norm``. fp16's loss scale is divided out (a normalised gradient loses it) and put back on the update. The ``K``
averages (float32, encoder-sized: ``K ×`` the encoder's trainable parameters, in memory and in every checkpoint),
``λ`` and the update count are saved in checkpoints, so ``--resume`` continues exactly. A step whose losses or
gradients are not finite is not combined (the base class passes the sum on) and leaves the state alone. A task with
a zero gradient adds 0 to its average. Logged weights (``loss_weights`` events): ``K λᵢ``, the weight of ``yᵢ``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mtcore.errors import ConfigError
from mtcore.train.db_mtl import TaskAverages
from mtcore.train.gradient_balancers import gram, present_tasks
from mtcore.train.losses import GradientCombiner, _finite


def project_to_simplex(vector: np.ndarray) -> np.ndarray:
    """The point of the probability simplex nearest ``vector`` (Euclidean; the sort-based algorithm of Held, Wolfe and
    Crowder, as in Duchi et al. 2008)."""
    vector = vector - vector.max()  # the same projection (Π(v + c·1) = Π(v)); at 1e16 and above, x - 1 == x lost the step
    ordered = np.sort(vector)[::-1]
    cumulative = np.cumsum(ordered) - 1.0
    ranks = np.arange(1, len(vector) + 1)
    last = ranks[ordered - cumulative / ranks > 0][-1]
    return np.clip(vector - cumulative[last - 1] / last, 0.0, None)


class MoCoLoss(TaskAverages, GradientCombiner):
    """MoCo with tracking rate ``beta / t**beta_sigma`` and weight step ``gamma / t**gamma_sigma`` (see the module
    docstring)."""

    logs_weights = True
    strategy_name = "moco"

    def __init__(self, task_ids: Any, weights: Any = None, beta: float = 0.5, beta_sigma: float = 0.5, gamma: float = 0.1,
                 gamma_sigma: float = 0.5, rho: float = 0.0, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        checked = {}
        for name, value, what, low, high in (
                ("beta", beta, "the tracking rate of the gradient averages, βₜ = β / t^σ", 0.0, 1.0),
                ("beta_sigma", beta_sigma, "the decay σ of the tracking rate", 0.0, None),
                ("gamma", gamma, "the step of the weights λ, γₜ = γ / t^σ", 0.0, None),
                ("gamma_sigma", gamma_sigma, "the decay σ of the weights' step", 0.0, None),
                ("rho", rho, "the ridge on the averages' Gram matrix in the weights' step", 0.0, None)):
            number = _finite(value, "moco", name, what)
            if number < low or (high is not None and number > high) or (name == "beta" and number == 0):
                bounds = f"in (0, {high:g}]" if name == "beta" else f">= {low:g}"
                raise ConfigError(f"loss strategy 'moco': option {name!r} ({what}) must be a number {bounds}, got {value!r}")
            checked[name] = number
        self.beta, self.beta_sigma, self.gamma, self.gamma_sigma, self.rho = (checked[n] for n in ("beta", "beta_sigma", "gamma",
                                                                                                    "gamma_sigma", "rho"))
        k = len(self.task_ids)
        self.register_buffer("averages", torch.zeros(k, 0))  # yᵢ, one row per task; sized at the first step
        self.register_buffer("lambdas", torch.full((k,), 1.0 / max(k, 1), dtype=torch.float64))
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))  # t - 1
        self._losses: torch.Tensor | None = None
        self._used: np.ndarray | None = None

    def step_losses(self, losses: torch.Tensor) -> None:
        self._losses = losses

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        present = present_tasks(self, len(grads))
        device = grads[0].device
        k = len(self.task_ids)
        losses = self._losses.to(device) if self._losses is not None else torch.ones(k, dtype=torch.float64, device=device)
        if not bool(torch.isfinite(losses[present]).all()):  # a diverged loss: the state stays as it was
            return torch.stack(grads).sum(0)
        unit = self.loss_unit.to(device) if self.loss_unit is not None else torch.ones((), dtype=torch.float64, device=device)
        averages = self._sized(grads[0].numel(), device)
        t = float(self.updates) + 1.0
        rate = self.beta / t ** self.beta_sigma
        for j, i in enumerate(present):  # yᵢ ← yᵢ − βₜ (yᵢ − Lᵢ gᵢ / ‖gᵢ‖), the loss scale dropped with the norm
            norm = torch.linalg.vector_norm(grads[j], dtype=torch.float64)
            factor = (losses[i] / (norm + 1e-8 * unit)).float()
            averages[i].lerp_(grads[j].float() * factor, rate)
        self.updates += 1
        matrix = gram([averages[i] for i in present])
        lambdas = self.lambdas.detach().cpu().numpy()[present]
        lambdas = lambdas / lambdas.sum() if lambdas.sum() > 0 else np.full(len(present), 1.0 / len(present))
        stepped = lambdas - self.gamma / t ** self.gamma_sigma * (matrix + self.rho * np.eye(len(present))) @ lambdas
        lambdas = project_to_simplex(stepped)
        held = self.lambdas.detach().cpu().numpy().copy()
        held[present] = lambdas * held[present].sum() if held[present].sum() > 0 else lambdas
        self.lambdas.copy_(torch.from_numpy(held))
        weights = len(present) * lambdas  # K times the paper's (the step's tasks: every task in mt train)
        self._used = np.zeros(k)
        self._used[present] = weights
        update = sum(float(w) * averages[i] for w, i in zip(weights, present))
        return (update * unit.float()).to(grads[0].dtype)

    def task_weights(self) -> dict[str, float]:
        used = self._used if self._used is not None else np.ones(len(self.task_ids))
        return dict(zip(self.task_ids, (float(w) for w in used)))
