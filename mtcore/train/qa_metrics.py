"""Extractive QA metrics: SQuAD's exact match and token F1, as its official evaluation scripts compute them
(v1.1's; v2.0's for a task with ``no_answer``).

``predictions`` are answer strings, one per question; ``references`` the lists of gold answer
strings. Both are normalised the SQuAD way (lower case, ASCII punctuation and the English articles
a/an/the removed, whitespace collapsed) and each prediction is scored against its best-matching
gold answer. Scores are fractions (0..1), like every other mtcore metric; the SQuAD script prints
them times 100. SberQuAD is scored with the same script. In a task with ``no_answer`` (SQuAD 2.0) a
question without an answer has the gold answer ``""``, gold answers that normalise to nothing are
dropped, and an empty prediction or gold scores 1 only when both are empty, as in SQuAD 2.0's script.
``squad_best_f1`` / ``squad_best_em`` / ``squad_best_f1_threshold`` are its best_f1, best_exact and
best_f1_thresh: the scores at the ``null_threshold`` that is best on these questions, and that
threshold (a difference of logits, to set as the task's ``null_threshold``).
:func:`answer_em` and :func:`answer_f1` score with another normalisation (Russian SuperGLUE's RuCoS
script keeps the articles: :func:`normalize_answer_keeping_articles`).
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
    return " ".join(_ARTICLES.sub(" ", _without_punctuation(text)).split())


def normalize_answer_keeping_articles(text: str) -> str:
    """Lower case, no ASCII punctuation (``string.punctuation``: «», — and other non-ASCII marks stay),
    single spaces: SQuAD's normalisation without removing a/an/the, as Russian SuperGLUE's RuCoS script has it."""
    return " ".join(_without_punctuation(text).split())


def _without_punctuation(text: str) -> str:
    return "".join(ch for ch in str(text).lower() if ch not in _PUNCTUATION)


def _f1(prediction: str, truth: str, v2: bool = False, normalize: Any = normalize_answer) -> float:
    predicted, gold = normalize(prediction).split(), normalize(truth).split()
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


def answer_em(predictions: Sequence[str], references: Sequence[Sequence[str]], normalize: Any = normalize_answer) -> float:
    """:func:`squad_em` (v1.1) with answers normalised by ``normalize`` (a function of one string)."""
    return _best(lambda p, t: float(normalize(p) == normalize(t)), predictions, references)


def answer_f1(predictions: Sequence[str], references: Sequence[Sequence[str]], normalize: Any = normalize_answer) -> float:
    """:func:`squad_f1` (v1.1) with answers normalised by ``normalize`` (a function of one string)."""
    return _best(lambda p, t: _f1(p, t, normalize=normalize), predictions, references)


def _answerable(references: Sequence[Sequence[str]]) -> list[bool]:
    """A question has an answer when it has a gold text (SQuAD 2.0's ``bool(qa['answers'])``): an answer such as "The"
    or "!", which normalises to nothing, still makes it answerable."""
    return [any(isinstance(t, str) and t != "" for t in gold) for gold in references]


def squad_f1_has_answer(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None) -> float:
    """:func:`squad_f1` over the questions with an answer (SQuAD 2.0's HasAns_f1); NaN when there are none."""
    kept = [(p, r) for p, r, has in zip(predictions, references, _answerable(references)) if has and len(r)]
    return squad_f1([p for p, _ in kept], [r for _, r in kept], task) if kept else float("nan")


def squad_f1_no_answer(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None) -> float:
    """Share of the questions without an answer that are predicted unanswered (SQuAD 2.0's NoAns_f1); NaN when there are none."""
    kept = [p for p, r, has in zip(predictions, references, _answerable(references)) if not has and len(r)]
    return sum(1 for p in kept if not normalize_answer(p)) / len(kept) if kept else float("nan")


def best_threshold(score: Any, references: Sequence[Sequence[str]], null_answers: Sequence[tuple[str, float]]) -> tuple[float, float]:
    """``(mean score, threshold)`` at the ``null_threshold`` that scores best: a question is answered
    ``""`` when its null score diff is above the threshold, else with its best span (SQuAD 2.0's
    ``find_best_thresh``, computed exactly from the spans rather than from thresholded predictions).
    The threshold given lies halfway between the diff where the best score is reached and the next larger
    one (the last diff plus 1 when none is larger; the lowest minus 1 when answering ``""`` everywhere is
    best), so that a threshold rounded for display still makes the same decisions."""
    items = []
    for (span, diff), gold in zip(null_answers, references):
        if len(gold):
            gold = [t for t in gold if normalize_answer(t)] or [""]
            items.append((float(diff), max(score(span, t) for t in gold) - max(score("", t) for t in gold),
                          max(score("", t) for t in gold)))
    if not items:
        return float("nan"), float("nan")
    items.sort(key=lambda item: item[0])
    total = sum(empty for _, _, empty in items)  # every question answered ""
    best, threshold = total, items[0][0] - 1.0
    for i, (diff, gain, _) in enumerate(items):
        total += gain
        last = i + 1 == len(items)
        if (last or items[i + 1][0] != diff) and total > best:  # equal diffs switch together
            best, threshold = total, diff + 1.0 if last else (diff + items[i + 1][0]) / 2
    return best / len(items), threshold


def _f1_v2(prediction: str, truth: str) -> float:
    return _f1(prediction, truth, v2=True)


def _em(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_best_f1(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None,
                  null_answers: Sequence[tuple[str, float]] | None = None) -> float:
    """:func:`squad_f1` at the best ``null_threshold`` (SQuAD 2.0's best_f1); NaN for a task without ``no_answer``."""
    return best_threshold(_f1_v2, references, null_answers)[0] if null_answers is not None else float("nan")


def squad_best_em(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None,
                  null_answers: Sequence[tuple[str, float]] | None = None) -> float:
    """:func:`squad_em` at the best ``null_threshold`` for exact match (SQuAD 2.0's best_exact); NaN without ``no_answer``."""
    return best_threshold(_em, references, null_answers)[0] if null_answers is not None else float("nan")


def squad_best_f1_threshold(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None,
                            null_answers: Sequence[tuple[str, float]] | None = None) -> float:
    """The ``null_threshold`` at which :func:`squad_best_f1` is reached (SQuAD 2.0's best_f1_thresh, in
    logits: set it as the task's ``null_threshold``); NaN without ``no_answer``."""
    return best_threshold(_f1_v2, references, null_answers)[1] if null_answers is not None else float("nan")
