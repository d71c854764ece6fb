"""Seeded, stratified train/validation/test splits (pure Python, reproducible across machines).

Corpora without an official split (RuTweetCorp) or without a validation set (RuSentiment, or a
task's ``holdout``: :func:`holdout_indices`) are split here: every class is shuffled with its own ``random.Random`` seeded from ``seed`` and the
class name, then cut by the proportions, so a split depends only on the seed, the proportions
and the rows of each class — not on the order of the classes or on other classes' sizes.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping, Sequence

from mtcore.errors import ConfigError


def check_proportions(proportions: Mapping[str, float]) -> dict[str, float]:
    """Validate ``{split: share}``: positive shares summing to 1 (within 1e-6)."""
    shares = {str(k): float(v) for k, v in dict(proportions).items()}
    if not shares or any(v <= 0 for v in shares.values()) or abs(sum(shares.values()) - 1.0) > 1e-6:
        raise ConfigError(f"split proportions {shares} must be positive and sum to 1, e.g. {{train: 0.8, validation: 0.1, test: 0.1}}")
    return shares


def stratified_split(labels: Sequence[Hashable], proportions: Mapping[str, float], seed: int) -> dict[str, list[int]]:
    """Row indices of each split, class shares preserved.

    Each class of ``n`` rows gives ``floor(n * share)`` rows to every split but the largest one,
    which takes the rest; each split's indices come out shuffled (seeded) so classes are mixed.
    """
    shares = check_proportions(proportions)
    largest = max(shares, key=lambda name: shares[name])
    by_class: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    result: dict[str, list[int]] = {name: [] for name in shares}
    for label in sorted(by_class, key=str):
        indices = by_class[label]
        random.Random(f"{seed}:{label}").shuffle(indices)
        start = 0
        counts = {name: int(len(indices) * share) for name, share in shares.items() if name != largest}
        counts[largest] = len(indices) - sum(counts.values())
        for name in shares:
            result[name].extend(indices[start:start + counts[name]])
            start += counts[name]
    for name, indices in result.items():
        random.Random(f"{seed}:{name}").shuffle(indices)
    return result


def describe_split(name: str, sizes: Mapping[str, int], proportions: Mapping[str, float], seed: int) -> str:
    """One line recording how a split was made, e.g. for ``Dataset.info.description`` and logs."""
    shares = "/".join(f"{k} {v:g}" for k, v in proportions.items())
    counts = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return f"{name}: seeded stratified split, seed={seed}, proportions {shares}; rows {counts}"


#: The seed of every ``holdout`` split: the held-out rows do not change with the run's seed, so runs compare.
HOLDOUT_SEED = 0


def _class_key(value: Hashable | object) -> Hashable:
    return value if isinstance(value, Hashable) else repr(value)


def holdout_indices(labels: Sequence[object], share: float, seed: int = HOLDOUT_SEED, *,
                    stratify: bool = True) -> tuple[list[int], list[int]]:
    """``(kept, held_out)`` row indices, both in row order: ``round(share * rows)`` rows held out.

    With ``stratify`` (classification: few classes) each class gives its share, the rows left over
    by rounding going to the classes with the largest remainders; without it (scores, tag
    sequences, answers: labels mostly unique) the rows are a seeded sample of all rows."""
    if not 0 < share < 1:
        raise ConfigError(f"holdout must be a share between 0 and 1 (e.g. 0.1), got {share!r}")
    groups: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(_class_key(label) if stratify else None, []).append(index)
    keys = sorted(groups, key=str)
    quotas = {key: len(groups[key]) * share for key in keys}
    counts = {key: int(quotas[key]) for key in keys}
    left = round(len(labels) * share) - sum(counts.values())
    for key in sorted(keys, key=lambda k: (-(quotas[k] - counts[k]), str(k)))[:max(left, 0)]:
        counts[key] += 1
    held: list[int] = []
    for key in keys:
        indices = list(groups[key])
        random.Random(f"{seed}:{key}").shuffle(indices)
        held.extend(indices[:counts[key]])
    chosen = set(held)
    return [i for i in range(len(labels)) if i not in chosen], sorted(held)
