"""ExcessMTL: Robust Multi-Task Learning with Excess Risks (He et al., ICML 2024), a gradient combiner.

Loss weights that grow for the tasks with the most *excess risk* left — how far each task is from its own best,
estimated from its gradient — rather than the largest loss, so a task whose loss stays high because its labels are
noisy (its irreducible risk is high) does not take over as under loss-based weighting. Per task and update:

* ``Hᵢ ← Hᵢ + gᵢ²`` (elementwise over the shared parameters: AdaGrad's diagonal estimate of the curvature, ``gᵢ`` the
  task's gradient of the step), and the excess risk estimate ``eᵢ = gᵢᵀ diag(1 / √(Hᵢ + 1e-7)) gᵢ``;
* at the first update each task's ``eᵢ`` is kept as its reference; from the second on, with ``rᵢ = eᵢ / eᵢ(first)``,
  ``λᵢ ← λᵢ · exp(η rᵢ)`` renormalised to sum ``K``, ``η`` the option ``step_size`` (LibMTL's ``robust_step_size``,
  default 0.01).

The step trains on ``Σ λᵢ Lᵢ``: the encoder gets ``Σ λᵢ gᵢ`` and each head ``λᵢ`` times its gradient, with the
weights as they were when the step began (the reference updates them before its backward pass; here the update of a
step's weights needs its gradients, which the heads' backward passes have used already, so the new weights train the
next step, as ``gradnorm``'s). Weights start at 1. fp16's loss scale is divided out of the statistics. The ``K`` sums of
squares (float32, encoder-sized: ``K ×`` the encoder's trainable parameters, in memory and in every checkpoint), the
references, the weights and the update count are saved in checkpoints, so ``--resume`` continues exactly. A step whose
losses or gradients are not finite is not combined (the base class passes the sum on) and changes no state. Logged
weights (``loss_weights`` events): the ``λᵢ`` the step trained with.
"""

from __future__ import annotations

from typing import Any

import torch

from mtcore.errors import ConfigError
from mtcore.train.db_mtl import TaskAverages
from mtcore.train.gradient_balancers import present_tasks
from mtcore.train.losses import GradientCombiner, _finite


class ExcessMTLLoss(TaskAverages, GradientCombiner):
    """ExcessMTL with multiplicative step ``step_size`` (see the module docstring)."""

    logs_weights = True
    strategy_name = "excess_mtl"
    rows = "square_sums"

    def __init__(self, task_ids: Any, weights: Any = None, step_size: float = 0.01, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if _finite(step_size, "excess_mtl", "step_size", "the multiplicative step η of the weights") <= 0:
            raise ConfigError(f"loss strategy 'excess_mtl': option 'step_size' (the multiplicative step η of the weights, "
                              f"λ ← λ·exp(η·r)) must be a number > 0, got {step_size!r}")
        self.step_size = float(step_size)
        k = len(self.task_ids)
        self.register_buffer("square_sums", torch.zeros(k, 0))  # Hᵢ, one row per task; sized at the first update
        self.register_buffer("references", torch.zeros(k, dtype=torch.float64))  # eᵢ at the task's first update
        self.register_buffer("loss_weights", torch.ones(k, dtype=torch.float64))  # λ
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
        self._used: torch.Tensor | None = None

    def head_scale(self, index: int) -> torch.Tensor:
        return self.loss_weights[index]

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        present = present_tasks(self, len(grads))
        device = grads[0].device
        unit = self.loss_unit.to(device) if self.loss_unit is not None else torch.ones((), dtype=torch.float64, device=device)
        sums = self._sized(grads[0].numel(), device)
        self._used = self.loss_weights.clone()
        weights = self._used.to(device)
        update = sum(weights[i].to(g.dtype) * g for i, g in zip(present, grads))  # this step's weights; λ moves for the next
        excess = torch.zeros(len(self.task_ids), dtype=torch.float64, device=device)
        for j, i in enumerate(present):  # Hᵢ += gᵢ², eᵢ = gᵢᵀ diag(1/√(Hᵢ + 1e-7)) gᵢ, the loss scale divided out
            g = grads[j].float() / unit.float()
            sums[i].addcmul_(g, g)
            excess[i] = torch.dot(g.double() * g.double(), (sums[i].double() + 1e-7).rsqrt())
        mask = torch.zeros(len(self.task_ids), dtype=torch.bool, device=device)
        mask[present] = True
        first = mask & (self.references.to(device) == 0)
        references = torch.where(first, excess, self.references.to(device))
        ratio = torch.where(mask & ~first & (references > 0), excess / references.clamp(min=torch.finfo(torch.float64).tiny),
                            torch.zeros_like(excess))
        logs = weights.clamp(min=torch.finfo(torch.float64).tiny).log() + self.step_size * ratio  # λ·exp(η r), in logs:
        moved = (logs - logs.max()).exp()  # a task's gradient far above its first one's overflowed exp
        self.references.copy_(references)
        self.loss_weights.copy_(moved * len(moved) / moved.sum())
        self.updates += 1
        return update

    def task_weights(self) -> dict[str, float]:
        used = self._used if self._used is not None else self.loss_weights
        return dict(zip(self.task_ids, used.float().tolist()))
