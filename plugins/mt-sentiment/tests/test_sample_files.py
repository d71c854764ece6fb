"""The shipped synthetic samples follow the official layouts (read with the standard library)."""

from __future__ import annotations

import csv
import json
from importlib import resources

from mt_sentiment.tasks import MOKORON_COLUMNS

SAMPLE = resources.files("mt_sentiment") / "sample"


def test_mokoron_files_are_quoted_semicolon_csv_without_header():
    for name, ttype in (("positive.csv", "1"), ("negative.csv", "-1")):
        text = (SAMPLE / "mokoron" / name).read_text(encoding="utf-8")
        rows = list(csv.reader(text.splitlines(keepends=True), delimiter=";"))
        assert len(rows) == 125 and all(len(r) == len(MOKORON_COLUMNS) for r in rows)
        assert {r[4] for r in rows} == {ttype}
        assert any(";" in r[3] for r in rows) and any("\n" in r[3] for r in rows)  # the quirks
        assert text.startswith('"') and not text.startswith('"id"')


def test_rusentiment_files_have_a_label_text_header_and_five_classes():
    for name, size in (("rusentiment_random_posts.csv", 220), ("rusentiment_test.csv", 60)):
        with (SAMPLE / "rusentiment" / name).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == size and list(rows[0]) == ["label", "text"]
        assert {r["label"] for r in rows} <= {"positive", "negative", "neutral", "speech", "skip"}
    assert any("\n" in r["text"] for r in rows)


def test_generic_sample_and_readme():
    train = [json.loads(line) for line in (SAMPLE / "sentiment" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["label"] for r in train} == {"negative", "neutral", "positive"}
    assert (SAMPLE / "SAMPLE_README.txt").read_text(encoding="utf-8").startswith("SYNTHETIC SAMPLE")


def test_labels_follow_words_so_a_smoke_training_can_learn():
    """A keyword rule recovers the sample's labels: the data is learnable, not noise."""
    positive_words = ("супер", "радует", "отлично", "здорово")
    for name, ttype in (("positive.csv", "1"), ("negative.csv", "-1")):
        text = (SAMPLE / "mokoron" / name).read_text(encoding="utf-8")
        rows = list(csv.reader(text.splitlines(keepends=True), delimiter=";"))
        predicted = ["1" if any(w in r[3] for w in positive_words) else "-1" for r in rows]
        assert predicted == [ttype] * len(rows)
