"""What a plugin's sampler gets wrong, named by the name it is registered under (Registry + Sampler API)."""

from __future__ import annotations

import numpy as np
import pytest

from mtcore.errors import ConfigError
from mtcore.registry import Registry
from mtcore.sampling.base import Sampler
from mtcore.sampling.samplers import TemperatureSampler

SIZES = {"a:one": 10, "a:two": 30}


class Returns(Sampler):
    """Returns ``self.options["value"]`` from probabilities()."""

    defaults = {"value": None}

    def probabilities(self, epoch):
        return self.options["value"]


class Named(Sampler):
    name = "its_own_name"

    def probabilities(self, epoch):
        return np.ones(len(self.tasks))


def _load(cls, name: str):
    registry = Registry()
    registry.add_component("sampler", name, cls, "toy")
    return registry.component("sampler", name).load()


@pytest.mark.parametrize("value, shown", [
    ("uniform", "'uniform' (a str)"),
    (None, "None (a NoneType)"),
    ({"a:one": 1}, "{'a:one': 1} (a dict)"),
    (["1", "2"], "['1', '2']"),
])
def test_probabilities_that_are_not_numbers_name_the_sampler_and_what_it_returned(value, shown):
    sampler = _load(Returns, "curriculum")(SIZES, value=value)
    with pytest.raises(ConfigError) as caught:
        sampler.next_task()
    assert str(caught.value) == (f"sampler 'curriculum': probabilities(0) returned {shown}; it must return one number >= 0 per "
                                 "task (2: a:one, a:two)")


class Chooses(Sampler):
    """A deterministic sampler: ``choose`` returns ``self.options["value"]`` (a list, or a function of start, stop)."""

    defaults = {"value": None}

    def choose(self, start, stop):
        value = self.options["value"]
        return value(start, stop) if callable(value) else value


@pytest.mark.parametrize("value, said", [
    (lambda start, stop: [0, 5, 1, 0, 1, 0, 1, 0][: stop - start], "choose(0, 8) returned the index 5; it must return 8 task indices "
                                                                   "(integers 0..1 into tasks: a:one, a:two)"),
    (lambda start, stop: [0, 1], "choose(0, 8) returned [0, 1]; it must return 8 task indices"),  # too few: a broadcast error
    (lambda start, stop: [0.5] * (stop - start), "choose(0, 8) returned [0.5, 0.5,"),  # not integers
    (lambda start, stop: ["a:one"] * (stop - start), "choose(0, 8) returned ['a:one', "),  # names, not indices
])
def test_a_samplers_own_choose_is_checked_and_named(value, said):
    sampler = _load(Chooses, "round_trip")(SIZES, value=value)
    with pytest.raises(ConfigError) as caught:
        sampler.draws(0, 8)
    assert str(caught.value).startswith(f"sampler 'round_trip': {said}"), caught.value
    fine = _load(Chooses, "alternate")(SIZES, value=lambda start, stop: [i % 2 for i in range(start, stop)])
    assert fine.draws(3, 7).tolist() == [1, 0, 1, 0] and fine.next_task() == "a:one"


@pytest.mark.parametrize("value", [[-1.0, 2.0], [1.0], [1.0, float("nan")]])
def test_invalid_weights_name_the_registered_sampler(value):
    sampler = _load(Returns, "curriculum")(SIZES, value=value)
    with pytest.raises(ConfigError, match=r"^sampler 'curriculum': probabilities\(0\) returned the invalid weights \["):
        sampler.normalized_probabilities()


def test_numbers_of_any_numeric_type_are_accepted():
    sampler = _load(Returns, "curriculum")(SIZES, value=np.array([1, 3], dtype=np.int32))
    assert sampler.normalized_probabilities().tolist() == [0.25, 0.75]


def test_an_unknown_option_names_the_registered_sampler_not_sampler():
    with pytest.raises(ConfigError, match=r"^sampler 'curriculum': unknown option 'x'; it accepts: value$"):
        _load(Returns, "curriculum")(SIZES, x=1)


def test_a_class_with_another_name_or_registered_twice_gets_the_registered_name_and_is_not_changed():
    renamed = _load(Named, "picked")
    assert renamed.name == "picked" and issubclass(renamed, Named) and Named.name == "its_own_name"
    assert _load(Named, "picked") is renamed  # the same class every time it is loaded
    assert renamed(SIZES).state_dict()["name"] == "picked"
    with pytest.raises(ConfigError, match=r"^sampler 'picked': unknown option 'x'"):
        renamed(SIZES, x=1)


def test_builtin_samplers_keep_their_class_and_name():
    assert _load(TemperatureSampler, "temperature") is TemperatureSampler
    assert TemperatureSampler.name == "temperature"
