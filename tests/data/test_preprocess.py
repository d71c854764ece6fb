"""The seed's preprocessing vocabulary, and the data package's light import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mtcore.data.preprocess import NLIPreprocess, Preprocessor, build_preprocessor
from mtcore.errors import DataError


def add_mark(example):
    return {**example, "text": example["text"] + "!"}


def lower_in_place(example):
    example["text"] = example["text"].lower()  # returns None: the changed example is used


def test_steps_run_in_order_and_may_change_the_example_in_place():
    pipeline = Preprocessor([NLIPreprocess(premise="sentence1", hypothesis="sentence2", label="gold_label"), lower_in_place, add_mark])
    row = {"sentence1": "Кот СПИТ", "sentence2": "Кот", "gold_label": "neutral", "pairID": "7"}
    assert pipeline(row) == {**row, "text": "кот спит!", "text_pair": "Кот", "label": "neutral"}
    assert row == {"sentence1": "Кот СПИТ", "sentence2": "Кот", "gold_label": "neutral", "pairID": "7"}  # input untouched
    assert len(pipeline + add_mark) == 4


def test_steps_by_reference_flatten_and_bad_steps_are_refused():
    import copy

    pipeline = build_preprocessor(["copy:copy", Preprocessor([add_mark, lower_in_place])])
    assert pipeline.steps == (copy.copy, add_mark, lower_in_place)
    assert pipeline({"text": "A"}) == {"text": "a!"}
    with pytest.raises(TypeError, match="not callable"):
        Preprocessor([42])
    with pytest.raises(DataError, match="returned list, not an example dict"):
        Preprocessor([lambda example: [1]])({"text": "a"})


def test_nli_preprocess_names_a_missing_field():
    with pytest.raises(DataError, match=r"no field 'premise' \(the row has: sentence1, sentence2\)"):
        NLIPreprocess()({"sentence1": "a", "sentence2": "b"})


def test_seed_imports_still_work():
    import mtcore

    assert mtcore.Preprocessor is Preprocessor and mtcore.NLIPreprocess is NLIPreprocess


def test_importing_the_data_package_stays_light():
    code = ("import sys, mtcore.data, mtcore.data.task_data, mtcore.data.sources, mtcore.data.collate, mtcore.data.tokenize; "
            "heavy = sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules); print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
