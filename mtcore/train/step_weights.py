"""Each optimizer step's loss of a task is the mean over every item it trained on, on every process.

A head's loss is a mean over the labelled items of its batch (rows; tokens for token tasks;
row-label pairs for multi-label). A step holds several batches of a task: one per process under
DDP, one per micro-step with gradient accumulation. Averaging their means (what DDP's gradient
average and ``loss / gradient_accumulation_steps`` do) weights every batch alike, whatever it
holds: a mean of means. Under a token budget, batches hold different numbers of rows, and token
tasks' batches different numbers of labelled tokens, so a row in a small batch counted for more.

:func:`step_divisors` gives each batch's divisor instead: the task's term (its loss, scaled
and shifted by the loss strategy) divided by it and summed over the step's batches, then
averaged over processes by DDP, is ``(A_t / A) * sum(n_b * loss_b) / N_t`` — the mean over the
task's ``N_t`` items in the step (``n_b`` per batch, every process and micro-step), times the share
of the step's ``A`` micro-steps that drew the task (1 in mode ``all``). Equal batches give exactly
``A``, the old divisor. The ``N_t`` of every task come from one sum over processes per step (no
host read: the divisors stay on the device). A batch with nothing labelled, or a DDP copy of a
lower rank's batch (:attr:`~mtcore.data.batch.Batch.duplicate`), counts 0
items: its divisor is infinite, so it trains nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from mtcore.train.evaluation import labelled_items


def loss_items(batch: Any, kind: str, class_weights: torch.Tensor | None = None) -> float:
    """The items ``batch``'s loss is a mean over (0 for a DDP copy); its rows when it holds no labels; with the head's
    ``class_weights``, the sum of its items' weights (see :func:`~mtcore.train.evaluation.labelled_items`).
    Read from the host-side labels, before the batch moves to the device."""
    if getattr(batch, "duplicate", False):
        return 0
    data = batch.data
    labels = data.get("labels") if isinstance(data, Mapping) else None
    if not isinstance(labels, torch.Tensor):
        return int(batch.size)
    return labelled_items(kind, labels.detach().cpu() if labels.device.type != "cpu" else labels, class_weights)


def step_divisors(groups: Sequence[Sequence[Any]], items: Sequence[Sequence[int]], task_ids: Sequence[str], *, processes: int,
                  reduce_sum: Callable[[torch.Tensor], torch.Tensor] | None = None, device: Any = None) -> list[list[Any]]:
    """Per batch of the step (``groups[micro][k]``, ``items`` alike), what its task's term is divided by.

    Host floats on one process; device tensors under DDP (``reduce_sum`` adds up the processes' counts,
    which every process calls with the same tasks in the same order).
    """
    accumulation = len(groups)
    local = dict.fromkeys(task_ids, 0)
    drawn = dict.fromkeys(task_ids, 0)
    for group, counts in zip(groups, items):
        for batch, n in zip(group, counts):
            local[batch.name] += n
        for name in {batch.name for batch in group}:
            drawn[name] += 1
    totals: Mapping[str, Any] = local
    if reduce_sum is not None:
        summed = reduce_sum(torch.tensor([float(local[t]) for t in task_ids], dtype=torch.float32, device=device)).clamp(min=1.0)
        totals = dict(zip(task_ids, summed.unbind()))

    def divisor(name: str, n: int) -> Any:
        if n == 0:
            return float("inf")
        total = totals[name]
        if isinstance(total, torch.Tensor):
            return total * accumulation / (drawn[name] * processes * n)
        return max(total, 1) * accumulation / (drawn[name] * processes * n)

    return [[divisor(batch.name, n) for batch, n in zip(group, counts)] for group, counts in zip(groups, items)]
