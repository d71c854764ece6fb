"""The note on tasks recycled in mode "all": only a substantial repetition (2x or more) is named."""

from __future__ import annotations

from mtcore.sampling import MultitaskBatchSampler
from mtcore.train.steps import long_epoch_note


def test_mode_all_names_the_tasks_an_epoch_goes_through_twice_or_more(make_data) -> None:
    data = make_data({"big": [8] * 3000, "mid": [8] * 2000, "small": [8] * 5})  # 600, 400 and 1 batch(es) of 5
    note = long_epoch_note(MultitaskBatchSampler(data, "train", 5, mode="all", seed=0))
    assert note is not None and "lasts 600 steps, as long as the largest task 'big'" in note
    assert "'small' (1 batch(es)) ~600 times per epoch" in note and "'mid'" not in note  # 1.5x: not worth a note
    assert "sampler.stop: smallest" in note
    assert long_epoch_note(MultitaskBatchSampler(data, "train", 5, mode="all", stop="smallest", seed=0)) is None
    assert long_epoch_note(MultitaskBatchSampler(make_data({"a": [8] * 30, "b": [8] * 20}), "train", 5, mode="all")) is None
