"""Token budgets for multiple-choice rows with different numbers of choices in one batch.

The collator pads every row to the batch's most choices (one-token stand-in choices) and every
choice to the longest one, so a padded batch is ``rows x most choices x longest choice`` token
slots; a padding-free one computes the real tokens plus one token per stand-in. Budgets count
exactly that, through :class:`MultitaskBatchSampler` with task data that reports
``choice_counts``.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from mtcore.data.collate import Collator
from mtcore.sampling import MultitaskBatchSampler
from mtcore.sampling.batching import OversizeExampleWarning


class ChoiceTaskData:
    """Multiple-choice task data like ``TaskData``: rows of token ids, a real collator, lengths,
    ``batching_lengths`` (choices x longest choice, rounded per choice) and ``choice_counts``."""

    def __init__(self, shapes, *, pad_to_multiple_of=None, padding_free=False, name="mc", counts=True):
        self.task = SimpleNamespace(id=name, name=name, evaluate_only=False)
        rows = []
        for i, choice_lengths in enumerate(shapes):
            ids = [[101] + [5 + j] * (n - 1) for j, n in enumerate(choice_lengths)]
            rows.append({"idx": i, "input_ids": ids, "labels": 0})
        self.splits = {"train": rows}
        self.collator = Collator(0, "multiple_choice", pad_to_multiple_of=pad_to_multiple_of, uses_token_type_ids=False,
                                 padding_free=padding_free)
        self._real = [sum(n) for n in shapes]
        m = pad_to_multiple_of or 1
        self._slots = [len(n) * (-(-max(n) // m) * m) for n in shapes]
        self._counts = [len(n) for n in shapes]
        if not counts:
            self.choice_counts = lambda split: None

    def lengths(self, split):
        return self._real

    def batching_lengths(self, split):
        return self._slots

    def choice_counts(self, split):
        return np.array(self._counts)


def mixed_shapes(n=300, seed=0, counts=(2, 3, 5), lengths=(3, 40)):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(lengths[0], lengths[1] + 1, size=int(rng.choice(counts)))) for _ in range(n)]


def _padded_size(batch):
    return batch.data["input_ids"].numel()


@pytest.mark.parametrize("pad", [None, 8])
@pytest.mark.parametrize("grouped", [True, False])
def test_padded_batches_with_mixed_choice_counts_never_exceed_the_budget(pad, grouped):
    budget = 400
    data = {"mc": ChoiceTaskData(mixed_shapes(), pad_to_multiple_of=pad)}
    batches = list(MultitaskBatchSampler(data, token_budget=budget, group_by_length=grouped, seed=3))
    assert sorted(i for b in batches for i in b.idx) == list(range(300))
    assert max(b.size for b in batches) > 1
    mixed = 0
    for batch in batches:
        ids = batch.data["input_ids"]
        assert _padded_size(batch) <= budget, tuple(ids.shape)
        if "choice_mask" in batch.data:
            mixed += 1
    assert mixed > 0  # batches do mix choice counts: the padded choices are counted, not avoided


def test_rows_that_fit_by_choices_x_longest_are_not_batched_when_padding_breaks_the_budget():
    # 5 choices of 10 and 2 choices of 25: 50 slots each, but together (2, 5, 25) = 250 slots
    data = {"mc": ChoiceTaskData([[10] * 5, [25, 25], [10] * 5, [25, 25]])}
    sampler = MultitaskBatchSampler(data, token_budget=100, shuffle=False, group_by_length=False)
    batches = list(sampler)
    assert all(_padded_size(b) <= 100 for b in batches)
    assert [b.idx for b in batches] == [[0], [1], [2], [3]]


def test_grouping_puts_rows_with_the_same_number_of_choices_together():
    budget = 600
    data = {"mc": ChoiceTaskData(mixed_shapes(600, seed=4))}
    batches = list(MultitaskBatchSampler(data, token_budget=budget, seed=0))
    assert sum("choice_mask" in b.data for b in batches) <= len(batches) // 4
    assert all(_padded_size(b) <= budget for b in batches)
    # most slots hold tokens of real choices: rows are sorted by choices, then by longest choice
    real = sum(int(b.data["attention_mask"].sum()) for b in batches)
    assert real / sum(_padded_size(b) for b in batches) > 0.6


def test_a_row_over_the_budget_alone_keeps_its_own_batch_and_warns():
    shapes = mixed_shapes(60, seed=1, counts=(2, 3))
    shapes[7] = [90, 90, 90, 90]  # 360 slots, budget 200
    with pytest.warns(OversizeExampleWarning, match=r"1 example\(s\) are longer than token_budget 200 \(longest 360 padded"):
        sampler = MultitaskBatchSampler({"mc": ChoiceTaskData(shapes)}, token_budget=200, seed=2)
    batches = list(sampler)
    assert [b.idx for b in batches if 7 in b.idx] == [[7]]
    assert all(_padded_size(b) <= 200 for b in batches if 7 not in b.idx)
    with warnings.catch_warnings():  # a row that fits alone is no oversize row, whatever its choice count
        warnings.simplefilter("error")
        MultitaskBatchSampler({"mc": ChoiceTaskData(mixed_shapes(60, seed=1))}, token_budget=200)


@pytest.mark.parametrize("grouped", [True, False])
def test_padding_free_budgets_count_real_tokens_and_one_per_stand_in_choice(grouped):
    budget = 300
    shapes = mixed_shapes(300, seed=5, counts=(2, 6), lengths=(2, 12))
    data = {"mc": ChoiceTaskData(shapes, padding_free=True, pad_to_multiple_of=8)}
    batches = list(MultitaskBatchSampler(data, token_budget=budget, group_by_length=grouped, seed=1))
    assert sorted(i for b in batches for i in b.idx) == list(range(300))
    stand_ins = 0
    for batch in batches:
        computed = int(batch.data["token_index"].numel())  # what the encoder computes
        mask = batch.data.get("choice_mask")
        padding = 0 if mask is None else int((~mask).sum())
        assert batch.num_tokens == sum(sum(shapes[i]) for i in batch.idx)  # num_tokens: real tokens only
        assert computed == batch.num_tokens + padding  # one token per stand-in choice
        assert computed <= budget
        stand_ins += padding
    assert stand_ins > 0


def test_batch_cost_is_the_collated_size():
    from mtcore.sampling.batching import batch_cost

    shapes = [[7, 3], [4, 9, 2, 5], [12, 1, 1]]
    for pad in (None, 8):
        task = ChoiceTaskData(shapes, pad_to_multiple_of=pad)
        collated = task.collator(task.splits["train"])
        assert batch_cost(task.batching_lengths("train"), task.choice_counts("train"), pad) == collated["input_ids"].numel()
        packed = ChoiceTaskData(shapes, padding_free=True).collator(task.splits["train"])
        assert batch_cost(task.lengths("train"), task.choice_counts("train"), packed=True) == packed["token_index"].numel()


def test_resume_is_exact_with_mixed_choice_counts_under_a_budget():
    data = {"mc": ChoiceTaskData(mixed_shapes(200, seed=6)), "other": ChoiceTaskData(mixed_shapes(90, seed=7, counts=(4,)), name="other")}
    full = [(name, rows.tolist()) for name, rows in MultitaskBatchSampler(data, token_budget=300, seed=9).iter_indices()]
    first = MultitaskBatchSampler(data, token_budget=300, seed=9)
    iterator = first.iter_indices()
    head = [(name, rows.tolist()) for name, rows in (next(iterator) for _ in range(len(full) // 3))]
    fresh = MultitaskBatchSampler(data, token_budget=300)
    fresh.load_state_dict(first.state_dict())
    assert head + [(name, rows.tolist()) for name, rows in fresh.iter_indices()] == full


@pytest.mark.parametrize("packed", [False, True])
def test_one_choice_count_gives_the_batches_it_gave_without_choice_counts(packed):
    shapes = mixed_shapes(250, seed=8, counts=(3,))
    with_counts = ChoiceTaskData(shapes, pad_to_multiple_of=8, padding_free=packed)
    without = ChoiceTaskData(shapes, pad_to_multiple_of=8, padding_free=packed, counts=False)
    a = [b.idx for b in MultitaskBatchSampler({"mc": with_counts}, token_budget=500, seed=4)]
    b = [b.idx for b in MultitaskBatchSampler({"mc": without}, token_budget=500, seed=4)]
    assert a == b and len(a) > 1


def test_choice_counts_of_the_wrong_length_are_a_data_error():
    from mtcore.errors import DataError

    task = ChoiceTaskData(mixed_shapes(20))
    task.choice_counts = lambda split: np.array([2, 3])
    with pytest.raises(DataError, match=r"choice_counts\('train'\) has 2 entries but the split has 20 rows"):
        MultitaskBatchSampler({"mc": task}, token_budget=200)
