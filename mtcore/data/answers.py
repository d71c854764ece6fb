"""Extractive question answering: answers as SQuAD stores them, their token spans, a prediction's best span.

A task of kind ``extractive_qa`` reads a question (``text``), a context (``text_pair``) and its
answers (``label``) in SQuAD's form, ``{"text": ["Moscow"], "answer_start": [17]}``: character
offsets into the context. Also accepted: a list of ``{"text": ..., "answer_start": ...}`` objects, or
one such object. An ``answer_start`` that does not point at its text (an off-by-one in the data) is
moved to the nearest place the text occurs; an answer that does not occur in the context is an error.

Tokenization encodes ``(question, context)``; a context longer than ``max_length`` becomes several
windows sharing ``task.stride`` tokens (one row each, ``example`` naming the question's row). Each
window keeps its context tokens' character offsets (``offsets``; ``[-1, -1]`` for question and
special tokens) with the context and the answers' texts, so evaluation and prediction turn token
spans back into text, taking each question's best-scoring window. Training targets are the first
answer's first and last tokens in the window holding it, ``[0, 0]`` (``[CLS]``: "not here") in its
other windows. An answer in no window is no target (``[-100, -100]``: left out of the loss), and
evaluation scores it as missed; a warning counts such questions (:mod:`mtcore.data.cut_answers`).
A task with ``no_answer`` (SQuAD 2.0) stores a question without answer as :data:`NO_ANSWER`: every
window points at ``[CLS]``, and it is predicted unanswered when ``[CLS]`` outscores the best span.
With ``candidates`` (ReCoRD), the answer is the best-scoring occurrence of one of them.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mtcore.errors import DataError

#: The "no target" marker of a tokenized row (no answer, or one past ``max_length``).
NO_SPAN = [-100, -100]
#: Longest answer a prediction may be, in tokens (SQuAD's reference code uses 30).
MAX_ANSWER_TOKENS = 30



def answers_feature() -> Any:
    from datasets import List, Value

    return {"text": List(Value("string")), "answer_start": List(Value("int64"))}


def no_answers() -> dict[str, list[Any]]:
    return {"text": [], "answer_start": []}


def has_answers(value: Any) -> bool:
    """Whether a stored answers value holds at least one answer (an empty one means "no label" in a test split)."""
    if isinstance(value, str):  # a CSV cell: empty, or SQuAD's form as JSON text
        if not value.strip():
            return False
        try:
            value = json.loads(value) if value.strip()[:1] in ("{", "[") else value
        except ValueError:
            return True  # malformed: normalize_answers says so
    if isinstance(value, Mapping):
        texts = value.get("text")
        return bool(texts) if isinstance(texts, (list, tuple)) else texts not in (None, "")
    if isinstance(value, (list, tuple)):
        return bool(value)
    return value is not None


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):  # a CSV cell holding SQuAD's form as JSON
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"answers {_short(value)} are not valid JSON; write SQuAD's form, e.g. "
                             '{"text": ["Moscow"], "answer_start": [17]}') from None
    if isinstance(value, Mapping):
        texts, starts = value.get("text"), value.get("answer_start")
        if texts is None or starts is None:
            raise ValueError(f"answers {_short(value)} need the keys 'text' and 'answer_start' (SQuAD's form)")
        if isinstance(texts, (list, tuple)) != isinstance(starts, (list, tuple)):
            raise ValueError(f"answers {_short(value)}: 'text' and 'answer_start' must both be lists, or both single values")
        if not isinstance(texts, (list, tuple)):
            return [(texts, starts)]
        if len(texts) != len(starts):
            raise ValueError(f"answers {_short(value)} have {len(texts)} text(s) and {len(starts)} answer_start(s)")
        return list(zip(texts, starts))
    if isinstance(value, (list, tuple)) and all(isinstance(item, Mapping) for item in value):
        return [pair for item in value for pair in _pairs(item)]
    raise ValueError(f"answers {_short(value)} are not in SQuAD's form {{'text': [...], 'answer_start': [...]}} "
                     "(in a CSV file: that object as JSON text in the cell)")


#: A question the context does not answer (a task with ``no_answer``; SQuAD 2.0's gold answer ``""``).
NO_ANSWER = {"text": [""], "answer_start": [-1]}


def is_no_answer(texts: Any) -> bool:
    """Whether the gold answer texts of a row say "no answer in the context"."""
    return list(texts or ()) == [""]


def normalize_answers(value: Any, context: str, *, no_answer: bool = False) -> dict[str, list[Any]]:
    """The answers in SQuAD's form with every ``answer_start`` pointing at its text; raises ValueError(reason).
    With ``no_answer``, no answers at all is :data:`NO_ANSWER`."""
    if no_answer and (not has_answers(value) or _pairs(value) == [("", -1)]):  # [] or mtcore's own "no answer" form
        return {key: list(items) for key, items in NO_ANSWER.items()}
    texts: list[str] = []
    starts: list[int] = []
    for text, start in _pairs(value):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"answer text {_short(text)} is not a non-empty string")
        if isinstance(start, str) and start.strip().isdigit():
            start = int(start)
        if isinstance(start, float) and math.isfinite(start) and start.is_integer():
            start = int(start)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"answer_start {_short(start)} of answer {_short(text)} is not a character offset (an integer >= 0)")
        if context[start:start + len(text)] != text:
            found = _occurrences(context, text)
            if not found:
                raise ValueError(f"answer {_short(text)} does not occur in the context; fix the answer or the context")
            start = min(found, key=lambda at: abs(at - start))
        texts.append(text)
        starts.append(start)
    if not texts:
        raise ValueError("no answer: extractive_qa rows need at least one (for questions the context does not answer, "
                         "as in SQuAD 2.0, set the task's no_answer: true)")
    return {"text": texts, "answer_start": starts}


def _occurrences(context: str, text: str) -> list[int]:
    found, at = [], context.find(text)
    while at >= 0:
        found.append(at)
        at = context.find(text, at + 1)
    return found


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_squad(document: Mapping[str, Any]) -> bool:
    """Whether a JSON document has SQuAD's layout: ``{"data": [{"title", "paragraphs": [...]}, ...]}``."""
    data = document.get("data")
    return isinstance(data, list) and bool(data) and isinstance(data[0], Mapping) and "paragraphs" in data[0]


def squad_rows(document: Mapping[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(question number, row)`` for every question of a SQuAD-layout document (SQuAD v1.1, SberQuAD):
    ``id``, ``title``, ``context``, ``question`` and ``answers`` in the hub's form (lists of ``text`` and
    ``answer_start``); the number counts questions from 1, in file order."""
    number = 0
    for article in document["data"]:
        for paragraph in article.get("paragraphs") or []:
            for qa in paragraph.get("qas") or []:
                number += 1
                answers = [{**a, "answer_start": int(a["answer_start"])} if str(a.get("answer_start", "")).strip().isdigit() else a
                           for a in qa.get("answers") or [] if isinstance(a, Mapping)]  # "37" in some files: one type
                impossible = qa.get("is_impossible")  # SQuAD 2.0: must agree with the answers
                if impossible is True and answers or impossible is False and "answers" in qa and not answers:
                    raise DataError(f"question {qa.get('id')!r}: is_impossible is {impossible} but it has "
                                    f"{len(answers)} answers; fix one of them")
                yield number, {"id": qa.get("id"), "title": article.get("title"), "context": paragraph.get("context"),
                               "question": qa.get("question"),
                               "answers": ({"text": [a.get("text") for a in answers], "answer_start": [a.get("answer_start") for a in answers]}
                                           if "answers" in qa else None)}  # no answers key (a test file): unlabelled


def context_offsets(offsets: Sequence[Sequence[int]], sequence_ids: Sequence[int | None], part: int = 1) -> list[list[int]]:
    """Each token's ``[start, end)`` characters in the context; ``[-1, -1]`` for question and special tokens."""
    return [list(span) if sid == part else [-1, -1] for span, sid in zip(offsets, sequence_ids)]


def tokenless(char: str) -> bool:
    """Characters tokenizers drop or attach to nothing: spaces, combining marks (a decomposed й loses its
    breve in an accent-stripping tokenizer), zero-width and control characters."""
    return char.isspace() or unicodedata.category(char) in ("Mn", "Me", "Cf", "Cc")


def answer_span(offsets: Sequence[Sequence[int]], char_start: int, char_end: int, context: str | None = None) -> list[int]:
    """First and last token of characters ``[char_start, char_end)`` of the context, or :data:`NO_SPAN`
    when they are not all inside the tokens kept (``offsets`` from :func:`context_offsets`). With
    ``context``, characters no token holds at the answer's edges (a leading space, a trailing
    zero-width space or combining mark) are left out first."""
    if context is not None:
        while char_start < char_end and tokenless(context[char_start]):
            char_start += 1
        while char_end > char_start and tokenless(context[char_end - 1]):
            char_end -= 1
    inside = [i for i, (start, _) in enumerate(offsets) if start >= 0]
    if not inside or offsets[inside[0]][0] > char_start or offsets[inside[-1]][1] < char_end:
        return list(NO_SPAN)
    first = next(i for i in inside if offsets[i][1] > char_start)
    last = next(i for i in reversed(inside) if offsets[i][0] < char_end)
    return [first, last] if first <= last else list(NO_SPAN)


def best_span(start_logits: Sequence[float], end_logits: Sequence[float], offsets: Sequence[Sequence[int]],
              max_answer_tokens: int = MAX_ANSWER_TOKENS) -> tuple[int, int, float]:
    """The context span ``(first, last)`` with the highest ``start + end`` logit, ``last - first < max_answer_tokens``;
    ``(-1, -1, -inf)`` when the row kept no context token."""
    import numpy as np

    scores = _span_scores(start_logits, end_logits, offsets, max_answer_tokens)
    if scores is None:
        return -1, -1, -math.inf
    best = int(np.argmax(scores))
    i, j = divmod(best, scores.shape[1])
    return i, j, float(scores[i, j])


def top_spans(start_logits: Sequence[float], end_logits: Sequence[float], offsets: Sequence[Sequence[int]],
              max_answer_tokens: int = MAX_ANSWER_TOKENS, k: int = 20) -> list[tuple[int, int, float]]:
    """The ``k`` context spans ``(first, last, score)`` that :func:`best_span` ranks highest, best first (ties: the
    earlier start, then end); fewer when the window has fewer."""
    import numpy as np

    scores = _span_scores(start_logits, end_logits, offsets, max_answer_tokens)
    if scores is None or k < 1:
        return []
    flat = scores.ravel()
    kept = min(k, int(np.isfinite(flat).sum()))
    if kept == 0:
        return []
    part = np.argpartition(-flat, kept - 1)[:kept] if kept < flat.size else np.arange(flat.size)
    n = scores.shape[1]
    return [(int(i) // n, int(i) % n, float(flat[i])) for i in sorted(part.tolist(), key=lambda i: (-flat[i], i))[:kept]]


def _span_scores(start_logits: Sequence[float], end_logits: Sequence[float], offsets: Sequence[Sequence[int]],
                 max_answer_tokens: int) -> Any:
    """``start + end`` logits of every context span ``[first, last]`` (a square matrix; ``-inf`` off the context, for
    ``last < first`` and spans of ``max_answer_tokens`` or more tokens); None when the row kept no context token."""
    import numpy as np

    start = np.asarray(start_logits, dtype=np.float64)
    end = np.asarray(end_logits, dtype=np.float64)
    n = min(len(start), len(end), len(offsets))
    context = np.array([offsets[i][0] >= 0 for i in range(n)], dtype=bool)
    if not context.any():
        return None
    start = np.where(context, start[:n], -np.inf)
    end = np.where(context, end[:n], -np.inf)
    scores = start[:, None] + end[None, :]
    first, last = np.indices(scores.shape)
    scores[(last < first) | (last - first >= max_answer_tokens)] = -np.inf
    return scores


#: How far below every candidate span a window's free span scores, when no candidate occurs in the window.
NO_CANDIDATE_PENALTY = 1e9


def _whole(context: str, start: int, end: int) -> bool:
    """Whether ``context[start:end]`` is not part of a longer word (York in Yorker)."""
    return (start == 0 or not context[start - 1].isalnum()) and (end >= len(context) or not context[end].isalnum())


def candidate_spans(context: str, offsets: Sequence[Sequence[int]], candidates: Sequence[str]) -> list[tuple[int, int]]:
    """The token spans ``(first, last)`` of every whole-word occurrence in the window of each candidate text
    (matched as written: case counts)."""
    spans = set()
    for text in candidates:
        for start in (at for at in _occurrences(context, text) if _whole(context, at, at + len(text))) if text else ():
            first, last = answer_span(offsets, start, start + len(text), context)
            if first >= 0:
                spans.add((first, last))
    return sorted(spans)


def best_answer_span(start_logits: Sequence[float], end_logits: Sequence[float], row: Mapping[str, Any],
                     max_answer_tokens: int = MAX_ANSWER_TOKENS) -> tuple[int, int, float, float]:
    """:func:`best_span` of a window ``row`` (``offsets``, ``context``) and the window's "no answer"
    score (``[CLS]``'s start + end); with ``candidates`` (ReCoRD's entities), the best of their spans
    instead. A window where no candidate occurs falls back to its free span, scored
    :data:`NO_CANDIDATE_PENALTY` lower, so any window holding one wins over it."""
    offsets, candidates = row["offsets"], row.get("candidates")
    null = float(start_logits[0]) + float(end_logits[0])
    if not candidates:
        return (*best_span(start_logits, end_logits, offsets, max_answer_tokens), null)
    spans = candidate_spans(row["context"], offsets, candidates)
    if not spans:
        first, last, score = best_span(start_logits, end_logits, offsets, max_answer_tokens)
        return first, last, score - NO_CANDIDATE_PENALTY, null
    scores = [float(start_logits[first]) + float(end_logits[last]) for first, last in spans]
    best = max(range(len(spans)), key=scores.__getitem__)
    return spans[best][0], spans[best][1], scores[best], null


def top_answer_spans(start_logits: Sequence[float], end_logits: Sequence[float], row: Mapping[str, Any],
                     max_answer_tokens: int = MAX_ANSWER_TOKENS, k: int = 20) -> list[tuple[int, int, float]]:
    """The ``k`` spans of a window ``row`` that :func:`best_answer_span` ranks highest, best first: with
    ``candidates``, the candidates' spans (the free spans, :data:`NO_CANDIDATE_PENALTY` lower, when none occurs)."""
    offsets, candidates = row["offsets"], row.get("candidates")
    if not candidates:
        return top_spans(start_logits, end_logits, offsets, max_answer_tokens, k)
    spans = candidate_spans(row["context"], offsets, candidates)
    if not spans:
        return [(first, last, score - NO_CANDIDATE_PENALTY) for first, last, score in
                top_spans(start_logits, end_logits, offsets, max_answer_tokens, k)]
    scored = [(first, last, float(start_logits[first]) + float(end_logits[last])) for first, last in spans]
    return sorted(scored, key=lambda span: -span[2])[:k]


def span_text(context: str, offsets: Sequence[Sequence[int]], first: int, last: int) -> tuple[str, int]:
    """The context's text from token ``first`` to token ``last`` and its character start ("" and -1 for no span)."""
    if first < 0 or last < 0:
        return "", -1
    start, end = offsets[first][0], offsets[last][1]
    while end < len(context) and unicodedata.category(context[end]) in ("Mn", "Me"):  # marks on the last letter
        end += 1
    return context[start:end], start


def max_answer_tokens(task: Any) -> int:
    """The task's ``head_options.max_answer_tokens`` (the extractive_qa head's option), else :data:`MAX_ANSWER_TOKENS`."""
    value = dict(getattr(task, "head_options", None) or {}).get("max_answer_tokens", MAX_ANSWER_TOKENS)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else MAX_ANSWER_TOKENS


def decode_spans(logits: Any, rows: Sequence[Mapping[str, Any]], max_answer_tokens: int = MAX_ANSWER_TOKENS
                 ) -> list[tuple[int, int, float, float]]:
    """Each window's :func:`best_answer_span` from a batch's head logits ``(batch, length, 2)`` (one copy to the host)."""
    values = logits.detach().float().cpu().numpy()
    return [best_answer_span(values[j, :, 0], values[j, :, 1], rows[j], max_answer_tokens) for j in range(len(rows))]


def span_probability(start_logits: Any, end_logits: Any, offsets: Sequence[Sequence[int]], first: int, last: int) -> float:
    """The probability of the span: softmax over the context tokens of its start times that of its end."""
    import numpy as np

    if first < 0:
        return 0.0
    context = np.array([span[0] >= 0 for span in offsets[: len(start_logits)]], dtype=bool)

    def log_softmax(values: Any) -> Any:
        kept = np.where(context, np.asarray(values, dtype=np.float64)[: len(context)], -np.inf)
        top = kept.max()
        return kept - top - np.log(np.exp(kept - top).sum())

    return float(np.exp(log_softmax(start_logits)[first] + log_softmax(end_logits)[last]))
