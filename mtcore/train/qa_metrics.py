"""Extractive QA metrics: SQuAD's exact match and token F1, as its official evaluation scripts compute them
(v1.1's; v2.0's for a task with ``no_answer``).

``predictions`` are answer strings, one per question; ``references`` the lists of gold answer
strings. Both are normalised the SQuAD way (lower case, ASCII punctuation and the English articles
a/an/the removed, whitespace collapsed) and each prediction is scored against its best-matching
gold answer. Scores are fractions (0..1), like every other mtcore metric; the SQuAD script prints
them times 100. SberQuAD is scored with the same script. In a task with ``no_answer`` (SQuAD 2.0) a
question without an answer has the gold answer ``""``, gold answers that normalise to nothing are
dropped, and an empty prediction or gold scores 1 only when both are empty, as in SQuAD 2.0's script.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence
from typing import Any

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _f1(prediction: str, truth: str, v2: bool = False) -> float:
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if v2 and (not predicted or not gold):  # SQuAD 2.0: "no answer" ("") is right only when there is none
        return float(predicted == gold)
    common = collections.Counter(predicted) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _best(score: Any, predictions: Sequence[str], references: Sequence[Sequence[str]], v2: bool = False) -> float:
    pairs = [(p, list(r)) for p, r in zip(predictions, references) if len(r)]
    if v2:  # SQuAD 2.0's script: gold answers that normalise to nothing are dropped; none left means "no answer"
        pairs = [(p, [t for t in gold if normalize_answer(t)] or [""]) for p, gold in pairs]
    if not pairs:
        return 0.0
    return sum(max(score(p, truth) for truth in gold) for p, gold in pairs) / len(pairs)


def _v2(task: Any) -> bool:
    return bool(getattr(task, "no_answer", False))


def squad_em(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None) -> float:
    """Share of questions whose answer equals a gold answer after normalisation."""
    return _best(lambda p, t: float(normalize_answer(p) == normalize_answer(t)), predictions, references, _v2(task))


def squad_f1(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None) -> float:
    """Mean over questions of the best token-overlap F1 against the gold answers."""
    return _best(lambda p, t: _f1(p, t, _v2(task)), predictions, references, _v2(task))


def _answerable(references: Sequence[Sequence[str]]) -> list[bool]:
    return [any(normalize_answer(t) for t in gold) for gold in references]


def squad_f1_has_answer(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None) -> float:
    """:func:`squad_f1` over the questions with an answer (SQuAD 2.0's HasAns_f1); NaN when there are none."""
    kept = [(p, r) for p, r, has in zip(predictions, references, _answerable(references)) if has and len(r)]
    return squad_f1([p for p, _ in kept], [r for _, r in kept], task) if kept else float("nan")


def squad_f1_no_answer(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None) -> float:
    """Share of the questions without an answer that are predicted unanswered (SQuAD 2.0's NoAns_f1); NaN when there are none."""
    kept = [p for p, r, has in zip(predictions, references, _answerable(references)) if not has and len(r)]
    return sum(1 for p in kept if not normalize_answer(p)) / len(kept) if kept else float("nan")
