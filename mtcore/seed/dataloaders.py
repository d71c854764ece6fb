"""``MultitaskBatchSampler`` and ``MetabatchSampler`` (was ``src.dataloaders``), with the seed's epochs.

``MultitaskBatchSampler(tasks.data, "train", batch_size=12)`` yields batches with ``.name`` (the
task) and ``.data`` (collated tensors; ``batch.data.to(device)`` moves them in place). As in the
seed, an epoch holds every task's batches exactly once, in a random task order, so ``len()`` is
the sum of the tasks' batches, the same every epoch (``num_epochs * len(train_sampler)`` is the
run's length). On another split with ``shuffle=False`` the tasks come one after the other, their
rows in dataset order. The seed's keywords work: ``datasets`` (= ``data``), ``part`` (= ``split``),
``parts`` (one split for every task), ``shuffle_data`` (= ``shuffle``), ``shuffle_task_data`` ({task: bool}).

Any of mtcore's options (:mod:`mtcore.sampling.batch_sampler`) can be added; ``sampler=`` (e.g.
``"temperature"``) replaces the seed's once-per-epoch order by mtcore's sampling.

``MetabatchSampler(tasks.data, "train", batch_size=12, stop_strategy="longest")`` yields, as the
seed did, ``{task name: collated batch}`` with one batch of every task per step; ``stop_strategy``
is ``"longest"`` (smaller tasks restart), ``"shortest"`` or a task name (that task's batches).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from mtcore.errors import ConfigError
from mtcore.sampling.base import match_task_names
from mtcore.sampling.samplers import EachBatchOnceSampler
from mtcore.sampling.batch_sampler import MultitaskBatchSampler as _CoreSampler

__all__ = ["EachBatchOnceSampler", "MetabatchSampler", "MultitaskBatchSampler"]


def _one_split(split: Any, part: Any, parts: Mapping[str, str] | None, owner: str = "MultitaskBatchSampler") -> str:
    if part is not None:
        if split is not None and split != part:
            raise ConfigError(f"{owner} got split={split!r} and part={part!r}; pass one of them")
        split = part
    if parts:
        chosen = set(parts.values()) | ({split} if split is not None else set())
        if len(chosen) != 1:
            raise ConfigError(f"{owner} reads one split for every task (parts names {sorted(map(str, chosen))}); "
                              "build one sampler per split, or give every task the same part")
        split = next(iter(chosen))
    if isinstance(split, int):
        raise ConfigError(f"the second argument of {owner} is the split ('train'), got {split!r}; pass batch_size={split!r}")
    return "train" if split is None else split


def _seed_options(data: Any, options: dict[str, Any], owner: str) -> tuple[Any, dict[str, Any]]:
    """``(the task data, the options)`` with the seed's spellings turned into mtcore's; the data must be ``tasks.data``."""
    if "datasets" in options:  # the seed's name for the data
        datasets = options.pop("datasets")
        if data is not None and datasets is not data:
            raise ConfigError(f"{owner} got data and datasets (its seed name); pass one: {owner}(tasks.data, 'train', batch_size=12)")
        data = datasets
    if hasattr(data, "data") and hasattr(data, "heads") and not isinstance(data, Mapping):
        raise ConfigError(f"{owner} takes tasks.data (the tokenized data), not the Tasks object: {owner}(tasks.data, 'train', batch_size=12)")
    if not isinstance(data, Mapping) or not data:
        got = "nothing" if data is None else f"an empty {type(data).__name__}" if isinstance(data, Mapping) else f"a {type(data).__name__}"
        raise ConfigError(f"{owner} needs tasks.data (task name -> task data, at least one task), got {got}: "
                          f"{owner}(tasks.data, 'train', batch_size=12)")
    if "shuffle_data" in options:
        shuffle = options.pop("shuffle_data")
        if options.get("shuffle") is not None and options["shuffle"] != shuffle:
            raise ConfigError(f"{owner} got shuffle and shuffle_data (its seed name) with different values; pass one")
        options["shuffle"] = shuffle
    if "stop_strategy" in options:
        raise ConfigError("stop_strategy is the seed's MetabatchSampler option: use mtcore.seed.dataloaders.MetabatchSampler(data, split, "
                          "stop_strategy=...), or mode='all', stop='largest' / 'smallest'")
    stop = options.get("stop")
    if isinstance(stop, str) and stop in MetabatchSampler.STRATEGIES:
        options["stop"] = MetabatchSampler.STRATEGIES[stop]
    return data, options


def _not_parts(batch_size: Any, owner: str) -> None:
    """The seed's third positional argument was ``parts`` ({task: split}); here it is ``batch_size``."""
    if isinstance(batch_size, Mapping) and batch_size and all(isinstance(value, str) for value in batch_size.values()):
        raise ConfigError(f"{owner}(data, split, batch_size, ...): the third argument is batch_size, and {dict(batch_size)!r} is the "
                          f"seed's parts (a split per task) there; write parts={dict(batch_size)!r} as a keyword")


class MultitaskBatchSampler(_CoreSampler):
    """The seed's sampler: each task's batches once per epoch, in a random task order (see the module)."""

    def __init__(self, data: Any = None, split: str | None = None, batch_size: int = 12, **options: Any) -> None:
        _not_parts(batch_size, "MultitaskBatchSampler")
        data, options = _seed_options(data, options, "MultitaskBatchSampler")
        split = _one_split(split, options.pop("part", None), options.pop("parts", None))
        shuffle_task_data = options.pop("shuffle_task_data", None)
        shuffle = options.pop("shuffle", None)
        shuffle = True if shuffle is None else shuffle
        if options.get("mode", "single") == "single" and "sampler" not in options:
            # the seed's epoch: every batch once; the task order is random on train, ordered when not shuffled elsewhere
            options["sampler"] = EachBatchOnceSampler
            options["sampler_options"] = {"shuffle": bool(shuffle) or split == "train"}
        options.setdefault("group_by_length", False)  # the seed cut batches in data order (shuffled or not)
        super().__init__(data, split, batch_size, shuffle=shuffle, **options)
        if shuffle_task_data:
            for task, flag in match_task_names(shuffle_task_data, self.tasks, "shuffle_task_data").items():
                if not isinstance(flag, bool):
                    raise ConfigError(f"shuffle_task_data[{task!r}] must be True or False, got {flag!r}")
                self.batching[task] = dataclasses.replace(self.batching[task], shuffle=flag)
            self._plans_cache, self._steps_cache = None, {}


class MetabatchSampler(_CoreSampler):
    """The seed's metabatches: ``{task: batch data}`` with one batch of every task per step."""

    STRATEGIES = {"longest": "largest", "shortest": "smallest"}

    def __init__(self, data: Any = None, split: str | None = None, batch_size: int = 12, *, stop_strategy: str = "longest",
                 **options: Any) -> None:
        _not_parts(batch_size, "MetabatchSampler")
        data, options = _seed_options(data, options, "MetabatchSampler")
        split = _one_split(split, options.pop("part", None), options.pop("parts", None), "MetabatchSampler")
        if "mode" in options or "stop" in options:
            raise ConfigError("MetabatchSampler is mode='all' with stop=stop_strategy; use mtcore.seed.MultitaskBatchSampler for other modes")
        if options.pop("shuffle_task_data", None):
            raise ConfigError("MetabatchSampler does not take shuffle_task_data; pass shuffle=True or False for every task")
        task_stop = stop_strategy not in self.STRATEGIES
        if task_stop and (not isinstance(data, Mapping) or stop_strategy not in data):
            tasks = ", ".join(data) if isinstance(data, Mapping) else "?"
            raise ConfigError(f"stop_strategy {stop_strategy!r} is not 'longest', 'shortest' or a task name ({tasks})")
        options.setdefault("group_by_length", False)
        options.setdefault("shuffle", True)
        super().__init__(data, split, batch_size, mode="all", stop="largest" if task_stop else self.STRATEGIES[stop_strategy], **options)
        if task_stop:
            self.stop = self.batches_in_epoch()[stop_strategy]
            self._steps_cache = {}

    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        for batches in super().__iter__():
            yield {batch.name: batch.data for batch in batches}


#: The name the seed's sum-losses notebook imports.
MultitaskMetabatchSampler = MetabatchSampler
