"""Whether two ``--seeds`` runs differ by more than their seeds do: a permutation test of the means, for ``mt compare``.

Each value of a ``--seeds`` folder (a task's score, the aggregate) is one number per seed. Two such folders are compared
with the two-sided permutation test of the difference of their means: the p-value is the share of the ways of dealing the
pooled seeds' values into two groups of the same sizes whose means differ at least as much as the real groups' do. It
assumes nothing about the scores' distribution; every dealing is counted (exactly) up to 200,000 of them, beyond that
100,000 random ones are (seeded: the same p-value each time). Few seeds cannot give a small p-value: 3 against 3 is at
least 0.1, 5 against 5 at least 0.008. Pure Python: imports nothing heavy.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from typing import Any

#: Up to this many ways of dealing the values, each is counted; past it, random ones are.
EXACT_LIMIT = 200_000
#: Random dealings past :data:`EXACT_LIMIT`.
DRAWS = 100_000


def permutation_p(first: Sequence[float], second: Sequence[float]) -> float:
    """The two-sided permutation p-value of ``mean(first) - mean(second)`` (each group at least 2 values)."""
    if len(first) < 2 or len(second) < 2:
        raise ValueError("a permutation test needs at least two values in each group")
    pooled = [float(v) for v in (*first, *second)]
    n, k, total = len(pooled), len(first), sum(pooled)
    observed = abs(_difference(sum(first), k, total, n))
    tolerance = 1e-9 * max(1.0, max(abs(v) for v in pooled))  # the same split added up in another order is as far apart

    def as_far(group_sum: float) -> bool:
        return abs(_difference(group_sum, k, total, n)) >= observed - tolerance

    if math.comb(n, k) <= EXACT_LIMIT:
        hits = sum(as_far(sum(pooled[i] for i in chosen)) for chosen in itertools.combinations(range(n), k))
        return hits / math.comb(n, k)
    rng = random.Random(0)
    hits = sum(as_far(sum(rng.sample(pooled, k))) for _ in range(DRAWS))
    return (hits + 1) / (DRAWS + 1)  # the real dealing counts as one of them


def _difference(group_sum: float, k: int, total: float, n: int) -> float:
    return group_sum / k - (total - group_sum) / (n - k)


def add_seed_tests(rows: list[dict[str, Any]], aggregates_alike: bool) -> None:
    """Give every ``--seeds`` row after the first one with two seeds or more ``p_values`` against that one (its
    ``baseline``): per column (``aggregate``, each task) both have at least two seeds' values of, in one metric."""
    spread = [row for row in rows if row["kind"] != "run"]
    base = next((row for row in spread if max((len(v) for v in row["seed_values"].values()), default=0) >= 2), None)
    if base is None:
        return
    for row in spread:
        if row is base:
            continue
        tested = {}
        for column, values in row["seed_values"].items():
            theirs = base["seed_values"].get(column) or []
            same_metric = column == "aggregate" or row["metrics"].get(column) == base["metrics"].get(column)
            if len(values) >= 2 and len(theirs) >= 2 and same_metric and (column != "aggregate" or aggregates_alike):
                tested[column] = permutation_p(values, theirs)
        if tested:
            row["p_values"], row["baseline"] = tested, base["run"]


def print_seed_tests(rows: list[dict[str, Any]], names: list[str]) -> None:
    """A line under the table per ``--seeds`` run tested against the first: each column's p-value."""
    from rich.markup import escape

    from mtcore.cli.output import stdout

    shown = dict(zip((row["run"] for row in rows), names))
    tested = [row for row in rows if row.get("p_values")]
    if not tested:
        return
    stdout.print(escape(f"permutation test of the seed means against {shown[tested[0]['baseline']]} (two-sided p; small: the "
                        "difference is more than the seeds make):"))
    for row in tested:
        cells = ", ".join(f"{column} p={_p(value)}" for column, value in row["p_values"].items())
        stdout.print(escape(f"  {shown[row['run']]}: {cells}"))


def _p(value: float) -> str:
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"
