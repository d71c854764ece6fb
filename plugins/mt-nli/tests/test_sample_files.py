"""The shipped synthetic samples follow the official layouts (read with the standard library)."""

from __future__ import annotations

import csv
import json
from importlib import resources

SAMPLE = resources.files("mt_nli") / "sample"


def tsv(path):
    with (SAMPLE / path).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def jsonl(path):
    return [json.loads(line) for line in (SAMPLE / path).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_xnli_files():
    train = tsv("XNLI-MT-1.0/multinli/multinli.train.ru.tsv")
    assert list(train[0]) == ["premise", "hypo", "label"] and 50 <= len(train) <= 200
    assert {r["label"] for r in train} == {"entailment", "neutral", "contradictory"}
    assert any('"' in r["premise"] for r in train)  # stray quotes: quoting must stay disabled
    for name in ("dev", "test"):
        rows = tsv(f"XNLI-1.0/xnli.{name}.tsv")
        assert 50 <= len(rows) <= 200
        assert {"language", "gold_label", "sentence1", "sentence2", "pairID"} <= set(rows[0])
        assert {r["gold_label"] for r in rows} == {"entailment", "neutral", "contradiction"}


def test_headline_cause_files():
    for scheme, classes in (("simple", 3), ("full", 7)):
        for name in ("train", "val", "test"):
            rows = jsonl(f"ru/{scheme}/{name}.jsonl")
            assert len(rows) >= 50
            assert {"left_title", "right_title", "label", "result", "id", "left_url", "right_timestamp", "has_link"} <= set(rows[0])
            assert {r["label"] for r in rows} <= set(range(classes))
        assert {r["label"] for r in jsonl(f"ru/{scheme}/train.jsonl")} == set(range(classes))


def test_generic_nli_sample_and_readme():
    assert all("label" not in r for r in jsonl("nli/test.jsonl"))
    assert {r["label"] for r in jsonl("nli/train.jsonl")} == {"entailment", "neutral", "contradiction"}
    assert (SAMPLE / "SAMPLE_README.txt").read_text(encoding="utf-8").startswith("SYNTHETIC SAMPLE")


def test_labels_follow_words_so_a_smoke_training_can_learn():
    """A keyword rule recovers the sample's labels: the data is learnable, not noise."""
    def xnli_rule(hypothesis):
        return "contradiction" if " не " in hypothesis else "neutral" if "вчера" in hypothesis else "entailment"

    rows = tsv("XNLI-1.0/xnli.dev.tsv")
    assert sum(xnli_rule(r["sentence2"]) == r["gold_label"] for r in rows) == len(rows)

    def cause_rule(row):
        marked = [("после" in t or "из-за" in t.lower()) for t in (row["left_title"], row["right_title"])]
        return 1 if marked[1] else 2 if marked[0] else 0

    simple = jsonl("ru/simple/train.jsonl")
    assert sum(cause_rule(r) == r["label"] for r in simple) == len(simple)
