"""Row functions that turn raw Russian SuperGLUE rows into mtcore's canonical columns.

Each function takes one raw row (a dict) and returns the row with the canonical columns added
(``text``, ``text_pair``, ``choices``); every raw field, ``label`` and ``idx`` included, is kept.
They are pure Python (no torch, no datasets) and deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The Russian connective that joins a PARus premise to its candidate causes or effects.
PARUS_CONNECTIVES = {"cause": "потому что", "effect": "поэтому"}


def _field(row: Mapping[str, Any], name: str) -> Any:
    """``row[name]``; a KeyError naming the field when the row lacks it or holds null there.

    mtcore hands a step a field that other rows of the file have and this one lacks as None, so
    None is refused too: ``str(None)`` would silently become the text 'None' (a PARus choice).
    """
    value = row.get(name)
    if value is None:
        has = ", ".join(sorted(str(k) for k, v in row.items() if v is not None)) or "no fields"
        raise KeyError(f"missing field {name!r} (row has: {has})") from None
    return value


def preprocess_danetqa(row: Mapping[str, Any]) -> dict[str, Any]:
    """DaNetQA: ``text`` = the yes/no question, ``text_pair`` = the passage.

    The question goes first so that truncation (longest first) shortens the passage, never the
    question. The seed-port example uses it as ``Preprocessor([preprocess_danetqa])``.
    """
    return {**row, "text": str(_field(row, "question")), "text_pair": str(_field(row, "passage"))}


def parus_context(premise: str, question: str) -> str:
    """The PARus context: the premise (final punctuation dropped) followed by the connective.

    ``"Мальчик упал." + "cause"`` -> ``"Мальчик упал, потому что"``; each choice then completes
    the sentence as the second segment.
    """
    try:
        connective = PARUS_CONNECTIVES[question]
    except KeyError:
        raise ValueError(f"PARus question must be 'cause' or 'effect', got {question!r}") from None
    return f"{premise.strip().rstrip('.!?…').rstrip()}, {connective}"


def preprocess_parus(row: Mapping[str, Any]) -> dict[str, Any]:
    """PARus as multiple choice: ``text`` = premise + connective, ``choices`` = [choice1, choice2]."""
    premise = str(_field(row, "premise"))
    question = str(_field(row, "question"))
    return {
        **row,
        "text": parus_context(premise, question),
        "choices": [str(_field(row, "choice1")), str(_field(row, "choice2"))],
    }
