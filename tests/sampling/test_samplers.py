"""Task samplers: frequencies follow each formula; choices are a resumable function of the step."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtcore.errors import ConfigError, UnknownNameError
from mtcore.plugins import get_component
from mtcore.sampling.base import Sampler

SIZES = {"rsg:danetqa": 1749, "rsg:terra": 2616, "rsg:parus": 400, "nli:xnli": 39270}
N = np.array(list(SIZES.values()), dtype=float)
STEPS = 200_000
#: Tolerance on each task's frequency over STEPS draws: the standard error is at most
#: sqrt(0.25 / 200000) ~= 0.0011, so 0.006 is over 5 standard errors.
TOL = 0.006


def _frequencies(sampler: Sampler) -> np.ndarray:
    return np.bincount(sampler.choose(0, STEPS), minlength=len(SIZES)) / STEPS


def _make(name: str, **options) -> Sampler:
    return get_component("sampler", name)(SIZES, seed=7, **options)


@pytest.mark.parametrize(
    "name,options,expected",
    [
        ("proportional", {}, N / N.sum()),
        ("uniform", {}, np.full(4, 0.25)),
        ("temperature", {"temperature": 2.0}, N ** 0.5 / (N ** 0.5).sum()),
        ("temperature", {"temperature": 3.0, "cap": 2000}, np.minimum(N, 2000) ** (1 / 3) / (np.minimum(N, 2000) ** (1 / 3)).sum()),
        ("temperature", {"temperature": 1.0}, N / N.sum()),
        ("fixed", {"weights": {"danetqa": 1, "terra": 2, "parus": 1, "xnli": 4}}, np.array([1, 2, 1, 4]) / 8),
    ],
)
def test_frequencies_match_the_formula(name, options, expected):
    sampler = _make(name, **options)
    assert np.allclose(sampler.normalized_probabilities(), expected, atol=1e-12)
    assert np.abs(_frequencies(sampler) - expected).max() < TOL


@pytest.mark.parametrize("num_epochs", [1, 4])
def test_annealed_follows_n_to_the_alpha_per_epoch(num_epochs):
    sampler = _make("annealed", num_epochs=num_epochs)
    for epoch in range(num_epochs + 1):  # one past the last: clamped to the last
        alpha = 1.0 if num_epochs == 1 else 1 - 0.8 * min(epoch, num_epochs - 1) / (num_epochs - 1)
        sampler.set_epoch(epoch)
        expected = N ** alpha / (N ** alpha).sum()
        assert np.abs(_frequencies(sampler) - expected).max() < TOL, (epoch, alpha)
    if num_epochs == 4:
        assert sampler.alpha(0) == 1.0 and abs(sampler.alpha(3) - 0.2) < 1e-12


def test_round_robin_takes_tasks_in_turn_and_skips_empty_ones():
    sampler = get_component("sampler", "round_robin")({"a": 5, "b": 0, "c": 9}, seed=3)
    assert [sampler.next_task() for _ in range(5)] == ["a", "c", "a", "c", "a"]
    assert sampler.choose(1000, 1003).tolist() == [0, 2, 0]


def test_a_task_without_examples_is_never_drawn():
    sampler = get_component("sampler", "uniform")({"a": 10, "b": 0, "c": 10}, seed=0)
    assert 1 not in set(sampler.choose(0, 20_000).tolist())


@pytest.mark.parametrize("name", ["proportional", "temperature", "uniform", "annealed", "round_robin"])
def test_choices_are_a_pure_function_of_seed_epoch_and_step(name):
    a, b = _make(name), _make(name)
    walked = [a.next_task() for _ in range(9000)]
    assert [b.tasks[i] for i in b.choose(0, 9000)] == walked
    assert b.choose(4000, 4100).tolist() == b.choose(0, 9000)[4000:4100].tolist()
    other_seed = get_component("sampler", name)(SIZES, seed=8)
    if name != "round_robin":
        assert other_seed.choose(0, 500).tolist() != b.choose(0, 500).tolist()
        b.set_epoch(1)
        assert b.choose(0, 500).tolist() != a.choose(0, 500).tolist()


def test_restored_sampler_continues_the_same_sequence():
    first = _make("temperature", temperature=3.0)
    first.set_epoch(2)
    for _ in range(5000):
        first.next_task()
    state = json.loads(json.dumps(first.state_dict()))
    fresh = _make("temperature", temperature=3.0)
    fresh.load_state_dict(state)
    assert [fresh.next_task() for _ in range(300)] == [first.next_task() for _ in range(300)]
    with pytest.raises(ConfigError, match="same tasks"):
        get_component("sampler", "uniform")({"x": 1}).load_state_dict(state)


def test_builtin_samplers_are_found_by_name_and_unknown_names_suggest():
    for name in ("proportional", "temperature", "uniform", "round_robin", "annealed", "fixed"):
        cls = get_component("sampler", name)
        assert issubclass(cls, Sampler) and cls.name == name
    with pytest.raises(UnknownNameError, match="did you mean 'temperature'"):
        get_component("sampler", "temprature")


def _one_line(info) -> str:
    text = str(info.value)
    assert "\n" not in text
    return text


def test_unknown_option_is_a_one_line_error_with_a_suggestion():
    with pytest.raises(ConfigError) as info:
        _make("temperature", temprature=2)
    assert "unknown option 'temprature' (did you mean 'temperature'?)" in _one_line(info)
    with pytest.raises(ConfigError, match="unknown option 'alpha'; it accepts: none"):
        _make("uniform", alpha=1)
    with pytest.raises(ConfigError, match="'temperature' must be a number > 0"):
        _make("temperature", temperature=0)


def test_fixed_weights_must_name_every_task_and_only_known_ones():
    with pytest.raises(ConfigError) as info:
        _make("fixed", weights={"danetqa": 1, "tera": 1, "parus": 1, "xnli": 1})
    assert "unknown task 'tera' (did you mean 'rsg:terra'?)" in _one_line(info)
    with pytest.raises(ConfigError) as info:
        _make("fixed", weights={"danetqa": 1, "terra": 1, "parus": 1})
    assert "no value for task 'nli:xnli'" in _one_line(info)
    with pytest.raises(ConfigError, match="needs option 'weights'"):
        _make("fixed")
    with pytest.raises(ConfigError, match="must be a number >= 0"):
        _make("fixed", weights={"danetqa": -1, "terra": 1, "parus": 1, "xnli": 1})
    zero = _make("fixed", weights={"rsg:danetqa": 0, "terra": 1, "parus": 1, "xnli": 1})
    assert 0 not in set(zero.choose(0, 5000).tolist())


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="at least one task"):
        get_component("sampler", "uniform")({})
    with pytest.raises(ConfigError, match="size -1"):
        get_component("sampler", "uniform")({"a": -1})
