"""Seeded stratified splits: reproducible, stratified, complete."""

from __future__ import annotations

import pytest

from mtcore.data.splits import describe_split, stratified_split
from mtcore.errors import ConfigError

PROPORTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_split_is_a_partition_with_class_shares_kept():
    labels = ["pos"] * 503 + ["neg"] * 297
    parts = stratified_split(labels, PROPORTIONS, seed=42)
    every = sorted(i for part in parts.values() for i in part)
    assert every == list(range(len(labels)))  # each row exactly once
    for name, share in PROPORTIONS.items():
        if name == "train":
            continue
        assert sum(labels[i] == "pos" for i in parts[name]) == int(503 * share)
        assert sum(labels[i] == "neg" for i in parts[name]) == int(297 * share)


def test_same_seed_same_split_other_seed_other_split():
    labels = [i % 3 for i in range(300)]
    assert stratified_split(labels, PROPORTIONS, seed=7) == stratified_split(labels, PROPORTIONS, seed=7)
    assert stratified_split(labels, PROPORTIONS, seed=7) != stratified_split(labels, PROPORTIONS, seed=8)


def test_the_full_corpus_sizes_match_the_recorded_ones():
    from mt_sentiment.tasks import MOKORON_SPLIT_SIZES

    labels = ["positive"] * 114911 + ["negative"] * 111923
    parts = stratified_split(labels, PROPORTIONS, seed=42)
    assert {k: len(v) for k, v in parts.items()} == MOKORON_SPLIT_SIZES


@pytest.mark.parametrize("bad", [{"train": 0.8, "test": 0.1}, {"train": 1.2, "test": -0.2}, {}])
def test_bad_proportions_are_refused(bad):
    with pytest.raises(ConfigError, match="sum to 1"):
        stratified_split(["a", "b"], bad, seed=1)


def test_description_records_seed_and_sizes():
    line = describe_split("mokoron", {"train": 8, "validation": 1, "test": 1}, PROPORTIONS, 42)
    assert "seed=42" in line and "train=8" in line and "validation 0.1" in line
