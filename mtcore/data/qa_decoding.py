"""Extractive QA decoding: each question's answer from its windows' best spans (:mod:`mtcore.data.answers`).

A long context is cut into windows; every window proposes its best span (``best_answer_span``) and
a "no answer" score (``[CLS]``'s start + end). A question's answer is the span of the window whose
span scores highest; in a task with ``no_answer`` (SQuAD 2.0) it is ``""`` instead when the lowest
"no answer" score of its windows beats that span's by more than the task's ``null_threshold``
(0 by default: SQuAD 2.0's rule; Hugging Face's ``null_score_diff_threshold``). The difference is
given with every prediction (``null_score_diff``), and the metrics ``squad_best_f1`` /
``squad_best_f1_threshold`` find the threshold that scores best on labelled data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from mtcore.data.answers import MAX_ANSWER_TOKENS, NO_CANDIDATE_PENALTY, best_answer_span, span_probability, span_text, top_answer_spans


class WindowChoice(NamedTuple):
    """One example's decision (:func:`best_windows`)."""

    window: int | None  #: the window whose span answers; None: "no answer"
    span_window: int  #: the window of the best span, even when "no answer" wins
    null_score_diff: float  #: the lowest "no answer" score minus the best span's; "no answer" when above the threshold


def best_windows(windows: Sequence[tuple[int, int, float, float]], no_answer: bool = False,
                 null_threshold: float = 0.0) -> dict[int, WindowChoice]:
    """``{example: choice}``: of the ``(position, example, span score, null score)`` windows, the one whose
    span scores best for each example; no answer (``window`` None) when ``no_answer`` and the example's
    lowest "no answer" score beats that span's by more than ``null_threshold`` (SQuAD 2.0's rule at 0;
    Hugging Face's ``null_score_diff_threshold``)."""
    best: dict[int, tuple[float, int]] = {}
    null: dict[int, float] = {}
    for position, example, score, null_score in windows:
        if example not in best or score > best[example][0]:
            best[example] = (score, position)
        null[example] = min(null.get(example, math.inf), null_score)
    choices = {}
    for example, (score, position) in best.items():
        diff = null[example] - score
        choices[example] = WindowChoice(None if no_answer and diff > null_threshold else position, position, diff)
    return choices


def answers_from_logits(logits: Sequence[Any], rows: Any, max_answer_tokens: int = MAX_ANSWER_TOKENS, no_answer: bool = False,
                        null_threshold: float = 0.0, n_best: int = 0) -> tuple[list[str], list[dict[str, Any]]]:
    """Each example's answer text and ``{"answer_start", "score"}`` (and with ``no_answer``, ``null_score_diff``,
    ``best_span`` and ``best_span_start``: the span it would answer below the threshold),
    from its windows' head logits ``(length, 2)`` (``rows``: the tokenized windows' ``offsets``, ``context``
    and ``example``, in the same order): the span of the window whose best span scores highest (``""``,
    start -1, when ``no_answer`` and "no answer" wins: :func:`best_windows`). ``n_best`` > 0 adds
    ``n_best``: the example's best answers (:func:`n_best_answers`)."""
    from mtcore.sampling.protocol import fetch_rows

    fetched = fetch_rows(rows, list(range(len(logits))))
    spans = [best_answer_span(values[:, 0], values[:, 1], row, max_answer_tokens) for values, row in zip(logits, fetched)]
    chosen = best_windows([(i, row["example"], span[2], span[3]) for i, (row, span) in enumerate(zip(fetched, spans))], no_answer,
                          null_threshold)
    texts, extras = [], []
    windows: dict[int, list[int]] = {}
    for i, row in enumerate(fetched):
        windows.setdefault(row["example"], []).append(i)
    for example in sorted(chosen):
        choice = chosen[example]
        i = choice.span_window
        first, last = spans[i][:2]
        offsets = fetched[i]["offsets"]
        text, start = span_text(fetched[i]["context"], offsets, first, last)
        # with no_answer, every question also gets its best span, answered or not, to tune the threshold on
        more: dict[str, Any] = {"null_score_diff": choice.null_score_diff, "best_span": text, "best_span_start": start} if no_answer else {}
        if n_best > 0:
            nulls = [spans[w][3] for w in windows[example]] if no_answer else []
            more["n_best"] = n_best_answers([(logits[w], fetched[w]) for w in windows[example]], n_best, max_answer_tokens,
                                            min(nulls) if nulls else None)
        if choice.window is None:
            texts.append("")
            extras.append({"answer_start": -1, "score": None, **more})
            continue
        texts.append(text)
        extras.append({"answer_start": start, "score": span_probability(logits[i][:, 0], logits[i][:, 1], offsets, first, last), **more})
    return texts, extras


def n_best_answers(windows: Sequence[tuple[Any, Any]], n: int, max_answer_tokens: int = MAX_ANSWER_TOKENS,
                   null_score: float | None = None) -> list[dict[str, Any]]:
    """An example's ``n`` best answers over its windows (``(logits, row)`` pairs), best first, as Hugging Face's
    ``nbest_predictions.json``: ``{"text", "answer_start", "logit", "probability"}``, ``logit`` the span's start +
    end logits, ``probability`` the softmax of the listed logits (their shares of the list, not of every span).
    A span several windows hold counts once, at its best logit; with candidates (ReCoRD), only their spans are
    listed (the free spans only when no window holds one); ``null_score`` (a ``no_answer`` task: the
    windows' lowest "no answer" score) adds the empty answer, start -1, ranked by it."""
    best: dict[tuple[str, int], float] = {}
    for values, row in windows:
        for first, last, logit in top_answer_spans(values[:, 0], values[:, 1], row, max_answer_tokens, n):
            key = span_text(row["context"], row["offsets"], first, last)
            best[key] = max(best.get(key, -math.inf), logit)
    penalised = {key for key, logit in best.items() if logit < -NO_CANDIDATE_PENALTY / 2}  # a window without a candidate
    if len(penalised) < len(best):  # the candidates' spans only
        best = {key: logit for key, logit in best.items() if key not in penalised}
    else:  # no window holds a candidate: the free spans, at their own logits
        best = {key: logit + NO_CANDIDATE_PENALTY for key, logit in best.items()}
    if null_score is not None:
        best[("", -1)] = null_score
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0][1]))[:n]
    top = max((logit for _, logit in ranked), default=0.0)
    weights = [math.exp(logit - top) for _, logit in ranked]
    total = sum(weights) or 1.0
    return [{"text": text, "answer_start": start, "logit": logit, "probability": weight / total}
            for ((text, start), logit), weight in zip(ranked, weights)]


class AnswerTexts(NamedTuple):
    """What :func:`answer_texts` gives, one item per example."""

    predicted: list[str]
    gold: list[list[str]]
    #: with ``no_answer``: ``(best span's text, null score diff)``, what threshold-free SQuAD 2.0 metrics need; else None
    null_answers: list[tuple[str, float]] | None


def answer_texts(rows: Any, spans: Sequence[tuple[int, Any]], no_answer: bool = False, null_threshold: float = 0.0) -> AnswerTexts:
    """The predicted answer texts and the gold answers, one per example, of ``(window, (first, last, score, null))``
    pairs of a tokenized split (each example's best-scoring window counts; see :func:`best_windows`)."""
    from mtcore.sampling.protocol import fetch_rows

    columns = rows.select_columns(["context", "offsets", "answers", "example"]) if hasattr(rows, "select_columns") else rows
    fetched = fetch_rows(columns, [int(row) for row, _ in spans])
    chosen = best_windows([(i, r["example"], float(span[2]), float(span[3])) for i, (r, (_, span)) in enumerate(zip(fetched, spans))],
                          no_answer, null_threshold)
    first: dict[int, int] = {}
    for i, row in enumerate(fetched):
        first.setdefault(row["example"], i)
    predicted, gold, null_answers = [], [], []
    for example in sorted(chosen):
        choice = chosen[example]
        r, span = fetched[choice.span_window], spans[choice.span_window][1]
        text = span_text(r["context"], r["offsets"], int(span[0]), int(span[1]))[0]
        predicted.append("" if choice.window is None else text)
        null_answers.append((text, choice.null_score_diff))
        gold.append(list(fetched[first[example]]["answers"]))
    return AnswerTexts(predicted, gold, null_answers if no_answer else None)
