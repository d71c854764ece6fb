"""Audit of the loss strategies against their papers, their option checks and exact resume.

Expected values are computed by hand in the comments (Kendall et al. 2018; Yu et al. 2020).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mtcore.errors import ConfigError
from mtcore.plugins import get_component


def _strategy(name: str, tasks=("a", "b"), **kwargs):
    return get_component("loss", name)(list(tasks), **kwargs)


def test_weighted_is_the_weighted_sum_and_a_missing_task_weighs_one():
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(4.0), "c": torch.tensor(8.0)}
    weighted = _strategy("weighted", ("a", "b", "c"), weights={"a": 0.5, "c": 0.0})
    assert weighted.combine(losses).item() == pytest.approx(0.5 * 2 + 1.0 * 4 + 0.0 * 8)
    assert weighted.task_weights() == {"a": 0.5, "b": 1.0, "c": 0.0}


@pytest.mark.parametrize("weights,expected", [
    ({"user:snet": 1.0}, "unknown task 'user:snet' (did you mean 'user:sent'?)"),
    ({"user:sent": -1.0}, "must be a number >= 0, got -1.0"),
    ({"user:sent": float("nan")}, "must be a number >= 0, got nan"),
    ({"user:sent": 0, "user:pair": 0}, "every task has weight 0"),
])
def test_weighted_refuses_unknown_negative_and_all_zero_weights_in_one_line(weights, expected):
    with pytest.raises(ConfigError) as info:
        _strategy("weighted", ("user:sent", "user:pair"), weights=weights)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_uncertainty_terms_gradients_and_fixed_point_follow_kendall():
    uw = _strategy("uncertainty", init=0.0)
    with torch.no_grad():
        uw.log_variances.copy_(torch.tensor([0.3, -0.2]))
    total = uw.combine({"a": torch.tensor(2.0), "b": torch.tensor(0.5)})
    assert total.item() == pytest.approx(math.exp(-0.3) * 2 + 0.3 + math.exp(0.2) * 0.5 - 0.2, rel=1e-6)
    total.backward()  # d/ds (exp(-s) L + s) = 1 - exp(-s) L
    assert uw.log_variances.grad.tolist() == pytest.approx([1 - math.exp(-0.3) * 2, 1 - math.exp(0.2) * 0.5], rel=1e-5)
    # with constant losses the minimum is at s = log L: weight exp(-s) = 1 / L, the noisier task weighs less
    optimizer = torch.optim.SGD(uw.parameters(), lr=0.2)
    for _ in range(300):
        optimizer.zero_grad()
        uw.combine({"a": torch.tensor(4.0), "b": torch.tensor(0.25)}).backward()
        optimizer.step()
    assert uw.log_variances.tolist() == pytest.approx([math.log(4.0), math.log(0.25)], abs=1e-3)
    assert uw.task_weights() == pytest.approx({"a": 0.25, "b": 4.0}, rel=1e-3)


def _pcgrad_step(strategy, grads: list[list[float]], step: int) -> list[float]:
    """One PCGrad step on losses ``L_i = g_i . w`` (so each task's gradient is exactly ``g_i``)."""
    w = torch.nn.Parameter(torch.zeros(2))
    losses = {t: (w * torch.tensor(g)).sum() for t, g in zip(strategy.task_ids, grads)}
    strategy.backward(losses, [w], [], lambda loss: loss, step=step)
    strategy.end_backward([w], [], step=step)
    return w.grad.tolist()


def test_pcgrad_projects_in_a_random_order_per_step_like_yu_et_al():
    # g1=(1,0), g2=(-1,1), g3=(-1,-1). g1 conflicts with both: either order ends at (0,0).
    # g2 conflicts with g1 only, but once projected on g1 it is (0,1), which conflicts with g3:
    #   order (g1, g3): (0,1) - (-1/2) g3 = (-0.5, 0.5);  order (g3, g1): (0,1).
    # g3 alike: order (g1, g2): (-0.5,-0.5);  order (g2, g1): (0,-1).
    g = [[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]]
    sums = {(a[0] + b[0], a[1] + b[1]) for a in ([-0.5, 0.5], [0.0, 1.0]) for b in ([-0.5, -0.5], [0.0, -1.0])}
    strategy = _strategy("pcgrad", ("t1", "t2", "t3"), seed=4)
    seen = set()
    for step in range(1, 41):
        got = tuple(round(x, 6) for x in _pcgrad_step(strategy, g, step))
        assert got in sums, got
        assert tuple(round(x, 6) for x in _pcgrad_step(_strategy("pcgrad", ("t1", "t2", "t3"), seed=4), g, step)) == got
        seen.add(got)
    assert seen == sums  # the order is drawn anew at each step


def test_pcgrad_with_one_task_or_without_conflict_is_the_plain_gradient_sum():
    assert _pcgrad_step(_strategy("pcgrad", ("a",)), [[3.0, -2.0]], 1) == pytest.approx([3.0, -2.0])
    assert _pcgrad_step(_strategy("pcgrad"), [[1.0, 2.0], [0.5, 0.0]], 1) == pytest.approx([1.5, 2.0])
    # a task with a zero gradient neither conflicts nor divides by zero
    assert _pcgrad_step(_strategy("pcgrad"), [[0.0, 0.0], [-1.0, 1.0]], 1) == pytest.approx([-1.0, 1.0])


@pytest.mark.parametrize("name,options,expected", [
    ("pcgrad", {"sede": 1}, "unexpected option 'sede' (did you mean 'seed'?)"),
    ("pcgrad", {"seed": "abc"}, "option 'seed' must be an integer"),
    ("pcgrad", {"eps": -1e-9}, "option 'eps' must be a number >= 0"),
    ("uncertainty", {"init": "abc"}, "option 'init' (the initial log-variance s_i) must be a finite number"),
    ("uncertainty", {"init": float("nan")}, "must be a finite number, got nan"),
])
def test_bad_strategy_options_are_one_line_errors(name, options, expected):
    with pytest.raises((ConfigError, TypeError)) as info:
        _strategy(name, **options)
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("override,expected", [
    ("loss.weights.sent=-1", "the weight of task 'user:sent' must be a number >= 0"),
    ("loss.weights={sent: 0, pair: 0, mc: 0}", "every task has weight 0"),
    ("loss.options.init=abc", "option 'init' (the initial log-variance s_i) must be a finite number, got 'abc'"),
    ("loss.weights.snet=2", "'snet' is not a task of this run (did you mean 'user:sent'?)"),
    ("loss.options.c=-1", "config key 'loss.options': loss strategy 'cagrad': option 'c'"),
])
def test_the_cli_refuses_bad_weights_and_options_with_exit_2(tmp_path, make_config, override, expected):
    import yaml

    from mtcore.cli.app import app

    strategy = "uncertainty" if "init" in override else "cagrad" if ".c=" in override else "weighted"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(loss={"strategy": strategy})))
    result = CliRunner().invoke(app, ["check", str(path), "--no-data", override])
    line = result.stderr.strip()
    assert result.exit_code == 2 and len(line.splitlines()) == 1 and "unexpected" not in line, line
    assert expected in line


RESUMED = {
    "uncertainty": {"loss": {"strategy": "uncertainty"}, "optimizer": {"lr": 1e-2}},
    "pcgrad": {"loss": {"strategy": "pcgrad"}},
    "rlw-accumulation": {"loss": {"strategy": "rlw"}, "optimizer": {"gradient_accumulation_steps": 2}},
    "dwa": {"loss": {"strategy": "dwa", "options": {"window": 1}}},  # its windows close at every step: the weights move
    "gradnorm": {"loss": {"strategy": "gradnorm", "options": {"lr": 0.2}}},  # learned weights, first losses, Adam moments
    "famo": {"loss": {"strategy": "famo", "options": {"lr": 0.2}}},  # task logits, Adam moments, the losses of the next weights
    "annealed-padding-free-budget": {"sampler": {"name": "annealed"}, "schedule": {"epochs": 2, "warmup_steps": 1},
                                     "batching": {"max_tokens": 48, "padding_free": True}},
}


@pytest.mark.parametrize("variant", sorted(RESUMED))
def test_resume_restores_the_strategy_and_sampler_exactly(tmp_path: Path, make_config, helpers, variant):
    """A run resumed from an early checkpoint ends with the uninterrupted run's weights and, for
    uncertainty weighting, its learned log-variances (saved in the checkpoint, not in model/)."""
    from mtcore import Trainer
    from mtcore.train.state_files import load_state

    config = make_config(checkpoint={"every": 2, "keep_last": 100}, **RESUMED[variant])
    full = tmp_path / "full"
    summary = Trainer(config, output_dir=full).train()
    steps = sorted(p.name for p in (full / "checkpoints").glob("step-*"))
    assert summary["steps"] >= 6 and len(steps) >= 3
    resumed = tmp_path / "resumed"
    keep = steps[0]  # step 2: mid-run, and for the annealed variant mid-epoch with alpha still 1
    helpers.stopped_copy(full, resumed, keep, step=2)
    Trainer(config, output_dir=resumed, resume=True).train()

    a, b = helpers.load_weights(full / "model"), helpers.load_weights(resumed / "model")
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []
    last = steps[-1]
    mine, theirs = (load_state(run / "checkpoints" / last / "trainer") for run in (full, resumed))
    assert mine.get("strategy", {}).keys() == theirs.get("strategy", {}).keys()
    for key, value in mine.get("strategy", {}).items():
        assert torch.equal(value, theirs["strategy"][key])
    if variant == "uncertainty":
        start = load_state(full / "checkpoints" / keep / "trainer")["strategy"]["log_variances"]
        assert not torch.equal(start, torch.zeros_like(start))  # the resume really had learned values to restore
    if variant == "dwa":
        start = load_state(full / "checkpoints" / keep / "trainer")["strategy"]
        assert start["windows_done"] == 1 and start["means"][1].min() > 0  # the resume had loss averages to restore
    if variant == "gradnorm":
        start = load_state(full / "checkpoints" / keep / "trainer")["strategy"]
        assert int(start["updates"]) == 2 and not torch.equal(start["loss_weights"], torch.ones_like(start["loss_weights"]))
    if variant == "famo":
        start = load_state(full / "checkpoints" / keep / "trainer")["strategy"]
        assert int(start["updates"]) == 2 and start["logits"].abs().min() > 0 and start["measured"].min() == 1
    sampler_state = [json.loads((run / "checkpoints" / last / "sampler.json").read_text()) for run in (full, resumed)]
    assert sampler_state[0] == sampler_state[1]


@pytest.mark.parametrize("strategy", ["weighted", "upgrad"])
def test_weights_that_are_all_0_name_loss_weights_not_loss_options(tmp_path, make_config, strategy):
    import yaml

    from mtcore.cli.app import app

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(loss={"strategy": strategy})))
    result = CliRunner().invoke(app, ["check", str(path), "--no-data", "loss.weights={sent: 0, pair: 0, mc: 0}"])
    line = result.stderr.strip()
    assert result.exit_code == 2 and line.startswith("error: loss.weights: every task") and "loss.options" not in line, line
