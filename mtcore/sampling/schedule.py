"""The multitask schedule as a pure function of ``(seed, epoch, step)``.

Vocabulary:

* a task's **cycle** is one pass over all of its examples: its batches for cycle ``c`` of epoch
  ``e`` come from a generator seeded with ``(seed, e, task, c)``. A task that runs out starts
  its next cycle with a fresh permutation (it never stops the others, never crashes);
* with ``world_size`` ranks, a cycle's global batch list is read in **rounds**: in round ``j``
  rank ``r`` reads global batch ``j * world_size + r``. The last round wraps around to the start
  of the list, so every rank always gets a batch (or, with ``drop_last``, the incomplete round
  is dropped). Each time a task is drawn, every rank advances by one round. A cycle with fewer
  batches than ranks wraps onto itself within one round: ranks ``r >= batches`` read a batch a
  lower rank reads at the same step (:meth:`TaskPlan.duplicate`; the training loop gives such a
  copy no weight and counts none of its rows);
* the epoch's **length** follows the stop rule: ``"largest"`` — until every task has gone
  through all of its batches at least once (in mode ``"all"``: the task with the most batches);
  ``"smallest"`` — until the first task runs out, so no example repeats (except, under DDP
  without ``drop_last``, the rows the last round borrows from the start to fill every rank); an integer — that
  many steps.

Knowing how often each task was drawn before a step is enough to find every rank's batch at
that step, so resuming needs only the epoch and the step.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mtcore.errors import ConfigError
from mtcore.sampling.base import Sampler
from mtcore.sampling.batching import (
    BATCHING_STREAM,
    MEGA_BATCH,
    length_grouped_batches,
    random_batches,
    rng_for,
    task_key,
    token_budget_batches,
)

#: How far past the expected length ``stop="largest"`` may run before it is declared endless.
ENDLESS_FACTOR = 1000


@dataclass(frozen=True)
class Batching:
    """How one task's examples are cut into batches (everything but the randomness)."""

    batch_size: int
    group_by_length: bool = True
    token_budget: int | None = None
    shuffle: bool = True
    drop_last: bool = False
    pad_to_multiple_of: int | None = None
    mega_batch: int = MEGA_BATCH
    packed: bool = False  # padding-free batches: token budgets count real tokens
    max_rows: int | None = None  # under a token budget: at most this many rows per batch


class TaskPlan:
    """One task's global batches, cycle by cycle, and the rounds the ranks read them in."""

    CACHED_CYCLES = 4

    def __init__(self, name: str, lengths: Sequence[int] | np.ndarray, batching: Batching, *, seed: int, epoch: int, world_size: int = 1,
                 choices: Sequence[int] | np.ndarray | None = None):
        self.name = name
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        #: multiple choice: each row's number of choices (token budgets count rows x most choices x longest)
        self.choices = None if choices is None else np.asarray(choices, dtype=np.int64).reshape(-1)
        self.batching = batching
        self.seed, self.epoch, self.world_size = seed, epoch, world_size
        self._key = task_key(name)
        self._cache: OrderedDict[int, list[np.ndarray]] = OrderedDict()
        self._counts: dict[int, int] = {}
        if batching.token_budget is None:
            n, size = len(self.lengths), batching.batch_size
            self._fixed_count: int | None = n // size if batching.drop_last else -(-n // size)
        else:
            self._fixed_count = None
        self._cycle_ends = [self.rounds(0)]
        if self.rounds(0) < 1:
            why = f"fewer than batch_size {batching.batch_size}" if self.batch_count(0) == 0 else f"fewer batches than world_size {world_size}"
            raise ConfigError(
                f"task {name!r} has {len(self.lengths)} examples: {why} with drop_last=True; lower its batch size or set drop_last=False"
            )

    def batches(self, cycle: int) -> list[np.ndarray]:
        """The global batches of ``cycle`` (row indices), cached for the last few cycles."""
        if cycle in self._cache:
            self._cache.move_to_end(cycle)
            return self._cache[cycle]
        b = self.batching
        rng = rng_for(self.seed, self.epoch, BATCHING_STREAM, self._key, cycle) if b.shuffle else None
        if b.token_budget is not None:
            batches = token_budget_batches(self.lengths, b.token_budget, rng, group_by_length=b.group_by_length,
                                           mega_batch=b.mega_batch, pad_to_multiple_of=b.pad_to_multiple_of, packed=b.packed,
                                           max_rows=b.max_rows, choices=self.choices)
        elif b.group_by_length:
            batches = length_grouped_batches(self.lengths, b.batch_size, rng, mega_batch=b.mega_batch, drop_last=b.drop_last)
        else:
            batches = random_batches(len(self.lengths), b.batch_size, rng, drop_last=b.drop_last)
        self._cache[cycle] = batches
        self._counts[cycle] = len(batches)
        while len(self._cache) > self.CACHED_CYCLES:
            self._cache.popitem(last=False)
        return batches

    def batch_count(self, cycle: int) -> int:
        """Global batches in ``cycle`` (without building them when batch sizes are fixed)."""
        if self._fixed_count is not None:
            return self._fixed_count
        if cycle not in self._counts:
            self.batches(cycle)
        return self._counts[cycle]

    def rounds(self, cycle: int) -> int:
        """Rounds (draws of this task) that ``cycle`` lasts on every rank."""
        count, w = self.batch_count(cycle), self.world_size
        return count // w if self.batching.drop_last else -(-count // w)

    def locate(self, draw: int) -> tuple[int, int]:
        """``(cycle, round)`` of the task's ``draw``-th draw (0-based) in the epoch."""
        if self._fixed_count is not None:
            return divmod(draw, self.rounds(0))
        ends = self._cycle_ends  # ends[c] = draws in cycles 0..c
        while ends[-1] <= draw:
            ends.append(ends[-1] + self.rounds(len(ends)))
        cycle = bisect.bisect_right(ends, draw)
        return cycle, draw - (ends[cycle - 1] if cycle else 0)

    def batch_for(self, draw: int, rank: int) -> tuple[int, np.ndarray]:
        """``(cycle, row indices)`` that ``rank`` reads at the task's ``draw``-th draw."""
        cycle, round_ = self.locate(draw)
        batches = self.batches(cycle)
        return cycle, batches[(round_ * self.world_size + rank) % len(batches)]

    def duplicate(self, draw: int, rank: int) -> bool:
        """Whether ``rank`` reads at the task's ``draw``-th draw a batch that a lower rank reads too: its cycle has
        fewer batches than there are ranks (a task smaller than one global round), so the round wraps onto itself."""
        return rank >= self.batch_count(self.locate(draw)[0])


def _first_reaching(draws: np.ndarray, task: int, before: int, target: int) -> int | None:
    """Index in ``draws`` at which task ``task`` reaches ``target`` draws, given ``before`` earlier ones."""
    hits = np.flatnonzero(draws == task)
    needed = target - before
    return int(hits[needed - 1]) if 0 < needed <= len(hits) else None


def count_steps(plans: Sequence[TaskPlan], sampler: Sampler | None, mode: str, stop: str | int, chunk: int = 1 << 16) -> int:
    """Steps in the epoch for the stop rule (the sampler must be set to the plans' epoch)."""
    if not isinstance(stop, str):
        return int(stop)
    needs = [plan.rounds(0) for plan in plans]
    if mode == "all":
        return max(needs) if stop == "largest" else min(needs)
    assert sampler is not None
    try:  # tasks the sampler never draws (weight 0) cannot end or hold up the epoch
        active = set(np.flatnonzero(sampler.normalized_probabilities() > 0).tolist())
    except NotImplementedError:
        active = set(range(len(plans)))
    done: dict[int, int] = {}
    counts = np.zeros(len(plans), dtype=np.int64)
    limit = ENDLESS_FACTOR * sum(needs) + chunk
    start = 0
    while start < limit:
        draws = sampler.draws(start, start + chunk)
        found = {}
        for t, need in enumerate(needs):
            if t in active and t not in done:
                at = _first_reaching(draws, t, int(counts[t]), need)
                if at is not None:
                    found[t] = start + at + 1
        done.update(found)
        if stop == "smallest" and done:
            return min(done.values())
        if stop == "largest" and len(done) == len(active):
            return max(done.values())
        counts += np.bincount(draws, minlength=len(plans))
        start += chunk
    missing = [plans[t].name for t in sorted(active) if t not in done]
    raise ConfigError(
        f"stop='{stop}' never ends: sampler {sampler.name!r} (almost) never draws task {missing[0]!r}; "
        "give it a weight above 0 or set stop to a number of steps"
    )


def draw_counts(sampler: Sampler, num_tasks: int, step: int) -> np.ndarray:
    """How often each task was drawn in steps ``0..step-1`` of the sampler's epoch."""
    return np.bincount(sampler.draws(0, step), minlength=num_tasks).astype(np.int64)
