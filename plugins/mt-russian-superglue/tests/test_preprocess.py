"""The row functions: DaNetQA's pair, PARus's context and choices."""

from __future__ import annotations

import pytest

from mt_russian_superglue import PARUS_CONNECTIVES, preprocess_danetqa, preprocess_parus


def test_preprocess_danetqa_puts_the_question_first_and_keeps_every_field():
    row = {"question": "Правда ли, что вода мокрая?", "passage": "Вода мокрая.", "label": True, "idx": 7}
    out = preprocess_danetqa(row)
    assert out["text"] == row["question"] and out["text_pair"] == row["passage"]
    assert out["label"] is True and out["idx"] == 7


def test_preprocess_danetqa_names_a_missing_field():
    with pytest.raises(KeyError, match="passage"):
        preprocess_danetqa({"question": "?", "label": False, "idx": 0})


@pytest.mark.parametrize("question", ["cause", "effect"])
def test_preprocess_parus_builds_context_and_two_choices(question):
    row = {"premise": "Мальчик упал.", "choice1": "Он поскользнулся.", "choice2": "Он засмеялся.", "question": question, "label": 0, "idx": 3}
    out = preprocess_parus(row)
    assert out["text"] == f"Мальчик упал, {PARUS_CONNECTIVES[question]}"
    assert out["choices"] == [row["choice1"], row["choice2"]]
    assert out["label"] == 0 and out["idx"] == 3


def test_cause_and_effect_contexts_differ():
    row = {"premise": "Пошёл дождь", "choice1": "a", "choice2": "b"}
    assert preprocess_parus({**row, "question": "cause"})["text"] != preprocess_parus({**row, "question": "effect"})["text"]


def test_preprocess_parus_rejects_an_unknown_question():
    with pytest.raises(ValueError, match="'reason'"):
        preprocess_parus({"premise": "x", "choice1": "a", "choice2": "b", "question": "reason"})


def test_seed_port_preprocessor_matches_the_task_inputs(registry):
    """``Preprocessor([preprocess_danetqa])`` (the seed's idiom) gives what the task's inputs map gives."""
    from mtcore.data.preprocess import Preprocessor

    row = {"question": "Есть ли у озера имя?", "passage": "Озеро называется Ясное.", "label": False, "idx": 1}
    out = Preprocessor([preprocess_danetqa])(row)
    mapped = {column: row[field] for column, field in registry.task("rsg:danetqa").input_map.items()}
    assert {k: out[k] for k in mapped} == mapped and out["label"] is False
