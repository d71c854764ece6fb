"""FAMO — Fast Adaptive Multitask Optimization (Liu, Liu, Stone & Liu, NeurIPS 2023, arXiv 2306.03792).

A loss balancer that decreases the tasks' losses at a balanced rate with O(1) cost: no per-task
backward pass, no task gradients kept. It takes one batch of every task per step
(``batches = "all"``) and keeps one logit ``ξ_i`` per task (start 0), ``z = softmax(ξ)``.

* Each step trains on ``Σ_i c_i · log D_i``, ``D_i = ℓ_i − ℓ_min,i + ε`` (``ε = 1e-8``), the
  ``c_i = z_i / Σ_j (z_j / D_j)`` held fixed: the gradient of ``Σ_i w_i ℓ_i`` with
  ``w_i ∝ z_i / D_i``. Here ``w = K · (z / D) / Σ (z / D)`` sums to ``K`` (the number of tasks), as
  for ``rlw``, ``dwa`` and ``gradnorm``, so the loss keeps the scale of ``sum`` (the paper's
  weights sum to 1). The loss is a sum of per-task terms ``w_i · ℓ_i``: it runs one backward per
  task, with gradient accumulation and under DDP, like ``dwa``. The weights are fixed before the
  step starts (:meth:`FAMOLoss.begin_step`), so ``D_i`` is task ``i``'s loss at the parameters
  the step starts from as measured after the previous step (below), on that step's batches — the
  reference uses the step's own batch, which would need every task's loss before any backward.
  At step 1 (no such loss yet) every weight is 1.
* After the optimizer step the loop runs the step's batches forward again at the new parameters
  (no gradients; train mode, dropout on, as the reference's trainers do;
  :func:`~mtcore.train.step_losses.losses_after_step`), ``δ_i = log D_i(before) − log D_i(after)``, and ``ξ`` takes one
  Adam step (option ``lr``, default 0.025; betas 0.9, 0.999; eps 1e-8) on ``(∂z/∂ξ)ᵀ δ`` with
  L2 weight decay ``gamma`` (default 0.01; FAMO's regulariser), as the reference's ``update``
  does with ``torch.optim.Adam(weight_decay=gamma)``. A task whose loss fell less than the others
  (relative to its size) gets a larger logit, so more weight. The extra forward costs about one
  more forward pass of every task's batch per step, without backward.
* Option ``min_losses`` (default 0, the reference's): ``ℓ_min`` for every task, or a
  ``{task: value}`` mapping (tasks left out: 0). Losses are assumed above it (cross-entropy is
  positive); a loss at or below it counts as ``D = ε`` (clamped), not a NaN: that task then gets
  almost all the weight, as the method does as a loss nears its minimum.

The step's losses, before and after the update, are each batch's loss divided by its divisor
(:mod:`mtcore.train.step_weights`) and summed over micro-steps on the device (:class:`~mtcore.train.step_losses.StepLosses`,
no host read; the loop collects them, since :meth:`~FAMOLoss.term` does not see the divisor), then
averaged over processes in one ``reduce_mean`` per step: each task's mean over the step's items
(the logged loss), the same on every process, so under DDP every process takes the same ``ξ`` step
and the same weights. The forward again runs every batch, DDP copies of another rank's too (they
count nothing), so every process calls the DDP model equally often. A task with no items in a step
gets ``δ_i = 0`` and keeps its last loss; a non-finite loss before or after leaves ``ξ``, Adam's
state and the losses as they are (an fp16 step the grad scaler skips just gives ``δ ≈ 0``).
``ξ``, Adam's moments and step count, ``ℓ_min`` and the losses of the weights are buffers, saved in
checkpoints: ``--resume`` continues exactly. The weights of each step are logged (``loss_weights``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from mtcore.errors import ConfigError
from mtcore.sampling.base import suggest_task
from mtcore.train.losses import LossStrategy
from mtcore.train.step_losses import StepLosses

EPS = 1e-8  # the reference's ε in log(ℓ − ℓ_min + ε)


class FAMOLoss(LossStrategy):
    """FAMO: ``Σ_i w_i L_i`` with ``w = K · (z / D) / Σ (z / D)``, ``z = softmax(ξ)``; ``ξ`` updated after each step
    from the step's losses before and after it (see the module docstring)."""

    batches = "all"
    uses_weights = False
    logs_weights = True
    needs_losses_after_step = True
    BETAS = (0.9, 0.999)  # Adam's (torch's defaults, as the reference)

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, lr: float = 0.025, gamma: float = 0.01,
                 min_losses: float | Mapping[str, float] = 0.0, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if not _number(lr) or lr <= 0:
            raise ConfigError(f"loss strategy 'famo': option 'lr' (the learning rate of the task logits, default 0.025) "
                              f"must be a number > 0, got {lr!r}")
        if not _number(gamma) or gamma < 0:
            raise ConfigError(f"loss strategy 'famo': option 'gamma' (the task logits' weight decay, default 0.01) "
                              f"must be a number >= 0, got {gamma!r}")
        self.lr, self.gamma = float(lr), float(gamma)
        k = len(self.task_ids)
        self.register_buffer("min_losses", torch.tensor(_min_losses(min_losses, self.task_ids), dtype=torch.float64).reshape(k))
        self.register_buffer("logits", torch.zeros(k, dtype=torch.float64))  # ξ
        self.register_buffer("moments", torch.zeros(2, k, dtype=torch.float64))  # Adam's m and v
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))  # Adam's step count
        self.register_buffer("losses", torch.ones(k, dtype=torch.float64))  # the losses the next weights divide by
        self.register_buffer("measured", torch.zeros(k, dtype=torch.float64))  # 1 once a task's loss has been measured
        self.register_buffer("weights_now", torch.ones(k, dtype=torch.float64))
        self._index = {task: i for i, task in enumerate(self.task_ids)}

    def weights_for(self, losses: torch.Tensor) -> torch.Tensor:
        """``K · (z / D) / Σ (z / D)`` for the current logits and the tasks' ``losses`` (float64, in task order)."""
        ratio = torch.softmax(self.logits, 0) / self._gap(losses)
        return ratio * len(self.task_ids) / ratio.sum()

    def begin_step(self, step: int, reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Fix the step's weights from the logits and the losses measured after the last step (1 until every task has one)."""
        balanced = self.weights_for(self.losses)
        self.weights_now.copy_(torch.where(self.measured.bool().all(), balanced, torch.ones_like(balanced)))  # no host read

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        return self.weights_now[self._index[task_id]].to(loss.dtype) * loss

    def after_step(self, before: StepLosses, after: StepLosses, step: int,
                   reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """One Adam step of ``ξ`` on ``(∂softmax/∂ξ)ᵀ δ``; keep the losses after the step for the next weights."""
        k = len(self.task_ids)
        values = torch.cat([before.sums, after.sums, before.counted]).to(self.logits.device)
        if reduce_mean is not None:  # one collective: each task's mean over every process's items
            values = reduce_mean(values)
        old, new, counted = values.double().split(k)
        present = counted > 0
        delta = torch.where(present, self._gap(old).log() - self._gap(new).log(), torch.zeros_like(old))
        ok = torch.isfinite(delta).all()  # a NaN/inf loss (before or after): no update, on every process alike
        logits, moments, updates = self.adam_step(torch.where(ok, delta, torch.zeros_like(delta)))
        self.logits.copy_(torch.where(ok, logits, self.logits))
        self.moments.copy_(torch.where(ok, moments, self.moments))
        self.updates.copy_(torch.where(ok, updates, self.updates))
        keep = present & ok
        self.losses.copy_(torch.where(keep, new, self.losses))
        self.measured.copy_(torch.where(keep, torch.ones_like(self.measured), self.measured))

    def adam_step(self, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The logits, moments and step count after one Adam step on ``(∂z/∂ξ)ᵀ δ + gamma · ξ`` (not assigned)."""
        z = torch.softmax(self.logits, 0)
        grad = z * (delta - (z * delta).sum()) + self.gamma * self.logits  # softmax's Jacobian is diag(z) − z zᵀ
        (b1, b2), updates = self.BETAS, self.updates + 1
        t = updates.double()
        m = self.moments[0] * b1 + (1 - b1) * grad
        v = self.moments[1] * b2 + (1 - b2) * grad * grad
        step = self.lr * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + EPS)
        return self.logits - step, torch.stack([m, v]), updates

    def task_weights(self) -> dict[str, float]:
        return dict(zip(self.task_ids, self.weights_now.float().tolist()))

    def _gap(self, losses: torch.Tensor) -> torch.Tensor:
        """``D = ℓ − ℓ_min + ε``, at least ``ε`` (a loss at or below its minimum: no NaN)."""
        return (losses - self.min_losses).clamp(min=0) + EPS


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def _min_losses(value: Any, task_ids: Sequence[str]) -> list[float]:
    """Option ``min_losses``: one number for every task, or ``{task: number}`` (ids or bare names; others 0)."""
    if _number(value):
        return [float(value)] * len(task_ids)
    if not isinstance(value, Mapping):
        raise ConfigError(f"loss strategy 'famo': option 'min_losses' (each task's lowest loss, default 0) must be a number or "
                          f"a mapping {{task: number}}, got {value!r}")
    out = dict.fromkeys(task_ids, 0.0)
    for task, number in value.items():
        bare = [t for t in task_ids if t.split(":")[-1] == task]  # a bare name: sent for user:sent
        task = bare[0] if task not in out and len(bare) == 1 else task
        if task not in out:
            raise ConfigError(f"loss strategy 'famo': option 'min_losses' names unknown task {task!r}"
                              f"{suggest_task(str(task), list(task_ids))}; tasks: {', '.join(task_ids)}")
        if not _number(number):
            raise ConfigError(f"loss strategy 'famo': option 'min_losses' of task {task!r} must be a finite number, got {number!r}")
        out[task] = float(number)
    return list(out.values())
