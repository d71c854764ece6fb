"""MuSeRC's official scores (F1a over all answers, mtcore's ``f1_binary``, and EM per question) and RuCoS's.

RuCoS is scored as Russian SuperGLUE's script (``tfidf_baseline/RuCoS.py``) does: the best F1 and
EM against the gold entity texts after lower-casing, removing ASCII punctuation and collapsing
whitespace. Unlike SQuAD's script it does not remove English articles ("The Guardian" is not
"Guardian"), hence ``rucos_f1`` / ``rucos_em`` rather than ``squad_f1`` / ``squad_em``.

A MuSeRC question has several candidate answers, each labelled right or wrong; a row is one
answer. EM is the share of questions whose every answer is labelled right, so the metric groups
rows by their ``idx`` (``{"paragraph", "question", "answer"}``), which mtcore passes to metrics
that take an ``idx`` parameter. The leaderboard reports "F1a/EM"; ``muserc_score``, their mean,
is what selects the best checkpoint (as the leaderboard's total averages the two).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mtcore.errors import DataError


def _question(value: Any) -> tuple[Any, Any]:
    if isinstance(value, dict) and "paragraph" in value and "question" in value:
        return value["paragraph"], value["question"]
    raise DataError(f"muserc_em groups answers by their idx {{paragraph, question, answer}}, got idx {value!r}; give each "
                    'row of a flat file an idx such as {"paragraph": 0, "question": 1, "answer": 2}, or read the official nested '
                    "MuSeRC file (one passage a line) through the rsg:muserc task")


def muserc_em(predictions: Any, references: Any, task: Any = None, *, idx: Sequence[Any]) -> float:
    """Share of questions whose every candidate answer is labelled right."""
    right: dict[tuple[Any, Any], bool] = defaultdict(lambda: True)
    for prediction, reference, row_id in zip(predictions, references, idx):
        key = _question(row_id)
        right[key] = right[key] and int(prediction) == int(reference)
    return sum(right.values()) / len(right) if right else float("nan")


def muserc_score(predictions: Any, references: Any, task: Any = None, *, idx: Sequence[Any]) -> float:
    """The mean of F1a (F1 of the "right answer" class over all answers) and EM."""
    from mtcore.train.metrics import f1_binary

    return (f1_binary(predictions, references, task) + muserc_em(predictions, references, task, idx=idx)) / 2


def rucos_f1(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None) -> float:
    """Mean over queries of the best token F1 against the gold entity texts (RuCoS's official normalisation)."""
    from mtcore.train.qa_metrics import answer_f1, normalize_answer_keeping_articles

    return answer_f1(predictions, references, normalize_answer_keeping_articles)


def rucos_em(predictions: Sequence[str], references: Sequence[Sequence[str]], task: Any = None) -> float:
    """Share of queries answered with a gold entity text (RuCoS's official normalisation)."""
    from mtcore.train.qa_metrics import answer_em, normalize_answer_keeping_articles

    return answer_em(predictions, references, normalize_answer_keeping_articles)
