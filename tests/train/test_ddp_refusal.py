"""The refusal of a gradient-combining loss strategy under DDP names the strategies that do run there."""

from __future__ import annotations

import pytest

from mtcore.errors import ConfigError
from mtcore.registry import Registry
from mtcore.train.config_io import load_config
from mtcore.train.losses import PCGradLoss, SumLoss
from mtcore.train.validate import plan_run

BASE = {"encoder": {"tiny": "bert"}, "tasks": ["rsg:terra", "rsg:parus"]}


@pytest.mark.parametrize("strategy", ["pcgrad", "mgda", "cagrad", "gradnorm"])
def test_the_ddp_refusal_lists_every_strategy_that_runs_under_ddp(strategy: str) -> None:
    with pytest.raises(ConfigError) as info:
        plan_run(load_config(BASE, [f"loss.strategy={strategy}"]), world_size=2)
    message = str(info.value)
    assert "\n" not in message and f"{strategy!r}" in message and "does not run under DDP" in message
    suggested = message.split("; use ", 1)[1]
    for name in ("sum", "weighted", "uncertainty", "rlw", "dwa"):
        assert f"'{name}'" in suggested
    for name in ("pcgrad", "mgda", "cagrad", "gradnorm", "single"):  # refused under DDP, or one task per step
        assert f"'{name}'" not in suggested


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
    assert distributed_alternatives(registry, PCGradLoss) == "'sum' or 'mine'"
