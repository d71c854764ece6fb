"""A loss strategy that cannot run under DDP (or accumulate) is refused, naming the strategies that can."""

from __future__ import annotations

import pytest

from mtcore.errors import ConfigError
from mtcore.registry import Registry
from mtcore.train.config_io import load_config
from mtcore.train.losses import PCGradLoss, SumLoss
from mtcore.train.validate import plan_run

BASE = {"encoder": {"tiny": "bert"}, "tasks": ["rsg:terra", "rsg:parus"]}


def test_a_strategy_that_cannot_run_under_ddp_is_refused_naming_those_that_can(monkeypatch) -> None:
    """The built-in strategies all run under DDP; one that says it cannot (a plugin's) is refused in one line that
    suggests the others of its kind (one batch of every task per step), read from each one's capability."""
    monkeypatch.setattr(PCGradLoss, "supports_distributed", False)
    with pytest.raises(ConfigError) as info:
        plan_run(load_config(BASE, ["loss.strategy=pcgrad"]), world_size=2)
    message = str(info.value)
    assert "\n" not in message and "'pcgrad'" in message and "does not run under DDP" in message
    suggested = message.split("; use ", 1)[1]
    for name in ("sum", "weighted", "uncertainty", "rlw", "dwa", "mgda", "cagrad", "gradnorm"):
        assert f"'{name}'" in suggested
    for name in ("pcgrad", "single"):  # refused under DDP, or one task per step
        assert f"'{name}'" not in suggested


def test_a_strategy_that_cannot_accumulate_is_refused_with_accumulation(monkeypatch) -> None:
    monkeypatch.setattr(PCGradLoss, "supports_accumulation", False)
    with pytest.raises(ConfigError, match="cannot accumulate gradients over 2 micro-steps"):
        plan_run(load_config(BASE, ["loss.strategy=pcgrad", "optimizer.gradient_accumulation_steps=2"]))
    plan_run(load_config(BASE, ["loss.strategy=mgda", "optimizer.gradient_accumulation_steps=2"]))


def test_the_suggestions_come_from_the_strategies_own_capability() -> None:
    from mtcore.train.losses import distributed_alternatives

    class LocalOnly(SumLoss):
        supports_distributed = False

    registry = Registry()
    registry.add_component("loss", "sum", SumLoss, "mtcore")
    registry.add_component("loss", "pcgrad", PCGradLoss, "mtcore")
    registry.add_component("loss", "local", LocalOnly, "user")
    registry.add_component("loss", "missing", "no_such_module_xyz:Strategy", "user")
    registry.add_component("loss", "mine", type("Mine", (SumLoss,), {}), "user")
    assert distributed_alternatives(registry, PCGradLoss) == "'sum', 'pcgrad' or 'mine'"
