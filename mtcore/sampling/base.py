"""``Sampler``: the base class of task samplers (which task trains at each step).

A sampler is built from the number of training examples of each task and a seed::

    sampler = TemperatureSampler({"rsg:danetqa": 1749, "rsg:terra": 2616, "rsg:parus": 400},
                                 seed=0, temperature=2.0)
    sampler.next_task()          # -> "rsg:terra"

Its choices are a pure function of ``(seed, epoch, step)``: :meth:`Sampler.choose` returns the
tasks of any range of steps without drawing the steps before it, so the state is tiny
(:meth:`state_dict` holds the epoch and the step) and a restored sampler continues exactly
where the old one stopped. Under DDP every rank builds the same sampler with the same seed and
therefore draws the same task at every step.

Writing a sampler (a plugin registers it with ``mt_register_samplers``):

* random samplers implement :meth:`probabilities` (one number >= 0 per task, for an epoch; anything
  else is a one-line :class:`~mtcore.errors.ConfigError` naming the sampler and what it returned); the base
  class draws from it in blocks of :attr:`BLOCK` steps, each block seeded from
  ``(seed, epoch, block)`` with ``numpy.random.Generator(PCG64)`` — never the global RNG;
* deterministic samplers override :meth:`choose` instead;
* :attr:`defaults` names every option the sampler takes (an unknown one is a one-line
  :class:`~mtcore.errors.ConfigError`) and :meth:`check_options` validates their values;
* a sampler whose choices depend on more than ``(seed, epoch, step)`` must extend
  :meth:`state_dict` / :meth:`load_state_dict` with that extra state.

A task with no examples (size 0) is never chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from mtcore.errors import ConfigError, did_you_mean
from mtcore.sampling.batching import CHOICE_STREAM, rng_for


def suggest_task(name: str, tasks: Sequence[str]) -> str:
    """``did_you_mean`` for a task name: compares with the qualified ids and with their bare names
    (``snet`` suggests ``user:sent``)."""
    found = did_you_mean(name, list(tasks))
    if found:
        return found
    bare = {}
    for task in tasks:
        bare.setdefault(task.split(":", 1)[-1], task)
    wanted = name.split(":", 1)[-1]
    names = [task for short, task in bare.items() if did_you_mean(wanted, [short])][:3]
    return " (did you mean " + " or ".join(repr(t) for t in names) + "?)" if names else ""


def match_task_names(given: Mapping[str, Any], tasks: Sequence[str], what: str, *, require_all: bool = False) -> dict[str, Any]:
    """Map the keys of ``given`` onto ``tasks``; a bare name matches a unique ``plugin:name`` id.

    Raises a one-line :class:`ConfigError` for an unknown (or ambiguous) name, with
    "did you mean", and — when ``require_all`` — for every task left out.
    """
    matched: dict[str, Any] = {}
    for key, value in given.items():
        key = str(key)
        if key in tasks:
            target = key
        else:
            candidates = [t for t in tasks if t.split(":", 1)[-1] == key]
            if len(candidates) != 1:
                if candidates:
                    raise ConfigError(f"{what}: task name {key!r} is ambiguous ({', '.join(candidates)}); use the qualified id")
                raise ConfigError(f"{what}: unknown task {key!r}{suggest_task(key, list(tasks))}; tasks: {', '.join(tasks)}")
            target = candidates[0]
        if target in matched:
            raise ConfigError(f"{what}: task {target!r} is given twice")
        matched[target] = value
    if require_all:
        missing = [t for t in tasks if t not in matched]
        if missing:
            raise ConfigError(f"{what}: no value for task {missing[0]!r}; name every task: {', '.join(tasks)}")
    return matched


class Sampler:
    """Chooses the task of each training step; deterministic from ``(seed, epoch, step)``.

    :param sizes: task name -> number of training examples (mapping order is the task order).
    :param seed: the seed shared by all ranks.
    :param options: sampler-specific options, all listed in :attr:`defaults`.
    """

    #: Registered name, used in messages: the registry sets it to the name the class is registered
    #: under when it loads the class (a plugin need not set it; see docs/hooks.md).
    name: ClassVar[str] = "sampler"
    #: Every option this sampler accepts, with its default value.
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: Steps drawn per random block (each block has its own seed).
    BLOCK: ClassVar[int] = 4096

    def __init__(self, sizes: Mapping[str, int], *, seed: int = 0, **options: Any) -> None:
        if not isinstance(sizes, Mapping) or not sizes:
            raise ConfigError(f"sampler {self.name!r} needs the number of examples of at least one task")
        checked: dict[str, int] = {}
        for task, size in sizes.items():
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
                raise ConfigError(f"sampler {self.name!r}: task {task!r} has size {size!r}; sizes are example counts (integers >= 0)")
            checked[str(task)] = int(size)
        if not any(checked.values()):
            raise ConfigError(f"sampler {self.name!r}: every task has 0 examples")
        for key in options:
            if key not in self.defaults:
                accepted = ", ".join(self.defaults) or "none"
                raise ConfigError(f"sampler {self.name!r}: unknown option {key!r}{did_you_mean(key, list(self.defaults))}; it accepts: {accepted}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"sampler {self.name!r}: seed must be an integer, got {seed!r}")
        self.sizes: dict[str, int] = checked
        self.tasks: list[str] = list(checked)
        self.seed = int(seed)
        self.options: dict[str, Any] = {**self.defaults, **options}
        self.epoch = 0
        self.step = 0
        self.check_options()

    # ---- to implement ----------------------------------------------------------------------
    def check_options(self) -> None:
        """Validate ``self.options`` (raise a one-line ``ConfigError``); called by ``__init__``."""

    def probabilities(self, epoch: int) -> np.ndarray:
        """One non-negative weight per task (in :attr:`tasks` order) for ``epoch``."""
        raise NotImplementedError(f"{type(self).__name__} must implement probabilities() or choose()")

    # ---- choosing ----------------------------------------------------------------------------
    def normalized_probabilities(self, epoch: int | None = None) -> np.ndarray:
        """:meth:`probabilities` checked and normalised; tasks with no examples get 0."""
        epoch = self.epoch if epoch is None else epoch
        weights = self._checked_weights(self.probabilities(epoch), epoch)
        weights = np.where(np.asarray([self.sizes[t] for t in self.tasks]) > 0, weights, 0.0)
        total = weights.sum()
        if total <= 0:
            raise ConfigError(f"sampler {self.name!r} gives every task weight 0")
        return weights / total

    def _checked_weights(self, returned: Any, epoch: int) -> np.ndarray:
        """What :meth:`probabilities` returned, as floats; anything else is a one-line ConfigError
        naming the sampler, what it returned and what is expected."""
        expected = f"one number >= 0 per task ({len(self.tasks)}: {', '.join(self.tasks)})"
        try:
            array = np.asarray(returned)
        except Exception:  # a ragged list or an object numpy cannot take
            array = np.asarray(None)
        if array.dtype.kind not in "biuf":
            raise ConfigError(f"sampler {self.name!r}: probabilities({epoch}) returned {_short(returned)}; it must return {expected}")
        weights = array.astype(np.float64).reshape(-1)
        if len(weights) != len(self.tasks) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ConfigError(f"sampler {self.name!r}: probabilities({epoch}) returned the invalid weights {_short(weights.tolist())}; "
                              f"it must return {expected}")
        return weights

    def choose(self, start: int, stop: int) -> np.ndarray:
        """Task indices (into :attr:`tasks`) for steps ``start..stop-1`` of the current epoch."""
        if stop <= start:
            return np.zeros(0, dtype=np.int64)
        p = self.normalized_probabilities()
        first, last = start // self.BLOCK, (stop - 1) // self.BLOCK
        drawn = np.concatenate([self._block(block, p) for block in range(first, last + 1)])
        offset = first * self.BLOCK
        return drawn[start - offset : stop - offset].astype(np.int64)

    def draws(self, start: int, stop: int) -> np.ndarray:
        """:meth:`choose`, checked (what the engine calls): ``stop - start`` task indices in ``0..len(tasks)-1``;
        anything else a plugin's ``choose`` returns is a one-line ConfigError naming the sampler and what it returned."""
        returned = self.choose(start, stop)
        expected = f"{max(stop - start, 0)} task indices (integers 0..{len(self.tasks) - 1} into tasks: {', '.join(self.tasks)})"
        try:
            array = np.asarray(returned)
        except Exception:  # noqa: BLE001 - a ragged list or an object numpy cannot take
            array = np.asarray(None)
        if array.dtype.kind not in "iu" or array.shape != (max(stop - start, 0),):
            raise ConfigError(f"sampler {self.name!r}: choose({start}, {stop}) returned {_short(returned)}; it must return {expected}")
        if array.size and (array.min() < 0 or array.max() >= len(self.tasks)):
            raise ConfigError(f"sampler {self.name!r}: choose({start}, {stop}) returned the index {int(array.max() if array.max() >= len(self.tasks) else array.min())}; "
                              f"it must return {expected}")
        return array.astype(np.int64, copy=False)

    def _block(self, block: int, p: np.ndarray) -> np.ndarray:
        key = (self.seed, self.epoch, block, p.tobytes())
        cached = getattr(self, "_cached_block", None)
        if cached is None or cached[0] != key:
            drawn = rng_for(self.seed, self.epoch, CHOICE_STREAM, block).choice(len(self.tasks), size=self.BLOCK, p=p)
            cached = self._cached_block = (key, drawn)
        return cached[1]

    def next_task(self) -> str:
        """The task of the current step; advances the step."""
        index = int(self.draws(self.step, self.step + 1)[0])
        self.step += 1
        return self.tasks[index]

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first step (annealed samplers change with the epoch)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ConfigError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)
        self.step = 0

    # ---- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A small JSON-ready state: name, tasks, their sizes, seed, epoch, step."""
        return {"name": self.name, "tasks": list(self.tasks), "sizes": dict(self.sizes), "seed": self.seed, "epoch": self.epoch,
                "step": self.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue exactly where the sampler that wrote ``state`` stopped."""
        tasks = list(state.get("tasks", self.tasks))
        if tasks != self.tasks:
            raise ConfigError(f"sampler state is for tasks {tasks}, but this sampler has {self.tasks}; resume with the same tasks")
        for task, size in (state.get("sizes") or {}).items():
            if task in self.sizes and int(size) != self.sizes[task]:
                raise ConfigError(f"sampler state is for task {task!r} with {int(size)} examples, but this sampler has "
                                  f"{self.sizes[task]}; resume with the same data, or start afresh")
        self.seed = int(state.get("seed", self.seed))
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({len(self.tasks)} tasks, seed={self.seed}{options})"


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` of what a plugin returned, cut to one short line (and typed when not a list)."""
    text = " ".join(repr(value).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text if isinstance(value, (list, tuple, np.ndarray)) else f"{text} (a {type(value).__name__})"
