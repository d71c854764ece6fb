"""mtcore's task samplers (registered in :mod:`mtcore.builtin_plugin`).

With ``n_i`` the number of training examples of task ``i``:

=================  ============================================================  ==================
name               probability of task ``i`` at each step                        options
=================  ============================================================  ==================
``proportional``   ``p_i = n_i / sum(n)``                                        —
``temperature``    ``p_i ~ min(n_i, cap) ** (1 / T)`` (T5 mixing; T=1 is           ``temperature``
                   proportional, large T tends to uniform)                        (2.0), ``cap``
``uniform``        ``p_i = 1 / number of tasks``                                  —
``round_robin``    tasks in turn, in the given order (deterministic)              —
``annealed``       ``p_i ~ n_i ** alpha``, ``alpha = 1 - decay * epoch / (E-1)``    ``num_epochs`` (E,
                   (BERT and PALs; alpha = 1 when E == 1; the epoch is clamped    1), ``decay`` (0.8)
                   to E-1)
``fixed``          ``p_i ~ weights[i]`` (every task named; weight 0 never trains) ``weights``
=================  ============================================================  ==================

See :class:`mtcore.sampling.base.Sampler` for the shared behaviour (determinism, state).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from mtcore.errors import ConfigError
from mtcore.sampling.base import Sampler, match_task_names
from mtcore.sampling.batching import rng_for


def _number(sampler: Sampler, key: str, *, positive: bool = True, integer: bool = False) -> float:
    value = sampler.options[key]
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = value > 0 if positive else value >= 0
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"sampler {sampler.name!r}: option {key!r} must be {kind} {bound}, got {value!r}")
    return float(value)


def _sizes(sampler: Sampler) -> np.ndarray:
    return np.asarray([sampler.sizes[t] for t in sampler.tasks], dtype=np.float64)


class ProportionalSampler(Sampler):
    """``p_i = n_i / sum(n)``: with the same rows per batch for every task, every example is equally
    likely to be drawn (per-task batch sizes or token budgets change the rows a step takes)."""

    name: ClassVar[str] = "proportional"

    def probabilities(self, epoch: int) -> np.ndarray:
        return _sizes(self)


class TemperatureSampler(Sampler):
    """``p_i ~ min(n_i, cap) ** (1 / temperature)`` (jiant, T5); ``cap=None`` means no cap."""

    name: ClassVar[str] = "temperature"
    defaults: ClassVar[Mapping[str, Any]] = {"temperature": 2.0, "cap": None}

    def check_options(self) -> None:
        _number(self, "temperature")
        if self.options["cap"] is not None:
            _number(self, "cap", integer=True)

    def probabilities(self, epoch: int) -> np.ndarray:
        sizes = _sizes(self)
        if self.options["cap"] is not None:
            sizes = np.minimum(sizes, float(self.options["cap"]))
        exponent = 1.0 / float(self.options["temperature"])
        with np.errstate(over="ignore"):
            weights = sizes ** exponent
        if not np.all(np.isfinite(weights)):  # a low temperature overflows: the same ratios, relative to the largest task
            weights = (sizes / sizes.max()) ** exponent
        return weights


class UniformSampler(Sampler):
    """``p_i = 1 / number of tasks``: small tasks are seen as often as large ones."""

    name: ClassVar[str] = "uniform"

    def probabilities(self, epoch: int) -> np.ndarray:
        return np.ones(len(self.tasks))


class RoundRobinSampler(Sampler):
    """Tasks in turn, in the order given (tasks with no examples are skipped); no randomness."""

    name: ClassVar[str] = "round_robin"

    def probabilities(self, epoch: int) -> np.ndarray:
        """The long-run share of each task (equal among tasks that have examples)."""
        return np.ones(len(self.tasks))

    def choose(self, start: int, stop: int) -> np.ndarray:
        active = np.asarray([i for i, t in enumerate(self.tasks) if self.sizes[t] > 0], dtype=np.int64)
        if stop <= start:
            return np.zeros(0, dtype=np.int64)
        return active[np.arange(start, stop) % len(active)]


class AnnealedSampler(Sampler):
    """``p_i ~ n_i ** alpha`` with ``alpha = 1 - decay * epoch / (num_epochs - 1)`` (BERT and PALs).

    Starts proportional (alpha 1) and ends at alpha ``1 - decay`` (0.2 by default) in the last
    epoch, moving towards uniform. With one epoch alpha stays 1; epochs past the last are
    clamped to it. ``MultitaskBatchSampler`` passes its own ``num_epochs`` unless the options set it.
    """

    name: ClassVar[str] = "annealed"
    defaults: ClassVar[Mapping[str, Any]] = {"num_epochs": 1, "decay": 0.8}

    def check_options(self) -> None:
        _number(self, "num_epochs", integer=True)
        decay = _number(self, "decay", positive=False)
        if decay > 1:
            raise ConfigError(f"sampler 'annealed': option 'decay' must be between 0 and 1, got {decay!r}")

    def alpha(self, epoch: int) -> float:
        """The exponent used in ``epoch``."""
        total = int(self.options["num_epochs"])
        if total <= 1:
            return 1.0
        return 1.0 - float(self.options["decay"]) * min(max(epoch, 0), total - 1) / (total - 1)

    def probabilities(self, epoch: int) -> np.ndarray:
        return _sizes(self) ** self.alpha(epoch)


class FixedWeightsSampler(Sampler):
    """``p_i ~ weights[i]``; ``weights`` must name every task (bare names work when unambiguous)."""

    name: ClassVar[str] = "fixed"
    defaults: ClassVar[Mapping[str, Any]] = {"weights": None}

    def check_options(self) -> None:
        weights = self.options["weights"]
        if not isinstance(weights, Mapping) or not weights:
            raise ConfigError(f"sampler 'fixed' needs option 'weights': a mapping naming every task ({', '.join(self.tasks)}) to a weight")
        matched = match_task_names(weights, self.tasks, "sampler 'fixed' weights", require_all=True)
        for task, value in matched.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) or value < 0:
                raise ConfigError(f"sampler 'fixed': weight of task {task!r} must be a number >= 0, got {value!r}")
        if not any(matched[t] > 0 and self.sizes[t] > 0 for t in self.tasks):
            raise ConfigError("sampler 'fixed': every task with examples has weight 0; give at least one a positive weight")
        self.weights = np.asarray([float(matched[t]) for t in self.tasks])

    def probabilities(self, epoch: int) -> np.ndarray:
        return self.weights


ONCE_STREAM = 3  # rng stream of EachBatchOnceSampler's task order


class EachBatchOnceSampler(Sampler):
    """Every task's batches exactly once per epoch (an epoch is the sum of the tasks' batches).

    The task order is a seeded permutation of ``(seed, epoch)``; ``shuffle=False`` gives task after
    task, in the given order. :class:`MultitaskBatchSampler` binds :attr:`batch_counts` (epoch ->
    draws each task needs); unbound, the counts are the task sizes. Steps past the epoch repeat its order.
    """

    name: ClassVar[str] = "each_batch_once"
    defaults: ClassVar[Mapping[str, Any]] = {"shuffle": True}
    batch_counts: Callable[[int], Sequence[int]] | None = None

    def probabilities(self, epoch: int) -> np.ndarray:
        return np.asarray(self._counts(epoch), dtype=np.float64)

    def _counts(self, epoch: int) -> list[int]:
        return [int(n) for n in (self.batch_counts(epoch) if self.batch_counts else [self.sizes[t] for t in self.tasks])]

    def choose(self, start: int, stop: int) -> np.ndarray:
        counts = self._counts(self.epoch)
        key = (self.seed, self.epoch, tuple(counts), bool(self.options["shuffle"]))
        cached = getattr(self, "_order", None)
        if cached is None or cached[0] != key:
            order = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
            if self.options["shuffle"]:
                order = rng_for(self.seed, self.epoch, ONCE_STREAM).permutation(order)
            cached = self._order = (key, order)
        return np.resize(cached[1], max(stop, 0))[start:stop] if stop > start else np.zeros(0, dtype=np.int64)
