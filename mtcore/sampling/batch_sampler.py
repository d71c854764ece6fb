"""``MultitaskBatchSampler``: batches of many tasks, mixed by a task sampler; resumable, DDP-aware.

::

    sampler = MultitaskBatchSampler(tasks.data, "train", batch_size=12)       # the seed's call
    for batch in sampler:                                    # mode "single": one task per step
        batch.data.to(device)
        loss = model(batch.name, **batch.data).loss

    sampler = MultitaskBatchSampler(data, mode="all")        # the seed's "metabatch"
    for batches in sampler:                                  # one batch of every task per step
        loss = sum(model(b.name, **b.data).loss for b in batches)

The schedule is a pure function of ``(seed, epoch, step)`` (see :mod:`mtcore.sampling.schedule`
for cycles, rounds and stop rules), so :meth:`~MultitaskBatchSampler.state_dict` is tiny and a
sampler restored from it yields exactly the batches the interrupted one would have yielded. All
ranks build the sampler with the same seed: they draw the same task at every step, read disjoint
batches of it, and get the same number of steps.

Iteration continues from the current position; an iteration that reaches the end of the epoch
moves the sampler to the next epoch, so the seed's ``for epoch ...: for batch in sampler`` loop
gets a fresh order every epoch.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from mtcore.data.batch import Batch
from mtcore.data.collate import Collator
from mtcore.errors import ConfigError, DataError, did_you_mean
from mtcore.sampling.base import Sampler, match_task_names
from mtcore.sampling.batching import check_token_budget
from mtcore.sampling.protocol import TaskDataLike, fetch_rows
from mtcore.sampling.samplers import EachBatchOnceSampler
from mtcore.sampling.schedule import Batching, TaskPlan, count_steps, draw_counts

MODES = ("single", "all")
STOPS = ("largest", "smallest")
def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class MultitaskBatchSampler:
    """Yields :class:`mtcore.data.batch.Batch` (mode ``"single"``) or ``list[Batch]`` (mode ``"all"``).

    :param data: task name -> task data (:class:`~mtcore.sampling.protocol.TaskDataLike`); the
        names become ``Batch.name``. Tasks marked ``evaluate_only`` are left out of ``"train"``.
    :param split: the split to read.
    :param batch_size: rows per batch; ``batch_sizes`` overrides it per task.
    :param sampler: a registered sampler name (``mtcore.plugins.get_component("sampler", name)``),
        a :class:`~mtcore.sampling.base.Sampler` class or instance; ``sampler_options`` go to its
        constructor (``num_epochs`` is passed on to samplers that take it). Unused in mode ``"all"``.
    :param mode: ``"single"`` (one task per step) or ``"all"`` (one batch of every task per step).
    :param stop: ``"largest"`` (until every task has been through all its batches; smaller tasks
        restart with a fresh order), ``"smallest"`` (until the first task runs out) or a number
        of steps per epoch. On a split other than ``"train"`` (mode ``"single"``), ``"largest"``
        reads every task's batches once (:class:`EachBatchOnceSampler`, whatever ``sampler``
        says): each row once in one process (past it, a short last round re-reads the first batches).
    :param group_by_length: sort rows by length inside mega-batches of ~50 batches (less padding).
    :param token_budget: if set, batches hold as many rows as fit in this many padded token slots
        (``rows * longest <= token_budget``) instead of a fixed number of rows; an example longer
        than the budget gets a batch of its own and a warning. The budget counts
        ``batching_lengths(split)`` when the task data has it (multiple-choice rows: choices x
        longest choice, padded), else ``lengths(split)``, rounded up to the collator's
        ``pad_to_multiple_of``. Multiple-choice rows with different numbers of choices
        (``choice_counts(split)``) are padded to the batch's most choices, so a batch counts
        ``rows * most choices * longest choice``: the collated tensor's size, never above the
        budget. For a task whose collator makes padding-free batches
        (``collator.padding_free``) the budget counts real tokens instead (``sum of lengths <=
        token_budget``, multiple-choice rows summed over choices, plus one token per stand-in
        choice): the encoder computes exactly those, so every batch holds about the same work
        whatever the length mix.
    :param max_rows: with ``token_budget``, at most this many rows per batch (short-sequence
        tasks would otherwise get batches of thousands of rows under a large budget).
    :param shuffle: randomise order; ``False`` keeps dataset order (and no batch shuffling).
    :param seed: shared by every rank. :param epoch: the epoch to start in.
    :param num_epochs: total epochs (for annealed sampling and :meth:`total_steps`).
    :param rank: this process's rank. :param world_size: number of ranks.
    :param drop_last: drop each cycle's short batch (and, across ranks, its incomplete round).
    """

    def __init__(
        self,
        data: Mapping[str, TaskDataLike],
        split: str = "train",
        batch_size: int = 12,
        *,
        sampler: str | type[Sampler] | Sampler = "proportional",
        sampler_options: Mapping[str, Any] | None = None,
        mode: str = "single",
        stop: str | int = "largest",
        group_by_length: bool = True,
        token_budget: int | None = None,
        max_rows: int | None = None,
        batch_sizes: Mapping[str, int] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        num_epochs: int = 1,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if not isinstance(data, Mapping) or not data:
            raise ConfigError("MultitaskBatchSampler needs a mapping of task name -> task data with at least one task")
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r} is not valid{did_you_mean(str(mode), MODES)}; choose 'single' (one task per step) or 'all' (every task each step)")
        if isinstance(stop, str):
            if stop not in STOPS:
                raise ConfigError(f"stop {stop!r} is not valid{did_you_mean(stop, STOPS)}; use 'largest', 'smallest' or a number of steps")
        else:
            stop = _positive_int("stop (steps per epoch)", stop)
        self.world_size = _positive_int("world_size", world_size)
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < self.world_size:
            raise ConfigError(f"rank must be an integer in 0..{self.world_size - 1} (world_size {self.world_size}), got {rank!r}")
        if token_budget is not None:
            token_budget = _positive_int("token_budget", token_budget)
        if max_rows is not None:
            max_rows = _positive_int("max_rows", max_rows)
            if token_budget is None:
                raise ConfigError("max_rows caps the rows of token-budget batches; set token_budget too, or use batch_size alone")
        self.data, self.split, self.mode, self.stop = data, split, mode, stop
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.rank, self.seed = int(rank), int(seed)
        self.num_epochs = _positive_int("num_epochs", num_epochs)
        self.tasks = [name for name, td in data.items() if not (split == "train" and getattr(getattr(td, "task", None), "evaluate_only", False))]
        if not self.tasks:
            raise ConfigError(f"no task to train on in split {split!r}: every task is evaluate_only")
        sizes = match_task_names(batch_sizes or {}, list(data), "batch_sizes")
        self.lengths: dict[str, np.ndarray] = {}  # what grouping and budgets count (padded slots; real tokens if packed)
        self.real_lengths: dict[str, np.ndarray] = {}  # real tokens, for Batch.num_tokens
        self.batching: dict[str, Batching] = {}
        self.choices: dict[str, np.ndarray | None] = {}  # multiple choice under a token budget: choices per row
        for name in self.tasks:
            self.real_lengths[name] = self._read_lengths(name, "lengths")
            # padding-free batches under a token budget count real tokens; otherwise batches are cut
            # exactly as padded ones (same rows per batch, so packed and padded runs match)
            packed = bool(getattr(data[name].collator, "padding_free", False)) and token_budget is not None
            slots = hasattr(data[name], "batching_lengths") and not packed
            self.lengths[name] = self._read_lengths(name, "batching_lengths") if slots else self.real_lengths[name]
            # choice counts make budgets exact for rows padded to the batch's most choices; padded
            # costs need the slots (choices x longest choice) to know each row's longest choice
            self.choices[name] = self._read_choices(name) if token_budget is not None and (slots or packed) else None
            pad = getattr(data[name].collator, "pad_to_multiple_of", None)
            size = _positive_int(f"batch size of task {name!r}", sizes.get(name, batch_size))
            self.batching[name] = Batching(size, bool(group_by_length), token_budget, bool(shuffle), bool(drop_last), pad,
                                           packed=packed, max_rows=max_rows)
            if token_budget is not None:
                check_token_budget(name, self.lengths[name], token_budget, pad, packed=packed, choices=self.choices[name])
        if split != "train" and mode == "single" and stop == "largest":  # evaluation: each row once, no restarts
            sampler, sampler_options = EachBatchOnceSampler, {"shuffle": bool(shuffle)}
        self.sampler = self._build_sampler(sampler, sampler_options, {t: self._examples(t) for t in self.tasks})
        self.epoch = _positive_int("epoch", epoch, minimum=0)
        self._step = 0
        self._plans_cache: tuple[int, int, list[TaskPlan]] | None = None
        self._steps_cache: dict[tuple[int, int], int] = {}
        if isinstance(self.sampler, EachBatchOnceSampler):
            self.sampler.batch_counts = self._draws_per_task
        self.sampler.set_epoch(self.epoch)
        self._plans()  # fail now (too few examples for drop_last), not at the first step

    # ---- construction helpers ------------------------------------------------------------------
    def _read_lengths(self, name: str, method: str) -> np.ndarray:
        td = self.data[name]
        splits = getattr(td, "splits", {})
        if self.split not in splits:
            raise ConfigError(f"task {name!r} has no split {self.split!r} (it has: {', '.join(splits) or 'none'})")
        lengths = np.asarray(getattr(td, method)(self.split), dtype=np.int64).reshape(-1)
        if len(lengths) == 0:
            raise DataError(f"task {name!r}: split {self.split!r} has no examples; remove the task or give it data")
        try:
            rows = len(splits[self.split])
        except TypeError:
            rows = len(lengths)
        if rows != len(lengths):
            raise DataError(f"task {name!r}: lengths({self.split!r}) has {len(lengths)} entries but the split has {rows} rows")
        return lengths

    def _examples(self, name: str) -> int:
        """A task's size for the sampler: its examples (extractive QA: its questions, not their contexts' windows, which
        ``max_length`` and ``stride`` decide), else its rows."""
        count = getattr(self.data[name], "num_examples", None)
        return int(count(self.split)) if callable(count) else len(self.lengths[name])

    def _read_choices(self, name: str) -> np.ndarray | None:
        """Choices per row (multiple-choice task data with ``choice_counts``), else ``None``."""
        method = getattr(self.data[name], "choice_counts", None)
        counts = method(self.split) if callable(method) else None
        if counts is None:
            return None
        counts = np.asarray(counts, dtype=np.int64).reshape(-1)
        if len(counts) != len(self.real_lengths[name]):
            raise DataError(f"task {name!r}: choice_counts({self.split!r}) has {len(counts)} entries but the split has "
                            f"{len(self.real_lengths[name])} rows")
        return counts

    def _build_sampler(self, sampler: Any, options: Mapping[str, Any] | None, sizes: dict[str, int]) -> Sampler:
        if isinstance(sampler, Sampler):
            if options:
                raise ConfigError("sampler_options cannot be used with a ready-made Sampler instance; pass its class or name instead")
            if sampler.tasks != self.tasks:
                raise ConfigError(f"the given sampler is for tasks {sampler.tasks}, but the data has {self.tasks}")
            sampler.seed = self.seed
            return sampler
        if isinstance(sampler, str):
            from mtcore.plugins import get_component

            sampler = "mtcore:proportional" if sampler == "proportional" else sampler  # the default: mtcore's own, namesakes aside
            cls = get_component("sampler", sampler)
        else:
            cls = sampler
        if not (isinstance(cls, type) and issubclass(cls, Sampler)):
            raise ConfigError(f"sampler {sampler!r} is not a mtcore.sampling.base.Sampler subclass")
        options = dict(options or {})
        if "num_epochs" in cls.defaults and "num_epochs" not in options:
            options["num_epochs"] = self.num_epochs
        return cls(sizes, seed=self.seed, **options)

    def _plans(self, epoch: int | None = None) -> list[TaskPlan]:
        epoch = self.epoch if epoch is None else epoch
        if self._plans_cache is not None and self._plans_cache[:2] == (epoch, self.seed):
            return self._plans_cache[2]
        plans = [TaskPlan(t, self.lengths[t], self.batching[t], seed=self.seed, epoch=epoch, world_size=self.world_size,
                          choices=self.choices[t]) for t in self.tasks]
        if epoch == self.epoch:
            self._plans_cache = (epoch, self.seed, plans)
        return plans

    # ---- length ----------------------------------------------------------------------------------
    def steps_in_epoch(self, epoch: int) -> int:
        """Steps in ``epoch`` (the same on every rank); ``len(sampler)`` is this for the current epoch."""
        key = (epoch, self.seed)
        if key not in self._steps_cache:
            sampler = self.sampler
            if epoch != sampler.epoch:
                sampler = copy.copy(sampler)
                sampler.set_epoch(epoch)
            self._steps_cache[key] = count_steps(self._plans(epoch), sampler, self.mode, self.stop)
        return self._steps_cache[key]

    def _draws_per_task(self, epoch: int) -> list[int]:
        return [plan.rounds(0) for plan in self._plans(epoch)]

    def batches_in_epoch(self, epoch: int | None = None) -> dict[str, int]:
        """Draws each task needs to go through all of its batches once in ``epoch`` (default: the current one)."""
        return {plan.name: plan.rounds(0) for plan in self._plans(epoch)}

    def total_steps(self) -> int:
        """Steps over all ``num_epochs`` epochs (for learning-rate schedules)."""
        return sum(self.steps_in_epoch(e) for e in range(self.num_epochs))

    def __len__(self) -> int:
        return self.steps_in_epoch(self.epoch)

    @property
    def step(self) -> int:
        """Steps already yielded in the current epoch."""
        return self._step

    def set_epoch(self, epoch: int) -> None:
        """Go to the start of ``epoch``; if the sampler is already in ``epoch`` (e.g. just restored
        from a checkpoint) it keeps its position."""
        epoch = _positive_int("epoch", epoch, minimum=0)
        if epoch != self.epoch:
            self.epoch, self._step = epoch, 0
            self.sampler.set_epoch(epoch)

    # ---- iteration ------------------------------------------------------------------------------
    def iter_indices(self) -> Iterator[Any]:
        """Like iteration, without reading rows: yields ``(task, row_indices)`` (mode ``"single"``)
        or a list of them (mode ``"all"``), and advances the state the same way."""
        for item in self._walk():
            yield [entry[:2] for entry in item] if self.mode == "all" else item[:2]

    def _walk(self) -> Iterator[Any]:
        """:meth:`iter_indices` with a third value per batch: :meth:`TaskPlan.duplicate` (a copy of a lower rank's batch)."""
        expected: tuple[int, int] | None = None
        counts = np.zeros(0, dtype=np.int64)
        choices, choices_start = np.zeros(0, dtype=np.int64), 0
        while True:
            epoch, step, total = self.epoch, self._step, len(self)
            if step >= total:
                break
            plans = self._plans()
            if self.mode == "all":
                item: Any = [(p.name, p.batch_for(step, self.rank)[1], p.duplicate(step, self.rank)) for p in plans]
            else:
                if expected != (epoch, step):  # first step, or the state was changed from outside
                    counts = draw_counts(self.sampler, len(plans), step)
                    choices, choices_start = np.zeros(0, dtype=np.int64), step
                if not choices_start <= step < choices_start + len(choices):
                    choices, choices_start = self.sampler.draws(step, min(step + Sampler.BLOCK, total)), step
                t = int(choices[step - choices_start])
                item = (plans[t].name, plans[t].batch_for(int(counts[t]), self.rank)[1], plans[t].duplicate(int(counts[t]), self.rank))
                counts[t] += 1
            self._step = self.sampler.step = step + 1
            expected = (epoch, step + 1)
            yield item
        self.set_epoch(self.epoch + 1)  # the epoch is complete: the next iteration starts the next one

    def __iter__(self) -> Iterator[Any]:
        for item in self._walk():
            if self.mode == "all":
                yield [self.make_batch(*entry) for entry in item]
            else:
                yield self.make_batch(*item)

    def make_batch(self, name: str, rows: np.ndarray, duplicate: bool = False) -> Any:
        """Read rows ``rows`` of task ``name`` and collate them into a :class:`~mtcore.data.batch.Batch` (``duplicate``: see there)."""
        td = self.data[name]
        indices = [int(i) for i in rows]
        num_tokens = int(self.real_lengths[name][rows].sum())
        split = td.splits[self.split]
        masker = getattr(td.collator, "masker", None) if self.split == "train" else None  # masked_lm: new masks each draw
        remask = (lambda got: got) if masker is None else (lambda got: masker.redraw(got, indices, (self.epoch, self._step)))
        if type(td.collator) is Collator and hasattr(split, "column_names"):  # the columns of one Arrow ``take`` as they are
            columns = remask(split[indices])
            ids = list(columns["idx"]) if "idx" in columns else None
            return Batch(name=name, data=td.collator(columns), size=len(indices), num_tokens=num_tokens, idx=ids, duplicate=duplicate)
        examples = remask(fetch_rows(split, indices))
        ids = [row.get("idx") for row in examples] if examples and "idx" in examples[0] else None
        return Batch(name=name, data=td.collator(examples), size=len(indices), num_tokens=num_tokens, idx=ids, duplicate=duplicate)

    # ---- state ----------------------------------------------------------------------------------
    def _fingerprint(self) -> dict[str, Any]:
        """What cuts the batches besides the seed: each task's rows, tokens and batching settings."""
        return {
            "rows": {t: int(len(self.lengths[t])) for t in self.tasks},
            "tokens": {t: int(self.lengths[t].sum()) for t in self.tasks},
            "batching": {t: [b.batch_size, b.token_budget, b.group_by_length, b.shuffle, b.drop_last, b.max_rows, b.packed,
                             None if b.pad_to_multiple_of is None else int(b.pad_to_multiple_of)] for t, b in self.batching.items()},
        }

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch", "step", "seed", "tasks", "mode", "stop", "world_size", "rows", "tokens", "batching",
        "sampler"}`` (JSON-ready); ``rows`` (training rows per task) must match on resume."""
        self.sampler.step = self._step
        return {
            "epoch": self.epoch,
            "step": self._step,
            "seed": self.seed,
            "tasks": list(self.tasks),
            "mode": self.mode,
            "stop": self.stop,
            "world_size": self.world_size,
            **self._fingerprint(),
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue exactly where the sampler that wrote ``state`` stopped (same tasks and rows needed).

        A task whose number of rows changed is refused (the saved position means nothing in other
        data); changed mode, stop rule, world size, lengths, batching or task sampler only warn."""
        tasks = list(state.get("tasks", []))
        if tasks != self.tasks:
            raise ConfigError(f"sampler state is for tasks {tasks}, but this run trains {self.tasks}; resume with the same tasks")
        mine = self._fingerprint()
        for task, old_rows in (state.get("rows") or {}).items():
            if task in mine["rows"] and int(old_rows) != mine["rows"][task]:
                raise ConfigError(f"cannot resume: task {task!r} had {int(old_rows)} training rows when the sampler state was saved "
                                  f"and has {mine['rows'][task]} now; resume with the same training data, or start a new run")
        current = {"mode": self.mode, "stop": self.stop, "world_size": self.world_size, "tokens": mine["tokens"],
                   "batching": mine["batching"], "sampler": self.sampler.name}
        saved = {**state, "sampler": (state.get("sampler") or {}).get("name", self.sampler.name)}
        changed = [k for k in current if k in saved and saved[k] is not None and saved[k] != current[k]]
        if changed:
            words = {"tokens": "other token counts (lengths)", "batching": "other batching settings"}
            old = ", ".join(words.get(k, f"{k}={saved[k]!r}") for k in changed)
            warnings.warn(f"resuming a sampler saved with {old}: the rest of this epoch will not match the original order", stacklevel=2)
        self.seed = int(state.get("seed", self.seed))
        self._plans_cache, self._steps_cache = None, {}
        if "sampler" in state:
            self.sampler.load_state_dict(self._sized_by_examples(dict(state["sampler"])))
        self.sampler.seed = self.seed
        self.epoch = _positive_int("epoch", state["epoch"], minimum=0)
        self._step = _positive_int("step", state["step"], minimum=0)
        self.sampler.epoch, self.sampler.step = self.epoch, self._step

    def _sized_by_examples(self, saved: dict[str, Any]) -> dict[str, Any]:
        """A task sampler's state saved when extractive QA was sized by its windows (an earlier mtcore): its questions now."""
        sizes, rows = dict(saved.get("sizes") or {}), {t: len(self.lengths[t]) for t in self.tasks}
        moved = [t for t, n in sizes.items() if t in rows and int(n) == rows[t] != self.sampler.sizes[t]]
        if moved:
            warnings.warn(f"resuming a sampler saved when {', '.join(moved)} counted its windows, not its questions: the task mix "
                          "of the steps left is the one a new run has", stacklevel=3)
        return {**saved, "sizes": {**sizes, **{t: self.sampler.sizes[t] for t in moved}}}

    def __repr__(self) -> str:
        return (f"MultitaskBatchSampler({len(self.tasks)} tasks, split={self.split!r}, mode={self.mode!r}, stop={self.stop!r}, "
                f"sampler={self.sampler!r}, epoch={self.epoch}, step={self._step}, rank={self.rank}/{self.world_size})")
