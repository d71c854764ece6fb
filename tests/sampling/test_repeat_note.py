"""The note on tasks recycled in mode "all": only a substantial repetition (2x or more) is named."""

from __future__ import annotations

from mtcore.sampling import MultitaskBatchSampler
from mtcore.train.steps import long_epoch_note


def test_mode_all_names_the_tasks_an_epoch_goes_through_twice_or_more(make_data) -> None:
    data = make_data({"big": [8] * 3000, "mid": [8] * 2000, "small": [8] * 5})  # 600, 400 and 1 batch(es) of 5
    note = long_epoch_note(MultitaskBatchSampler(data, "train", 5, mode="all", seed=0))
    assert note is not None and "lasts 600 batches, as long as the largest task 'big'" in note
    assert "'small' (1 batch(es)) ~600 times per epoch" in note and "'mid'" not in note  # 1.5x: not worth a note
    assert "sampler.stop: smallest" in note
    assert long_epoch_note(MultitaskBatchSampler(data, "train", 5, mode="all", stop="smallest", seed=0)) is None
    assert long_epoch_note(MultitaskBatchSampler(make_data({"a": [8] * 30, "b": [8] * 20}), "train", 5, mode="all")) is None


def test_a_run_shorter_than_an_epoch_counts_the_repeats_it_makes(make_data) -> None:
    data = make_data({"big": [8] * 3000, "small": [8] * 5})  # 600 batches and 1
    sampler = MultitaskBatchSampler(data, "train", 5, mode="all", seed=0)
    assert long_epoch_note(sampler, micro_steps=1) is None  # max_steps 1: nothing repeats
    note = long_epoch_note(sampler, micro_steps=50)
    assert note is not None and "'small' (1 batch(es)) ~50 times in the run's 50 batches" in note
    assert "~600 times per epoch" in long_epoch_note(sampler, micro_steps=5000)


def test_a_fixed_epoch_length_names_the_tasks_it_repeats(make_data) -> None:
    data = make_data({"a": [8] * 30, "b": [8] * 20})  # 6 and 4 batches
    note = long_epoch_note(MultitaskBatchSampler(data, "train", 5, mode="all", stop=20, seed=0))
    assert note is not None and "lasts 20 batches (sampler.stop: 20), so smaller tasks repeat" in note
    assert "'b' (4 batch(es)) 5.0 times" in note and "'a' (6 batch(es)) 3.3 times" in note
    assert long_epoch_note(MultitaskBatchSampler(data, "train", 5, mode="all", stop=6, seed=0)) is None  # b: 1.5 times
