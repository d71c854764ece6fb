"""Metrics that score groups of rows get the rows' ids (``idx``); the others are called as before."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from mtcore.train.evaluation import row_ids
from mtcore.train.metrics import compute_metrics, wants_idx


def plain(predictions, references, task=None):
    return float((predictions == references).mean())


def grouped(predictions, references, task=None, *, idx):
    groups: dict = {}
    for p, r, i in zip(predictions, references, idx):
        groups[i["q"]] = groups.get(i["q"], True) and p == r
    return sum(groups.values()) / len(groups)


def test_only_metrics_taking_idx_get_them_and_ids_are_read_once():
    task = SimpleNamespace(id="t", all_metrics=("plain", "grouped", "grouped2"))
    reads = []

    def ids():
        reads.append(1)
        return [{"q": 0}, {"q": 0}, {"q": 1}]

    functions = {"plain": plain, "grouped": grouped, "grouped2": grouped}
    result = compute_metrics(task, np.array([1, 0, 1]), np.array([1, 1, 1]), functions.__getitem__, idx=ids)
    assert result == {"t/plain": 2 / 3, "t/grouped": 0.5, "t/grouped2": 0.5} and reads == [1]
    assert compute_metrics(SimpleNamespace(id="t", all_metrics=("plain",)), np.array([1]), np.array([1]), functions.__getitem__,
                           idx=lambda: 1 / 0) == {"t/plain": 1.0}  # never read when no metric takes them
    assert wants_idx(grouped) and not wants_idx(plain) and not wants_idx(len)


def test_row_ids_reads_the_split_idx_at_positions():
    from datasets import Dataset

    rows = Dataset.from_list([{"input_ids": [1], "idx": {"q": i, "a": 10 + i}} for i in range(4)])
    assert row_ids(rows, [3, 1]) == [{"q": 3, "a": 13}, {"q": 1, "a": 11}]
    assert row_ids(rows.remove_columns("idx"), [0, 2]) == [None, None]
    assert row_ids(rows, []) == []
