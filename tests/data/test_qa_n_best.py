"""QA n-best lists: the top spans are the best of every span tried one by one, the first n-best answer is the
answer itself, a span two windows share counts once, and a no-answer task lists the empty answer at its score."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mtcore.data.answers import best_span, top_spans
from mtcore.data.qa_decoding import answers_from_logits, n_best_answers

CONTEXT = "alpha beta gamma delta epsilon zeta"
WORDS = [(0, 5), (6, 10), (11, 16), (17, 22), (23, 30), (31, 35)]


def _window(words: range, example: int = 0) -> dict:
    offsets = [(-1, -1)] + [WORDS[w] for w in words] + [(-1, -1)]  # [CLS] ... [SEP]
    return {"context": CONTEXT, "offsets": offsets, "example": example}


@pytest.mark.parametrize("seed", range(5))
def test_top_spans_are_the_best_of_every_span_tried_one_by_one(seed):
    rng = np.random.default_rng(seed)
    row = _window(range(6))
    start, end = rng.normal(size=8), rng.normal(size=8)
    every = sorted(((start[i] + end[j], i, j) for i, j in itertools.product(range(1, 7), repeat=2) if 0 <= j - i < 3),
                   key=lambda s: (-s[0], s[1], s[2]))
    got = top_spans(start, end, row["offsets"], max_answer_tokens=3, k=5)
    assert [(i, j) for i, j, _ in got] == [(i, j) for _, i, j in every[:5]]
    assert got[0] == best_span(start, end, row["offsets"], max_answer_tokens=3)
    assert len(top_spans(start, end, row["offsets"], max_answer_tokens=3, k=100)) == len(every)  # no more than there are


def test_the_first_n_best_answer_is_the_answer_and_shared_spans_count_once():
    rng = np.random.default_rng(7)
    rows = [_window(range(0, 4)), _window(range(2, 6))]  # two overlapping windows of one question
    logits = [rng.normal(size=(6, 2)) for _ in rows]
    logits[1][1:3] += 3.0  # 'gamma' (the second window's first word) scores high in it
    texts, extras = answers_from_logits(logits, rows, max_answer_tokens=3, n_best=4)
    listed = extras[0]["n_best"]
    assert len(listed) == 4 and listed[0]["text"] == texts[0] and listed[0]["answer_start"] == extras[0]["answer_start"]
    assert len({(a["text"], a["answer_start"]) for a in listed}) == 4
    assert [a["logit"] for a in listed] == sorted((a["logit"] for a in listed), reverse=True)
    assert sum(a["probability"] for a in listed) == pytest.approx(1.0)
    for a in listed:
        assert CONTEXT[a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]
    assert "n_best" not in answers_from_logits(logits, rows, max_answer_tokens=3)[1][0]


def test_a_no_answer_task_lists_the_empty_answer_at_its_score():
    row = _window(range(6))
    values = np.zeros((8, 2))
    values[0] = [2.0, 2.0]  # [CLS]: "no answer" scores 4
    values[2, 0], values[3, 1] = 1.0, 1.5  # the best span, beta..gamma, scores 2.5
    listed = n_best_answers([(values, row)], 3, max_answer_tokens=5, null_score=4.0)
    assert listed[0] == {"text": "", "answer_start": -1, "logit": 4.0, "probability": pytest.approx(listed[0]["probability"])}
    assert listed[1]["text"] == "beta gamma" and listed[1]["logit"] == pytest.approx(2.5)
    assert listed[0]["probability"] > listed[1]["probability"]


def test_with_candidates_only_their_spans_are_listed_at_their_own_logits():
    rng = np.random.default_rng(3)
    with_candidate = {**_window(range(0, 3)), "candidates": ["beta"]}  # alpha beta gamma: holds 'beta'
    without = {**_window(range(3, 6)), "candidates": ["beta"]}  # delta epsilon zeta: no candidate
    values = [rng.normal(size=(5, 2)), rng.normal(size=(5, 2)) + 5.0]  # the window without one scores higher
    listed = n_best_answers([(values[0], with_candidate), (values[1], without)], 4, max_answer_tokens=3)
    assert [(a["text"], a["answer_start"]) for a in listed] == [("beta", 6)]
    assert listed[0]["logit"] == pytest.approx(values[0][2, 0] + values[0][2, 1]) and listed[0]["probability"] == 1.0
    free = n_best_answers([(values[1], without)], 2, max_answer_tokens=3)  # no candidate anywhere: free spans, real logits
    assert len(free) == 2 and all(abs(a["logit"]) < 100 for a in free)
