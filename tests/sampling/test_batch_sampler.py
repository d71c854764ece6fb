"""MultitaskBatchSampler: stop rules, cycles, resume from any step, ranks, errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from mtcore.errors import ConfigError, DataError
from mtcore.sampling.batch_sampler import MultitaskBatchSampler


def _plan(sampler, limit=None):
    """(task, rows) per step (a list of them per step in mode "all"), rows as tuples."""
    out = []
    for item in sampler.iter_indices():
        pairs = item if sampler.mode == "all" else [item]
        out.append([(name, tuple(int(i) for i in rows)) for name, rows in pairs])
        if limit is not None and len(out) == limit:
            break
    return out


@pytest.mark.parametrize("mode", ["single", "all"])
@pytest.mark.parametrize("stop", ["largest", "smallest", 70])
@pytest.mark.parametrize("sampler_name", ["proportional", "temperature", "round_robin"])
def test_resume_from_a_mid_epoch_state_yields_exactly_the_rest(small_data, mode, stop, sampler_name):
    kwargs = dict(mode=mode, stop=stop, sampler=sampler_name, seed=11, epoch=1, num_epochs=3)
    full = _plan(MultitaskBatchSampler(small_data, "train", 4, **kwargs))
    assert len(full) == len(MultitaskBatchSampler(small_data, "train", 4, **kwargs))
    for cut in sorted({0, 1, 7, len(full) // 2, len(full) - 1, len(full)} & set(range(len(full) + 1))):
        first = MultitaskBatchSampler(small_data, "train", 4, **kwargs)
        head = _plan(first, limit=cut) if cut else []
        state = json.loads(json.dumps(first.state_dict()))
        fresh = MultitaskBatchSampler(small_data, "train", 4, mode=mode, stop=stop, sampler=sampler_name, num_epochs=3)
        fresh.load_state_dict(state)
        assert head + _plan(fresh) == full, cut
        assert fresh.epoch == 2 and fresh.step == 0  # finished the epoch, moved to the next


def test_resume_with_token_budget_and_into_the_next_epoch(small_data):
    kwargs = dict(token_budget=150, sampler="uniform", seed=3)
    reference = MultitaskBatchSampler(small_data, **kwargs)
    epoch0, epoch1 = _plan(reference), _plan(reference)
    assert epoch0 != epoch1 and reference.epoch == 2
    first = MultitaskBatchSampler(small_data, **kwargs)
    _plan(first, limit=len(epoch0) - 3)
    fresh = MultitaskBatchSampler(small_data, **kwargs)
    fresh.load_state_dict(first.state_dict())
    assert _plan(fresh) == epoch0[-3:] and _plan(fresh) == epoch1


def test_interrupted_iteration_continues_and_state_changes_are_picked_up(small_data):
    sampler = MultitaskBatchSampler(small_data, batch_size=4, seed=5)
    full = _plan(MultitaskBatchSampler(small_data, batch_size=4, seed=5))
    iterator = sampler.iter_indices()
    head = [next(iterator) for _ in range(10)]
    state = sampler.state_dict()
    next(iterator)
    sampler.load_state_dict(state)  # rewind underneath a live iterator
    rest = [(n, tuple(int(i) for i in r)) for n, r in iterator]
    assert [[(n, tuple(int(i) for i in r))] for n, r in head] + [[x] for x in rest] == full


@pytest.mark.parametrize("mode", ["single", "all"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_two_ranks_share_tasks_read_disjoint_rows_and_stop_together(small_data, mode, drop_last):
    ranks = [MultitaskBatchSampler(small_data, batch_size=4, mode=mode, seed=9, rank=r, world_size=2, drop_last=drop_last)
             for r in range(2)]
    lengths = [len(s) for s in ranks]
    plans = [_plan(s) for s in ranks]
    assert len(plans[0]) == len(plans[1]) == lengths[0] == lengths[1] > 0
    for step0, step1 in zip(*plans):
        assert [name for name, _ in step0] == [name for name, _ in step1]
        for (_, rows0), (_, rows1) in zip(step0, step1):
            assert not set(rows0) & set(rows1)
    seen = {name: Counter() for name in small_data}
    for plan in plans:
        for step in plan:
            for name, rows in step:
                seen[name].update(rows)
    for name, td in small_data.items():
        n = len(td.lengths("train"))
        if drop_last:
            assert len(seen[name]) >= n - 2 * 4 * 2  # at most the short batch and one round dropped per cycle
        else:
            assert set(seen[name]) == set(range(n))


def test_ranks_of_an_evenly_divisible_cycle_read_each_example_exactly_once(make_data):
    data = make_data({"a": np.arange(64) % 9 + 1, "b": np.arange(32) % 5 + 1})
    ranks = [_plan(MultitaskBatchSampler(data, batch_size=4, mode="all", stop="smallest", seed=2, rank=r, world_size=2))
             for r in range(2)]
    rows_b = [rows for plan in ranks for step in plan for name, rows in step if name == "b"]
    assert sorted(i for rows in rows_b for i in rows) == list(range(32))


@pytest.mark.parametrize("options", [{}, {"group_by_length": False}, {"token_budget": 120}, {"shuffle": False}])
def test_every_example_is_seen_once_per_cycle(small_data, options):
    sampler = MultitaskBatchSampler(small_data, batch_size=5, mode="all", stop=100, seed=4, **options)
    per_task = {name: [] for name in small_data}
    for step in _plan(sampler):
        for name, rows in step:
            per_task[name].append(rows)
    for name, batches in per_task.items():
        n = len(small_data[name].lengths("train"))
        done, cycles = 0, 0
        while done < len(batches):
            cycle, count = [], 0
            while count < n:
                cycle.append(batches[done])
                count += len(batches[done])
                done += 1
                if done == len(batches):
                    break
            rows = [i for rows in cycle for i in rows]
            if count >= n:
                assert sorted(rows) == list(range(n)), (name, cycles)
                cycles += 1
            else:
                assert len(set(rows)) == len(rows)
        assert cycles >= 1
    assert len(per_task["tiny"]) == 100  # the tiny task ran out many times without a crash


def test_stop_rules_and_lengths(small_data):
    batches = {"big": 60, "mid": 25, "tiny": 4}
    assert len(MultitaskBatchSampler(small_data, batch_size=4, mode="all")) == 60
    assert len(MultitaskBatchSampler(small_data, batch_size=4, mode="all", stop="smallest")) == 4
    plan = _plan(MultitaskBatchSampler(small_data, batch_size=4, sampler="uniform", seed=1))
    counts = Counter(step[0][0] for step in plan)
    assert all(counts[name] >= batches[name] for name in batches)  # every task got through all its batches
    smallest = _plan(MultitaskBatchSampler(small_data, batch_size=4, sampler="uniform", seed=1, stop="smallest"))
    once = Counter(step[0][0] for step in smallest)
    assert any(once[name] == batches[name] for name in batches) and all(once[n] <= batches[n] for n in batches)
    assert len(MultitaskBatchSampler(small_data, stop=123)) == 123


def test_seed_positional_call_and_defaults(rsg_data):
    sampler = MultitaskBatchSampler(rsg_data, "train", batch_size=12)
    plan = _plan(sampler)
    assert len(plan) == len(MultitaskBatchSampler(rsg_data, "train", batch_size=12)) > 0
    assert {len(rows) for step in plan for _, rows in step} <= set(range(1, 13))
    assert sampler.epoch == 1 and _plan(sampler) != plan  # the next epoch has a new order
    assert sampler.total_steps() == len(plan)


def test_padding_efficiency_with_grouping_on_an_rsg_like_mix(rsg_data):
    def efficiency(**options):
        sampler = MultitaskBatchSampler(rsg_data, batch_size=12, seed=0, **options)
        real = slots = 0
        for name, rows in sampler.iter_indices():
            lengths = np.asarray(rsg_data[name].lengths("train"))[rows]
            real, slots = real + int(lengths.sum()), slots + len(rows) * int(lengths.max())
        return real / slots

    assert efficiency(group_by_length=True) >= 0.95 > efficiency(group_by_length=False)
    assert efficiency(token_budget=2048) >= 0.95


def test_batch_sizes_per_task_and_evaluate_only_tasks(make_data):
    data = make_data({"a": [5] * 40, "b": [7] * 40, "diag": [3] * 40}, evaluate_only={"diag"})
    sampler = MultitaskBatchSampler(data, batch_size=4, batch_sizes={"b": 10}, mode="all")
    assert sampler.tasks == ["a", "b"]
    step = next(iter(sampler.iter_indices()))
    assert [(name, len(rows)) for name, rows in step] == [("a", 4), ("b", 10)]
    assert "diag" in MultitaskBatchSampler(data, "train", 4).data
    with pytest.raises(ConfigError, match="every task is evaluate_only"):
        MultitaskBatchSampler(make_data({"diag": [3] * 4}, evaluate_only={"diag"}))


def test_set_epoch_restarts_unless_already_there(small_data):
    sampler = MultitaskBatchSampler(small_data, batch_size=4, num_epochs=2)
    _plan(sampler, limit=5)
    sampler.set_epoch(0)
    assert sampler.step == 5
    sampler.set_epoch(1)
    assert sampler.step == 0 and sampler.sampler.epoch == 1


def _error(exc, fn):
    with pytest.raises(exc) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_user_mistakes_are_one_line_errors(small_data, make_data):
    assert "did you mean 'single'" in _error(ConfigError, lambda: MultitaskBatchSampler(small_data, mode="singel"))
    assert "did you mean 'largest'" in _error(ConfigError, lambda: MultitaskBatchSampler(small_data, stop="largets"))
    assert "did you mean 'tiny'" in _error(ConfigError, lambda: MultitaskBatchSampler(small_data, batch_sizes={"tiyn": 2}))
    assert "no split 'validation'" in _error(ConfigError, lambda: MultitaskBatchSampler(small_data, "validation"))
    assert "drop_last=True" in _error(ConfigError, lambda: MultitaskBatchSampler(small_data, batch_size=20, drop_last=True))
    assert "rank must be" in _error(ConfigError, lambda: MultitaskBatchSampler(small_data, rank=2, world_size=2))
    assert "set token_budget too" in _error(ConfigError, lambda: MultitaskBatchSampler(small_data, max_rows=4))
    assert "unknown option" in _error(ConfigError, lambda: MultitaskBatchSampler(small_data, sampler_options={"tempreature": 2}))
    assert "no examples" in _error(DataError, lambda: MultitaskBatchSampler(make_data({"e": []})))
    never = dict(sampler="fixed", sampler_options={"weights": {"big": 1, "mid": 1, "tiny": 0}})
    assert len(MultitaskBatchSampler(small_data, **never)) > 0  # weight 0: never drawn, never waited for
    other = MultitaskBatchSampler(make_data({"x": [1] * 9}))
    assert "same tasks" in _error(ConfigError, lambda: other.load_state_dict(MultitaskBatchSampler(small_data).state_dict()))


def test_plugin_samplers_are_found_by_name(small_data):
    from mtcore.plugins import register_component
    from mtcore.sampling.base import Sampler

    class OnlyFirst(Sampler):
        name = "only_first_test"

        def probabilities(self, epoch):
            return [1.0] + [0.0] * (len(self.tasks) - 1)

    register_component("sampler", "only_first_test", OnlyFirst)
    plan = _plan(MultitaskBatchSampler(small_data, batch_size=4, sampler="only_first_test"))
    assert {step[0][0] for step in plan} == {"big"} and len(plan) == 60


@pytest.mark.parametrize("mode", ["single", "all"])
def test_a_state_saved_exactly_at_the_end_of_an_epoch_resumes_into_the_next_one(small_data, mode):
    """The training loop's stream (batch_stream) after a checkpoint taken on the last step of an
    epoch goes on with the next epoch, not the one after it."""
    from mtcore.train.loop import batch_stream

    class Indices:  # the sampler's iteration without reading rows (the small data have no collator)
        def __init__(self, sampler):
            self.sampler = sampler

        def __iter__(self):
            return self.sampler.iter_indices()

    def names(item):
        return [(task, list(map(int, rows))) for task, rows in (item if isinstance(item, list) else [item])]

    live = MultitaskBatchSampler(small_data, batch_size=4, seed=7, mode=mode)
    stream = batch_stream(Indices(live))
    for _ in range(len(live)):  # the whole of epoch 0
        next(stream)
    state = live.state_dict()
    assert (state["epoch"], state["step"]) == (0, len(live))
    expected = [names(next(stream)) for _ in range(5)]
    assert live.epoch == 1
    restored = MultitaskBatchSampler(small_data, batch_size=4, seed=7, mode=mode)
    restored.load_state_dict(state)
    resumed = batch_stream(Indices(restored))
    assert [names(next(resumed)) for _ in range(5)] == expected and restored.epoch == 1
