"""Audit of the task samplers against their definitions, epoch accounting and exact resume.

Every random draw is seeded, so the statistical tolerances below cannot flake: they are there
so that a correct formula passes for any seed, and a wrong one fails.
"""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from mtcore.errors import ConfigError
from mtcore.plugins import get_component
from mtcore.sampling.batch_sampler import MultitaskBatchSampler
from mtcore.sampling.batching import OversizeExampleWarning

SAMPLERS = {
    "proportional": None,
    "temperature": {"temperature": 3.0},
    "uniform": None,
    "round_robin": None,
    "annealed": None,
    "fixed": {"weights": {"tiny": 1, "mid": 2, "big": 3}},
}


def _stream(sampler: MultitaskBatchSampler, steps: int) -> list[str]:
    """``steps`` items across epochs, as the training loop draws them (a full pass moves to the next epoch)."""
    out: list[str] = []
    while len(out) < steps:
        for item in sampler.iter_indices():
            pairs = item if isinstance(item, list) else [item]
            out.append(json.dumps([(name, [int(i) for i in rows]) for name, rows in pairs]))
            if len(out) == steps:
                break
    return out


@pytest.fixture
def uneven(make_data):
    """3 rows (under one batch), 97 rows and 400 rows."""
    rng = np.random.default_rng(4)
    lengths = {"tiny": [5, 40, 7], "mid": rng.integers(5, 60, 97), "big": rng.integers(5, 60, 400)}

    def build(packed: bool = False):
        data = make_data(lengths)
        if packed:
            for td in data.values():
                td.collator = SimpleNamespace(pad_to_multiple_of=None, padding_free=True)
        return data

    return build


BATCHINGS = {
    "rows": {"batch_size": 8},
    "budget": {"token_budget": 120},
    "budget-ungrouped": {"token_budget": 120, "group_by_length": False},
    "budget-padding-free": {"token_budget": 120, "packed": True},
    "drop-last": {"batch_size": 3, "drop_last": True},
    "all": {"batch_size": 8, "mode": "all"},
}


@pytest.mark.parametrize("batching", sorted(BATCHINGS))
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_resume_anywhere_across_epochs_matches_the_uninterrupted_stream(uneven, name, batching):
    """Mid-epoch, at an epoch's last step, at the next epoch's first step, while annealing."""
    options = dict(BATCHINGS[batching])
    packed = options.pop("packed", False)

    def make():
        return MultitaskBatchSampler(uneven(packed), sampler=name, sampler_options=SAMPLERS[name], num_epochs=3, seed=5, **options)

    lengths = [make().steps_in_epoch(e) for e in range(3)]
    total = sum(lengths)
    assert total == make().total_steps()
    full = _stream(make(), total)
    for cut in sorted({1, lengths[0] // 2, lengths[0] - 1, lengths[0], lengths[0] + 1, lengths[0] + lengths[1] // 2, total - 1}):
        first = make()
        head = _stream(first, cut)
        resumed = make()
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
        assert head + _stream(resumed, total - cut) == full, (cut, lengths)


def test_a_state_saved_for_other_row_counts_is_refused_in_one_line(make_data):
    data = make_data({"a": range(1, 100), "b": range(1, 30)})
    saved = MultitaskBatchSampler(data, batch_size=4, seed=1)
    _stream(saved, 5)
    state = json.loads(json.dumps(saved.state_dict()))
    changed = MultitaskBatchSampler(make_data({"a": range(1, 80), "b": range(1, 30)}), batch_size=4, seed=1)
    with pytest.raises(ConfigError) as info:
        changed.load_state_dict(state)
    message = str(info.value)
    assert "\n" not in message and "'a'" in message and "99" in message and "79" in message and "same training data" in message
    # the task sampler alone refuses too
    sampler = get_component("sampler", "proportional")({"a": 79, "b": 29}, seed=1)
    with pytest.raises(ConfigError, match="'a' with 99 examples"):
        sampler.load_state_dict(state["sampler"])


def test_a_state_saved_with_other_batching_or_sampler_warns_and_same_settings_do_not(make_data):
    data = make_data({"a": range(1, 100), "b": range(1, 30)})
    saved = MultitaskBatchSampler(data, batch_size=4, seed=1)
    _stream(saved, 5)
    state = json.loads(json.dumps(saved.state_dict()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MultitaskBatchSampler(data, batch_size=4, seed=1).load_state_dict(state)
    with pytest.warns(UserWarning, match="other batching settings.*sampler='proportional'"):
        MultitaskBatchSampler(data, batch_size=8, sampler="uniform", seed=1).load_state_dict(state)
    old = {k: v for k, v in state.items() if k not in ("rows", "tokens", "batching")}  # a checkpoint from before
    resumed = MultitaskBatchSampler(data, batch_size=4, seed=1)
    resumed.load_state_dict(old)
    assert resumed.step == 5


def _epoch_frequencies(sampler: MultitaskBatchSampler) -> tuple[np.ndarray, int]:
    tasks = [name for name, _ in sampler.iter_indices()]
    return np.array([tasks.count(t) for t in sampler.tasks]) / len(tasks), len(tasks)


@pytest.mark.parametrize("name,options,expected", [
    ("proportional", None, lambda n, e: n),
    ("temperature", {"temperature": 1.0}, lambda n, e: n),
    ("temperature", {"temperature": 4.0}, lambda n, e: n ** 0.25),
    ("temperature", {"temperature": 1e9}, lambda n, e: np.ones_like(n)),
    ("uniform", None, lambda n, e: np.ones_like(n)),
    ("annealed", None, lambda n, e: n ** (1 - 0.8 * e / 3)),  # num_epochs 4: alpha 1, 0.733, 0.467, 0.2
    ("fixed", {"weights": {"a": 0, "b": 1, "c": 3}}, lambda n, e: np.array([0.0, 1.0, 3.0])),
])
def test_task_frequencies_in_each_epoch_follow_the_definition(make_data, name, options, expected):
    n = np.array([600.0, 2400.0, 9600.0])
    data = make_data({t: np.full(int(size), 9) for t, size in zip("abc", n)})
    sampler = MultitaskBatchSampler(data, batch_size=1, sampler=name, sampler_options=options, num_epochs=4, seed=2,
                                    group_by_length=False)
    for epoch in range(4):
        target = expected(n, epoch)
        target = target / target.sum()
        assert np.allclose(sampler.sampler.normalized_probabilities(epoch), target, atol=1e-7)
        freq, steps = _epoch_frequencies(sampler)
        tolerance = 5 * np.sqrt(target * (1 - target) / steps) + 1e-12  # 5 standard errors
        assert np.all(np.abs(freq - target) <= tolerance), (epoch, freq, target)
        assert sampler.epoch == epoch + 1


def test_round_robin_takes_every_task_in_turn_until_the_largest_is_through(make_data):
    data = make_data({"a": np.full(3, 9), "b": np.full(40, 9), "c": np.full(17, 9)})
    sampler = MultitaskBatchSampler(data, batch_size=4, sampler="round_robin", group_by_length=False)
    tasks = [name for name, _ in sampler.iter_indices()]
    assert tasks == ["a", "b", "c"] * 9 + ["a", "b"]  # b has 10 batches: the epoch ends with its last one


def test_a_low_temperature_sharpens_towards_the_largest_task_without_overflow():
    sizes = {"small": 400, "large": 39270}
    sampler = get_component("sampler", "temperature")(sizes, seed=0, temperature=0.01)
    p = sampler.normalized_probabilities()
    expected_small = 1 / (1 + (39270 / 400) ** 100)  # (n_s / n_l) ** (1/T), normalised
    assert p[1] == pytest.approx(1.0) and 0 <= p[0] <= expected_small * 1.000001
    assert np.bincount(sampler.choose(0, 1000), minlength=2).tolist() == [0, 1000]


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_row_of_every_task_is_seen_in_each_epoch_and_total_steps_is_what_runs(uneven, name):
    """stop='largest': each task goes through all its batches at least once per epoch (smaller
    ones restart with a fresh order); total_steps() is exactly what iteration yields."""
    data = uneven()
    sampler = MultitaskBatchSampler(data, batch_size=8, sampler=name, sampler_options=SAMPLERS[name], num_epochs=3, seed=9)
    planned = sampler.total_steps()
    ran = 0
    for _ in range(3):
        seen = {t: set() for t in data}
        for task, rows in sampler.iter_indices():
            seen[task].update(int(i) for i in rows)
            ran += 1
        assert {t: len(rows) for t, rows in seen.items()} == {t: len(td.splits["train"]) for t, td in data.items()}
    assert ran == planned


def test_a_task_with_fixed_weight_zero_is_never_drawn_and_does_not_hold_up_the_epoch(uneven):
    sampler = MultitaskBatchSampler(uneven(), batch_size=8, sampler="fixed", sampler_options={"weights": {"tiny": 0, "mid": 1, "big": 1}})
    tasks = [name for name, _ in sampler.iter_indices()]
    assert "tiny" not in tasks and tasks.count("big") >= 50 and tasks.count("mid") >= 13


def test_rows_longer_than_the_token_budget_get_a_batch_each_with_one_warning(make_data):
    data = make_data({"a": [10, 20, 30, 2], "b": [5, 5]})
    with pytest.warns(OversizeExampleWarning) as record:
        sampler = MultitaskBatchSampler(data, token_budget=8, seed=0)
    assert len(record) == 1 and "task 'a': 3 example(s)" in str(record[0].message)
    seen = {"a": [], "b": []}
    for task, rows in sampler.iter_indices():
        seen[task].append(sorted(int(i) for i in rows))
    assert all(len(r) == 1 for r in seen["a"]) and {i for r in seen["a"] for i in r} == {0, 1, 2, 3}


def test_annealed_max_steps_runs_exactly_the_epochs_its_schedule_spans(make_data):
    """With schedule.max_steps the engine sizes annealing's epoch count E from epoch lengths that depend on E; it
    settles on an E whose epochs hold max_steps (30/300/3000 rows: E=5 was planned and 6 epochs ran, the last at
    the clamped alpha)."""
    from mtcore.train.steps import build_sampler

    rng = np.random.default_rng(0)
    data = make_data({name: rng.integers(5, 60, n) for name, n in (("small", 30), ("mid", 300), ("big", 3000))})
    config = SimpleNamespace(schedule=SimpleNamespace(epochs=3, max_steps=3000), seed=0, sampler=SimpleNamespace(stop="largest"),
                             optimizer=SimpleNamespace(gradient_accumulation_steps=1),
                             batching=SimpleNamespace(batch_size=8, group_by_length=False, max_tokens=None, max_rows=None))
    plan = SimpleNamespace(config=config, tasks=[], sampler_cls="annealed", sampler_options={}, mode="single")
    sampler = build_sampler(plan, data, SimpleNamespace(process_index=0, num_processes=1))
    lengths = [sampler.steps_in_epoch(e) for e in range(sampler.num_epochs)]
    assert sum(lengths[:-1]) < 3000 <= sum(lengths), (sampler.num_epochs, lengths)


def test_an_epoch_held_up_by_a_rarely_drawn_task_gets_a_note_naming_it(make_data):
    """3 rows next to 10,000 under proportional: the epoch lasts until the 3-row task has been drawn (p=0.0003),
    several times the batches it holds; mt train and mt check say so, and what to do."""
    from mtcore.train.steps import long_epoch_note

    rng = np.random.default_rng(0)
    data = make_data({"big": rng.integers(5, 60, 10_000), "tiny": [5, 9, 7]})
    sampler = MultitaskBatchSampler(data, "train", 8, sampler="proportional", seed=1)
    held = sum(sampler.batches_in_epoch().values())
    assert sampler.batches_in_epoch() == {"big": 1250, "tiny": 1}
    steps = sampler.steps_in_epoch(0)
    note = long_epoch_note(sampler)
    if steps > 2 * held:
        assert note is not None and f"an epoch draws {steps} batches for {held} batches" in note and "'tiny' (1 batch(es))" in note
        assert "schedule.max_steps" in note
    else:
        assert note is None
    assert any(long_epoch_note(MultitaskBatchSampler(data, "train", 8, sampler="proportional", seed=s)) for s in range(6))
    assert long_epoch_note(MultitaskBatchSampler(data, "train", 8, sampler="uniform", seed=1)) is None


def test_the_long_epoch_note_names_only_samplers_whose_epoch_is_shorter_here(make_data):
    """With 48 tasks the note suggested uniform, whose epoch was longer (6,630 against proportional's 5,913 batches;
    a scale audit): it now names the samplers that shorten this epoch, with their lengths."""
    from mtcore.train.steps import _other_samplers, long_epoch_note

    rng = np.random.default_rng(0)
    sizes = {"big": 4000, **{f"t{i:02d}": 40 for i in range(46)}, "tiny": 1}  # uniform: 48 x big's 500 batches
    data = make_data({name: rng.integers(5, 60, n) for name, n in sizes.items()})
    sampler, note = next((s, n) for s in (MultitaskBatchSampler(data, "train", 8, sampler="proportional", seed=seed) for seed in range(20))
                         if (n := long_epoch_note(s)) is not None)
    others = _other_samplers(sampler)
    steps = sampler.steps_in_epoch(0)
    assert set(others) == {"temperature", "uniform"}
    for name, length in others.items():
        assert (f"{name} {length}" in note) == (length < steps), (name, length, steps, note)
    assert others["uniform"] > steps and "uniform" not in note
    for name, length in others.items():  # the counts are those samplers' own epochs
        assert MultitaskBatchSampler(data, "train", 8, sampler=name, seed=sampler.seed).steps_in_epoch(0) == length


def test_annealed_max_steps_without_a_fixed_epoch_count_still_reaches_the_last_epochs_odds(make_data):
    """E epochs that cover max_steps only as E + 1, and E + 1 that cover it as E: the count flipped between the two and
    kept E + 1, so the run stopped an epoch before the annealing's last odds (an audit: 21 of 320 step counts)."""
    from mtcore.train.steps import build_sampler

    rng = np.random.default_rng(0)
    data = make_data({name: rng.integers(5, 60, n) for name, n in (("a", 80), ("b", 80), ("c", 60), ("d", 150))})
    config = SimpleNamespace(schedule=SimpleNamespace(epochs=3, max_steps=None), seed=42, sampler=SimpleNamespace(stop="largest"),
                             optimizer=SimpleNamespace(gradient_accumulation_steps=1),
                             batching=SimpleNamespace(batch_size=16, group_by_length=True, max_tokens=None, max_rows=None))
    plan = SimpleNamespace(config=config, tasks=[], sampler_cls="annealed", sampler_options={}, mode="single")
    short = []
    for max_steps in range(80, 400, 2):
        config.schedule.max_steps = max_steps
        sampler = build_sampler(plan, data, SimpleNamespace(process_index=0, num_processes=1))
        lengths = [sampler.steps_in_epoch(e) for e in range(sampler.num_epochs)]
        if sum(lengths[:-1]) >= max_steps:  # the run ends before its last epoch, E - 1
            short.append((max_steps, lengths))
    assert short == []
