"""The HeadlineCause left/right swap mirrors the labels and the fields."""

from __future__ import annotations

import pytest

from mt_nli import swap_headlines, swap_label
from mt_nli.augment import FULL_LABELS, SIMPLE_LABELS


@pytest.mark.parametrize(("scheme", "pairs"), [("simple", {0: 0, 1: 2, 2: 1}), ("full", {0: 0, 1: 1, 2: 2, 3: 4, 4: 3, 5: 6, 6: 5})])
def test_swap_label_ids_and_names(scheme, pairs):
    names = SIMPLE_LABELS if scheme == "simple" else FULL_LABELS
    for label, mirrored in pairs.items():
        assert swap_label(label, scheme) == mirrored
        assert swap_label(names[label], scheme) == names[mirrored]
        assert swap_label(swap_label(label, scheme), scheme) == label  # an involution


def test_swap_keeps_unlabelled_rows_unlabelled():
    assert swap_label(-1, "simple") == -1 and swap_label(None, "full") is None


def test_swap_headlines_swaps_every_left_right_field():
    row = {"left_title": "A", "right_title": "B", "left_url": "u1", "right_url": "u2", "left_timestamp": 1, "right_timestamp": 2,
           "label": 3, "result": "left_right_cause", "id": "x", "agreement": 0.9}
    out = swap_headlines(row, "full")
    assert (out["left_title"], out["right_title"], out["left_url"], out["right_url"]) == ("B", "A", "u2", "u1")
    assert (out["left_timestamp"], out["right_timestamp"]) == (2, 1)
    assert out["label"] == 4 and out["result"] == "right_left_cause" and out["id"] == "x:swap" and out["agreement"] == 0.9
    assert row["left_title"] == "A"  # the input is not modified


def test_unknown_label_name_is_refused():
    with pytest.raises(ValueError, match="unknown HeadlineCause simple label 'sideways'"):
        swap_label("sideways", "simple")


def test_with_swap_augment_switches_every_source_and_refuses_other_tasks(registry):
    from mtcore.errors import ConfigError

    from mt_nli import with_swap_augment

    task = with_swap_augment(registry.task("nli:headline-cause-full"))
    assert all(source.options["swap_augment"] is True for source in task.sources.values())
    assert all(s.options["swap_augment"] is False for s in with_swap_augment(task, False).sources.values())
    with pytest.raises(ConfigError, match="HeadlineCause"):
        with_swap_augment(registry.task("nli:xnli-ru"))
