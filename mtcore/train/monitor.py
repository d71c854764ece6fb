"""What the hot loop records without synchronising with the device.

* :class:`LossMeter` sums each task's loss on the device, weighted by the items it is a mean over
  (labelled rows or tokens, :func:`~mtcore.train.step_weights.loss_items`), and counts examples,
  tokens and time on the host; :meth:`LossMeter.flush` (called at logging steps only) reads the
  sums — the one host sync of a logging step — and returns per-task rows: the logged loss is the
  mean over every item since the last logging step, on every process (not a mean of batch means).
  Under DDP the sums, examples and tokens are added up over the processes (each reads its own
  rows; a copy of a lower rank's batch counts nothing), so rates and the run's ``examples_seen``
  / ``tokens_seen`` (:meth:`LossMeter.take_counts`) are the whole run's.
* :class:`NonFiniteWatch` remembers, on the device, the first step at which each task's loss was
  NaN or infinite; :meth:`NonFiniteWatch.check` (at logging, evaluation and checkpoint steps)
  raises :class:`NonFiniteLossError` naming the task and that step (its ``step``, also the ``error``
  event's, is the step the loss went bad, not the later one where the check found it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from mtcore.errors import MtError


class TrainingError(MtError):
    """Training cannot go on (exit code 1); the message says why and what is kept. ``step``: the step the message
    names, when it names one (the ``step`` of the run's ``error`` event: :func:`mtcore.train.loop.log_error`)."""

    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.step = step


class NonFiniteLossError(TrainingError):
    """A task's loss became NaN or infinite."""


class OutOfMemory(TrainingError):
    """The accelerator ran out of memory."""


class LossMeter:
    """Per-task loss sums (on the device), examples/tokens/time (on the host) between log steps."""

    def __init__(self, tasks: Sequence[str], device: torch.device) -> None:
        self.tasks = list(tasks)
        self.device = device
        self.total_data_wait = 0.0
        self.unsynced = [0, 0]  # examples, tokens since the last take_counts (this process)
        self.reset()

    def waited(self, seconds: float) -> None:
        """Time spent waiting for the next batch (reading rows and collating)."""
        self.data_wait += seconds
        self.total_data_wait += seconds

    def reset(self) -> None:
        self.sums = {t: torch.zeros((), device=self.device, dtype=torch.float32) for t in self.tasks}  # loss x items
        self.items = dict.fromkeys(self.tasks, 0.0)
        self.batches = dict.fromkeys(self.tasks, 0)
        self.examples = dict.fromkeys(self.tasks, 0)
        self.tokens = dict.fromkeys(self.tasks, 0)
        self.data_wait = 0.0
        self.excluded = 0.0
        self.started = time.perf_counter()

    def exclude(self, seconds: float) -> None:
        """Time since the last reset that was not training (evaluation, checkpoints): not in the rates."""
        self.excluded += seconds

    def add(self, task: str, loss: torch.Tensor, examples: int, tokens: int, items: float | None = None) -> None:
        """Record one batch (no sync: the loss stays on the device); ``items``: what its loss is a mean over, a count or
        (class weights) a weight sum (None: 1, every batch alike; 0: left out of the logged loss, e.g. a DDP copy)."""
        items = 1.0 if items is None else float(items)
        if items:
            self.sums[task] += loss.detach().float() * items
            self.items[task] += items
        self.batches[task] += 1
        self.examples[task] += int(examples)
        self.tokens[task] += int(tokens)
        self.unsynced[0] += int(examples)
        self.unsynced[1] += int(tokens)

    def take_counts(self, reduce_sum: Any = None) -> tuple[int, int]:
        """Examples and tokens read since the last call, by every process (``reduce_sum`` under DDP)."""
        counts = list(self.unsynced)
        if reduce_sum is not None:
            counts = [int(v) for v in reduce_sum(torch.tensor(counts, dtype=torch.long, device=self.device)).tolist()]
        self.unsynced = [0, 0]
        return counts[0], counts[1]

    def window(self, reduce_sum: Any = None) -> dict[str, Any]:
        """The logging window so far (since the last :meth:`flush`), for a checkpoint: per-task loss sums, items,
        batches, examples and tokens, its seconds and data wait; {} when empty. A host read (checkpoint steps only);
        under DDP the sums, items, examples and tokens are every process's (``reduce_sum``), the batches this one's."""
        active = [t for t in self.tasks if self.batches[t]]  # every process: the same tasks (all ranks draw the same)
        if not active:
            return {}
        sums = torch.stack([torch.stack([self.sums[t].float() for t in active]),
                            torch.tensor([float(self.items[t]) for t in active], dtype=torch.float32, device=self.device)], dim=1)
        counts = torch.tensor([[self.examples[t], self.tokens[t]] for t in active], dtype=torch.long, device=self.device)
        if reduce_sum is not None:
            sums, counts = reduce_sum(sums), reduce_sum(counts)
        rows = {t: {"sum": total, "items": items, "batches": self.batches[t], "examples": int(examples), "tokens": int(tokens)}
                for t, (total, items), (examples, tokens) in zip(active, sums.tolist(), counts.tolist())}  # float32 -> float: exact
        return {"tasks": rows, "seconds": time.perf_counter() - self.started - self.excluded, "data_wait": self.data_wait}

    def restore_window(self, saved: dict[str, Any], main: bool = True) -> None:
        """Continue the logging window a checkpoint saved (:meth:`window`), so the first ``train`` events after a resume
        are the uninterrupted run's. Under DDP only the main process takes the sums (the logging step adds them up)."""
        if not saved:
            return
        for task, row in saved.get("tasks", {}).items():
            if task not in self.sums:
                continue
            self.batches[task] = int(row["batches"])  # every process: the same tasks are active at the logging step
            if main:
                self.sums[task] = torch.tensor(float(row["sum"]), device=self.device, dtype=torch.float32)
                self.items[task], self.examples[task], self.tokens[task] = float(row["items"]), int(row["examples"]), int(row["tokens"])
        if main:
            self.data_wait = float(saved.get("data_wait", 0.0))
        self.started = time.perf_counter() - float(saved.get("seconds", 0.0))

    def flush(self, reduce_sum: Any = None) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """Per-task ``{loss, examples_per_s, tokens_per_s, batches}`` and totals; resets the meter.

        Under DDP ``reduce_sum`` adds up the processes' loss sums, items, examples and tokens (every process
        calls this at the same step, with the same tasks active: all ranks draw the same tasks).
        """
        elapsed = max(time.perf_counter() - self.started - self.excluded, 1e-9)
        active = [t for t in self.tasks if self.batches[t]]
        if reduce_sum is not None:
            counts = torch.tensor([[self.examples[t], self.tokens[t]] for t in self.tasks], dtype=torch.long, device=self.device)
            for task, (examples, tokens) in zip(self.tasks, reduce_sum(counts).tolist()):
                self.examples[task], self.tokens[task] = int(examples), int(tokens)
        rows: dict[str, dict[str, float]] = {}
        if active:
            items = torch.tensor([float(self.items[t]) for t in active], device=self.device)
            stacked = torch.stack([torch.stack([self.sums[t] for t in active]), items], dim=1)
            if reduce_sum is not None:
                stacked = reduce_sum(stacked)
            values = stacked.tolist()  # the host sync of this logging step
            for task, (total, count) in zip(active, values):
                rows[task] = {"loss": float(total / count) if count else 0.0, "examples_per_s": self.examples[task] / elapsed,
                              "tokens_per_s": self.tokens[task] / elapsed, "batches": self.batches[task]}
        totals = {"examples_per_s": sum(self.examples.values()) / elapsed, "tokens_per_s": sum(self.tokens.values()) / elapsed,
                  "data_wait_share": self.data_wait / elapsed, "seconds": elapsed}
        self.reset()
        return rows, totals


class NonFiniteWatch:
    """First step with a non-finite loss, per task, tracked on the device."""

    def __init__(self, tasks: Sequence[str], device: torch.device, strategy: str | None = None) -> None:
        self.tasks = list(tasks)
        # row 0: the task's loss; row 1: what the loss strategy made of it (its term(), back-propagated)
        self.first_bad = torch.full((2, len(self.tasks)), -1, dtype=torch.long, device=device)
        self._index = {t: i for i, t in enumerate(self.tasks)}
        self.strategy = strategy

    def observe(self, task: str, loss: torch.Tensor, step: int) -> None:
        """Remember ``step`` if ``loss`` is not finite and nothing was seen for ``task`` yet (no sync)."""
        self._note(0, task, loss, step)

    def observe_term(self, task: str, term: torch.Tensor, step: int) -> None:
        """As :meth:`observe`, for the loss strategy's term of ``task`` (what is back-propagated; no sync)."""
        self._note(1, task, term, step)

    def _note(self, row: int, task: str, value: torch.Tensor, step: int) -> None:
        i = self._index[task]
        bad = ~torch.isfinite(value.detach()) & (self.first_bad[row, i] < 0)
        self.first_bad[row, i] = torch.where(bad, torch.full_like(self.first_bad[row, i], step), self.first_bad[row, i])

    def check(self, last_checkpoint: str | None, gather: Any = None) -> None:
        """Raise :class:`NonFiniteLossError` if any task's loss, or the loss strategy's term of it, went non-finite on any
        process (a term that did at an earlier step than any loss names the strategy).

        ``gather`` (DDP) concatenates the per-process tensors, so every rank raises together.
        """
        values = (gather(self.first_bad) if gather is not None else self.first_bad).reshape(-1, 2, len(self.tasks))
        seen = [(int(step), self.tasks[i]) for rows in values.tolist() for i, step in enumerate(rows[0]) if step >= 0]
        made = [(int(step), self.tasks[i]) for rows in values.tolist() for i, step in enumerate(rows[1]) if step >= 0]
        if not seen and not made:
            return
        kept = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was written before it"
        if made and (not seen or min(made)[0] < min(seen)[0]):  # the task's loss was finite; the strategy's term of it was not
            step, task = min(made)
            raise NonFiniteLossError(
                f"loss strategy {self.strategy!r} made the loss of task {task!r} NaN or infinite at step {step} (the task's own "
                f"loss was finite); training stopped and {kept} (fix the strategy's term(), or choose another loss.strategy)",
                step=step)
        step, task = min(seen)
        raise NonFiniteLossError(
            f"loss of task {task!r} became NaN or infinite at step {step}; training stopped and {kept} "
            "(lower optimizer.lr, keep optimizer.max_grad_norm, or check the task's data)", step=step
        )


def diverged_evaluation(metrics: dict[str, float], step: int, split: str, last_checkpoint: str | None) -> NonFiniteLossError | None:
    """The error for an evaluation whose loss is NaN or infinite for some task (the weights diverged while the training
    losses were still finite: huge weights), else None. Raised before the evaluation is logged or counted as the best,
    and before a checkpoint of such weights is written."""
    bad = next((key for key, value in metrics.items() if key.endswith("/loss") and not math.isfinite(value)), None)
    if bad is None:
        return None
    kept = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was written before it"
    return NonFiniteLossError(f"the {split} loss of task {bad.rsplit('/', 1)[0]!r} became NaN or infinite at the evaluation of step "
                              f"{step} (the weights diverged); training stopped and {kept} (lower optimizer.lr, keep "
                              "optimizer.max_grad_norm, or check the task's data)", step=step)


def out_of_memory(step: int, task: str, batch_size: int, tokens: int) -> OutOfMemory:
    """The one-line message for a CUDA out-of-memory error."""
    return OutOfMemory(
        f"CUDA out of memory at step {step} (task {task!r}, batch of {batch_size} examples, {tokens} tokens); "
        "lower batching.batch_size, set a token budget with batching.max_tokens, raise optimizer.gradient_accumulation_steps, "
        "or set encoder.gradient_checkpointing: true", step=step
    )
