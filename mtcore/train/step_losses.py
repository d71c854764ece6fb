"""Each task's loss in one optimizer step, before and after its update, for strategies with ``after_step`` (FAMO) or
``before_step`` (the scalarizations of :mod:`mtcore.train.scalarizations`).

:class:`StepLosses` sums, on the device, each batch's loss divided by its divisor (:mod:`mtcore.train.step_weights`)
over the step's micro-steps; averaged over processes, that is each task's mean over the step's items (the logged
loss). :func:`losses_after_step` runs the step's batches forward again at the new parameters, without gradients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from mtcore.data.batch import model_inputs


class StepLosses:
    """One process's share of each task's loss in one optimizer step: each batch's loss divided by its divisor and
    summed over micro-steps (``sums``, float64, in task order), and whether any batch of the task counted (``counted``)."""

    def __init__(self, task_ids: Sequence[str], device: Any = None) -> None:
        self.index = {task: i for i, task in enumerate(task_ids)}
        self.sums = torch.zeros(len(self.index), dtype=torch.float64, device=device)
        self.counted = torch.zeros(len(self.index), dtype=torch.float64, device=device)

    def add(self, task: str, loss: torch.Tensor, divisor: Any) -> None:
        """Add one batch's loss (no host read). An infinite host divisor — nothing labelled, a DDP copy — counts nothing."""
        if isinstance(divisor, float) and math.isinf(divisor):
            return
        i = self.index[task]
        self.sums[i] += loss.detach().double() / divisor
        self.counted[i] = 1.0


def losses_after_step(model: Any, accelerator: Any, groups: Sequence[Sequence[Any]], divisors: Sequence[Sequence[Any]],
                      task_ids: Sequence[str], distiller: Any = None, step: int = 0, r3f: Any = None) -> StepLosses:
    """The step's batches (already on the device, ``groups[micro][k]``) forward again through ``model`` in its current
    (train) mode, without gradients, each loss divided by the same divisor as in training (and, with a ``distiller``,
    mixed with the teacher's as at ``step``; with ``r3f``, its term added). Every batch runs, DDP copies too, so every process calls the (DDP) model
    as often as in training."""
    from mtcore.train.distill import task_loss

    after = StepLosses(task_ids, accelerator.device)
    with torch.no_grad(), accelerator.autocast():
        for group, group_divisors in zip(groups, divisors):
            for batch, divisor in zip(group, group_divisors):
                after.add(batch.name, task_loss(model, batch.name, model_inputs(batch.data), distiller, step, r3f), divisor)
    return after


def losses_before_step(model: Any, accelerator: Any, groups: Sequence[Sequence[Any]], divisors: Sequence[Sequence[Any]],
                       task_ids: Sequence[str], distiller: Any = None, step: int = 0, r3f: Any = None) -> StepLosses:
    """The step's batches (``groups[micro][k]``, moved to the device here) forward before the step trains on them, as
    :func:`losses_after_step` runs them, on forked random streams (torch's CPU one and the GPU's, restored afterwards):
    the training forwards then draw the same dropout masks and R3F noise, so each loss here is the one the step
    back-propagates."""
    for group in groups:
        for batch in group:
            batch.data.to(accelerator.device)
    device = accelerator.device
    with torch.random.fork_rng(devices=[device] if getattr(device, "type", None) == "cuda" else []):
        return losses_after_step(model, accelerator, groups, divisors, task_ids, distiller, step, r3f)
