"""Batches of one task: random, length-grouped, token budget; deterministic from the generator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mtcore.errors import ConfigError
from mtcore.sampling.batching import (
    OversizeExampleWarning,
    check_token_budget,
    length_grouped_batches,
    padding_efficiency,
    random_batches,
    rng_for,
    token_budget_batches,
)


def _as_sorted_rows(batches):
    return sorted(int(i) for b in batches for i in b)


@pytest.mark.parametrize("drop_last", [False, True])
def test_random_and_grouped_batches_cover_each_row_once(drop_last):
    lengths = np.random.default_rng(0).integers(5, 300, size=103)
    for make in (lambda r: random_batches(103, 10, r, drop_last=drop_last),
                 lambda r: length_grouped_batches(lengths, 10, r, mega_batch=3, drop_last=drop_last)):
        batches = make(rng_for(0, 0, 1, 7, 0))
        rows = _as_sorted_rows(batches)
        if drop_last:
            assert all(len(b) == 10 for b in batches) and len(batches) == 10
            assert len(set(rows)) == 100
        else:
            assert rows == list(range(103))
            assert sorted(len(b) for b in batches)[0] == 3


def test_batches_are_a_function_of_the_seed_keys():
    lengths = np.arange(500) % 97 + 3
    a = length_grouped_batches(lengths, 8, rng_for(1, 2, 1, 3, 4))
    b = length_grouped_batches(lengths, 8, rng_for(1, 2, 1, 3, 4))
    c = length_grouped_batches(lengths, 8, rng_for(1, 2, 1, 3, 5))  # another cycle
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [x.tolist() for x in a] != [x.tolist() for x in c]


def test_grouping_sorts_within_mega_batches_and_shuffles_batch_order():
    lengths = np.random.default_rng(3).integers(10, 400, size=2000)
    batches = length_grouped_batches(lengths, 16, rng_for(0), mega_batch=50)
    maxima = [int(lengths[b].max()) for b in batches]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)
    grouped = padding_efficiency(lengths, batches)
    random = padding_efficiency(lengths, random_batches(len(lengths), 16, rng_for(0)))
    assert grouped >= 0.95 > random


def test_length_grouping_reaches_095_on_an_rsg_like_mix(rsg_lengths):
    real = slots = 0
    for name, lengths in rsg_lengths().items():
        batches = length_grouped_batches(lengths, 12, rng_for(0, 0, 1, len(name), 0))
        real += int(lengths.sum())
        slots += sum(len(b) * int(lengths[b].max()) for b in batches)
        assert padding_efficiency(lengths, batches) >= 0.95, name
    assert real / slots >= 0.95


@pytest.mark.parametrize("budget,pad", [(512, None), (1000, 8), (4096, None), (450, 16)])
def test_token_budget_is_never_exceeded(rsg_lengths, budget, pad):
    for seed in range(3):
        for name, lengths in rsg_lengths(seed).items():
            for grouped in (True, False):
                batches = token_budget_batches(lengths, budget, rng_for(seed), group_by_length=grouped, pad_to_multiple_of=pad)
                assert _as_sorted_rows(batches) == list(range(len(lengths)))
                padded = (lengths + (pad or 1) - 1) // (pad or 1) * (pad or 1)
                for b in batches:
                    assert len(b) * int(padded[b].max()) <= budget, (name, budget, pad)


@pytest.mark.parametrize("budget", [512, 4096])
def test_packed_token_budget_counts_real_tokens(rsg_lengths, budget):
    for name, lengths in rsg_lengths(1).items():
        for grouped in (True, False):
            padded = token_budget_batches(lengths, budget, rng_for(1), group_by_length=grouped)
            packed = token_budget_batches(lengths, budget, rng_for(1), group_by_length=grouped, pad_to_multiple_of=64, packed=True)
            assert _as_sorted_rows(packed) == list(range(len(lengths)))
            assert all(int(lengths[b].sum()) <= budget for b in packed), name
            # full batches: adding the next batch's first row would have broken the budget
            sums = [int(lengths[b].sum()) for b in packed]
            assert np.mean(sums[:-1]) > budget - int(lengths.max())
            if not grouped:  # random order: padded budgets waste slots, packed ones fill with real tokens
                assert len(packed) < len(padded)


def test_packed_budget_ignores_pad_to_multiple_of_and_warns_in_real_tokens():
    lengths = np.array([30, 30, 30, 30, 70])
    assert [b.tolist() for b in token_budget_batches(lengths, 60, None, group_by_length=False, pad_to_multiple_of=64, packed=True)] == [[0, 1], [2, 3], [4]]
    with pytest.warns(OversizeExampleWarning, match="longest 70 real tokens"):
        assert check_token_budget("x", lengths, 60, pad_to_multiple_of=64, packed=True) == 1


def test_token_budget_packs_many_rows_and_respects_max_rows():
    lengths = np.full(100, 10)
    batches = token_budget_batches(lengths, 100, None)
    assert [len(b) for b in batches] == [10] * 10
    assert {len(b) for b in token_budget_batches(lengths, 100, None, max_rows=4)} <= {4}


def test_an_example_longer_than_the_budget_gets_its_own_batch_and_a_warning():
    lengths = np.array([10, 10, 900, 10, 10, 10])
    batches = token_budget_batches(lengths, 64, rng_for(5))
    alone = [b.tolist() for b in batches if 2 in b.tolist()]
    assert alone == [[2]]
    assert all(len(b) * int(lengths[b].max()) <= 64 for b in batches if 2 not in b.tolist())
    with pytest.warns(OversizeExampleWarning, match=r"task 'x': 1 example\(s\) are longer than token_budget 64"):
        assert check_token_budget("x", lengths, 64) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_token_budget("x", lengths, 1000) == 0


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_sizes_are_one_line_config_errors(bad):
    with pytest.raises(ConfigError, match="batch size must be a positive integer") as info:
        random_batches(10, bad, None)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="token_budget"):
        token_budget_batches([1, 2], bad, None)
