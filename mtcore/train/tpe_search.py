"""``mt train --grid ... --trials N --search tpe``: choosing the combinations of a grid one after another with Optuna's
TPE sampler (Bergstra et al. 2011), each from the scores of those trained before, instead of drawing them all at once.

Each run's score is its best aggregate (its final one without evaluations in between; a failed run tells TPE it
failed). The first 5 runs are drawn at random, as TPE needs scores to model (5 for every N: a search of N runs begins
a longer one's). A numeric axis is modelled in the values' numeric order. The choices are a function of the seed and of the scores before them, so ``--resume`` finds the same
combinations again: the runs already trained give their recorded scores, and the search goes on from there. TPE may
propose a combination it has tried; it is told that run's score again and asked once more, so N trials are N runs
(fewer only when the grid has fewer combinations). Needs ``optuna`` (``pip install 'mtcore[search]'``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError

#: The searches ``--search`` takes: ``random`` (draws all N at once, :func:`mtcore.train.grid.combinations`) and ``tpe``.
SEARCHES = ("random", "tpe")
#: How many proposals of combinations already tried TPE may make in a row before an untried one is chosen at random.
_REPEATS = 20
#: Runs drawn at random before TPE models the scores (the same for every N, so a larger N on --resume extends a search).
STARTUP = 5


def check_search(search: str, trials: int | None, world: int = 1) -> None:
    """``--search`` is known, ``tpe`` has ``--trials`` and runs in one process (its choices follow the scores)."""
    from mtcore.errors import did_you_mean

    if search not in SEARCHES:
        raise ConfigError(f"--search {search!r} is not a search{did_you_mean(str(search), SEARCHES, n=1)}; use random or tpe")
    if search == "tpe" and trials is None:
        raise ConfigError("--search tpe chooses --trials N combinations one after another; add --trials N")
    if search == "tpe" and world > 1:
        raise ConfigError("--search tpe runs in one process (each choice follows the scores before it); run the search without "
                          "a launcher, or use --search random, whose runs may each use several processes")


def check_tpe_scores(config: Any, overrides: Sequence[str]) -> None:
    """--search tpe chooses from the runs' scores: a config that never evaluates would leave it choosing at random."""
    from mtcore.train.config_io import load_config

    evaluation = load_config(config, list(overrides)).evaluation
    if evaluation.every is None and not evaluation.at_end:
        raise ConfigError("--search tpe chooses each run from the scores of the runs before, and the config never evaluates "
                          "(evaluation.every null, evaluation.at_end false); set evaluation.at_end=true, or use --search random")


def refuse_another_search(base: Path, search: str) -> None:
    """``--resume`` of a grid folder searched otherwise (``grid.json``'s ``search``): its runs were chosen another way."""
    import json

    try:
        listed = json.loads((base / "grid.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    recorded = listed.get("search", "random" if listed.get("trials") else None) if isinstance(listed, dict) else None
    if recorded is not None and recorded != search:
        raise ConfigError(f"--resume: the runs in {base} were chosen with --search {recorded}; resume with --search {recorded}, or "
                          "choose another --output-dir")


class TpeSearch:
    """Iterate over the combinations to train (lists of ``key=value``); :meth:`tell` each one's score before the next."""

    def __init__(self, grid: Sequence[tuple[str, Sequence[str]]], trials: int, seed: int) -> None:
        try:
            import optuna
        except ImportError:
            raise ConfigError("--search tpe needs optuna: pip install 'mtcore[search]' (or use --search random)") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.grid = [(key, list(values)) for key, values in grid]
        self.trials = trials
        self.total = math.prod(len(values) for _, values in self.grid)
        # the first runs are drawn at random (TPE needs scores to model): 5 whatever N is, so that the choices of a search of N
        # runs begin those of a longer one (Optuna's default 10 would leave a sweep of 10 runs a random search)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP)
        self.seed = seed
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.distributions = {key: _distribution(optuna, values) for key, values in self.grid}
        self.scores: dict[tuple[str, ...], float | None] = {}
        self._trial: Any = None

    def __iter__(self) -> Iterator[list[str]]:
        import random

        repeats = 0
        while len(self.scores) < min(self.trials, self.total):
            if repeats >= _REPEATS:  # TPE keeps to what it tried: an untried combination, drawn from the seed and the history
                untried = [combo for combo in self._every() if tuple(combo) not in self.scores]
                pick = random.Random(f"mt-tpe:{self.seed}:{len(self.scores)}").choice(untried)
                self.study.enqueue_trial(self._params_of(pick))
                repeats = 0
            self._trial = self.study.ask(self.distributions)
            combo = self._combo_of(self._trial)
            if tuple(combo) in self.scores:  # tried: the same score again, and TPE proposes another
                self.tell(self.scores[tuple(combo)])
                repeats += 1
                continue
            repeats = 0
            yield combo

    def _every(self) -> Iterator[list[str]]:
        import itertools

        keys = [key for key, _ in self.grid]
        for values in itertools.product(*(values for _, values in self.grid)):
            yield [f"{key}={value}" for key, value in zip(keys, values)]

    def _params_of(self, combo: list[str]) -> dict[str, Any]:
        params = {}
        for (key, values), override in zip(self.grid, combo):
            value = override.partition("=")[2]
            params[key] = _by_value(values).index(value) if _ordered(values) else value
        return params

    def _combo_of(self, trial: Any) -> list[str]:
        """The overrides a trial's parameters stand for (a numeric axis is chosen by its values' positions)."""
        return [f"{key}={_by_value(values)[trial.params[key]] if _ordered(values) else trial.params[key]}" for key, values in self.grid]

    def tell(self, score: float | None) -> None:
        """The score of the combination the iteration gave last (None or NaN: its run failed)."""
        if self._trial is None:
            return
        key = tuple(self._combo_of(self._trial))
        self.scores.setdefault(key, score)
        if score is None or not math.isfinite(score):
            self.study.tell(self._trial, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(self._trial, float(score))
        self._trial = None


def _ordered(values: Sequence[str]) -> bool:
    """Whether an axis's values are all numbers (learning rates, ratios): TPE then models their order, by position (a
    grid's rates are usually spaced evenly in log scale); other values (names, lists) are categories without one."""
    try:
        return len(values) > 1 and all(str(v).strip().lower() not in ("nan", "inf", "-inf", "true", "false") and float(v) == float(v)
                                       for v in values)
    except ValueError:
        return False


def _by_value(values: Sequence[str]) -> list[str]:
    """A numeric axis's values in numeric order (the order TPE models, whatever the order given)."""
    return sorted(values, key=float)


def _distribution(optuna: Any, values: Sequence[str]) -> Any:
    if _ordered(values):
        return optuna.distributions.IntDistribution(0, len(values) - 1)
    return optuna.distributions.CategoricalDistribution(list(values))


def run_score(entry: dict[str, Any]) -> float | None:
    """What TPE maximises for a run of the grid: its best aggregate, else its final one (None: no score, a failed run)."""
    for part in ("best", "final"):
        value = entry.get(part)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    return None
