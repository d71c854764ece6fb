"""The shipped synthetic sample follows the official layout (read with the standard library)."""

from __future__ import annotations

import json
from importlib import resources

import pytest

SAMPLE = resources.files("mt_russian_superglue") / "sample"
FIELDS = {
    "DaNetQA": {"question", "passage", "idx"},
    "TERRa": {"premise", "hypothesis", "idx"},
    "PARus": {"premise", "choice1", "choice2", "question", "idx"},
    "RCB": {"premise", "hypothesis", "verb", "idx"},
}
LABELS = {
    "DaNetQA": {True, False},
    "TERRa": {"entailment", "not_entailment"},
    "PARus": {0, 1},
    "RCB": {"entailment", "contradiction", "neutral"},
}


def rows(folder, name):
    text = (SAMPLE / folder / name).read_text(encoding="utf-8-sig")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("folder", sorted(FIELDS))
def test_official_files_fields_and_label_forms(folder):
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        data = rows(folder, name)
        assert 50 <= len(data) <= 200
        assert [r["idx"] for r in data] == list(range(len(data)))
        for row in data:
            assert FIELDS[folder] <= set(row)
            if name == "test.jsonl":
                assert "label" not in row  # hidden, as in the official test files
            else:
                assert row["label"] in LABELS[folder] and type(row["label"]) is type(next(iter(LABELS[folder])))
        if name != "test.jsonl":
            assert {r["label"] for r in data} == LABELS[folder]  # every class is present


def test_lidirus_is_a_labelled_test_file():
    data = rows("LiDiRus", "LiDiRus.jsonl")
    assert len(data) >= 50
    assert {r["label"] for r in data} == {"entailment", "not_entailment"}
    assert all({"sentence1", "sentence2", "logic", "lexical-semantics", "knowledge", "predicate-argument-structure"} <= set(r) for r in data)


def test_quirks_are_present():
    boms = [p for p in ("DaNetQA/train.jsonl", "RCB/val.jsonl") if (SAMPLE / p).read_bytes().startswith(b"\xef\xbb\xbf")]
    assert boms, "at least one sample file starts with a byte-order mark"
    rcb = rows("RCB", "train.jsonl")
    assert any("negation" not in r for r in rcb) and any("negation" in r for r in rcb)
    assert (SAMPLE / "SAMPLE_README.txt").read_text(encoding="utf-8").startswith("SYNTHETIC SAMPLE")


def test_sample_is_small():
    total = sum(len((SAMPLE / f / n).read_bytes()) for f in (*FIELDS, "LiDiRus") for n in ("train.jsonl", "val.jsonl", "test.jsonl", "LiDiRus.jsonl") if (SAMPLE / f / n).is_file())
    assert total < 200_000


def test_labels_follow_words_so_a_smoke_training_can_learn():
    """A keyword rule recovers the sample's labels: the data is learnable, not noise."""
    def accuracy(rows, rule):
        return sum(rule(r) == r["label"] for r in rows) / len(rows)

    danetqa = rows("DaNetQA", "train.jsonl")
    assert accuracy(danetqa, lambda r: "действительно" in r["passage"]) == 1.0
    terra = rows("TERRa", "train.jsonl")
    entails = lambda r: set(r["hypothesis"].rstrip(".").split()) <= set(r["premise"].rstrip(".").split())  # noqa: E731
    assert accuracy(terra, lambda r: "entailment" if entails(r) else "not_entailment") == 1.0
    rcb_verbs = {"знать": "entailment", "понять": "entailment", "увидеть": "entailment", "думать": "neutral",
                 "надеяться": "neutral", "предполагать": "neutral"}
    assert accuracy(rows("RCB", "train.jsonl"), lambda r: rcb_verbs.get(r["verb"], "contradiction")) == 1.0
