"""Random Loss Weighting (rlw) and Dynamic Weight Average (dwa): their weights against the papers' formulas."""

from __future__ import annotations

import math

import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.train.loss_balancers import DynamicWeightAverageLoss, RandomWeightLoss

TASKS = ["a", "b", "c"]


def test_rlw_draws_k_times_a_softmax_of_normals_fixed_by_seed_and_step():
    rlw = RandomWeightLoss(TASKS, seed=7)
    rlw.begin_step(5)
    weights = rlw.task_weights()
    z = torch.randn(3, generator=torch.Generator().manual_seed(7 * 1_000_003 + 5), dtype=torch.float64)
    expected = (torch.softmax(z, 0) * 3).tolist()
    assert list(weights.values()) == pytest.approx(expected, abs=1e-12)
    assert sum(weights.values()) == pytest.approx(3.0)
    assert rlw.term("b", torch.tensor(2.0)).item() == pytest.approx(2.0 * expected[1])
    again = RandomWeightLoss(TASKS, seed=7)  # another process, or a resumed run: the same draw
    again.begin_step(5)
    assert again.task_weights() == weights
    again.begin_step(6)
    assert again.task_weights() != weights
    other_seed = RandomWeightLoss(TASKS, seed=8)
    other_seed.begin_step(5)
    assert other_seed.task_weights() != weights


def test_rlw_weights_average_one_and_vary():
    rlw = RandomWeightLoss(TASKS, seed=0)
    drawn = []
    for step in range(1, 2001):
        rlw.begin_step(step)
        drawn.append(list(rlw.task_weights().values()))
    table = torch.tensor(drawn)
    assert torch.allclose(table.sum(1), torch.full((2000,), 3.0, dtype=table.dtype))
    assert table.mean(0).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=0.05)  # symmetric: no task favoured
    assert table.std(0).min() > 0.3


def _window(dwa: DynamicWeightAverageLoss, first_step: int, losses: dict[str, list[float]], reduce=None) -> None:
    steps = len(next(iter(losses.values())))
    for k in range(steps):
        dwa.begin_step(first_step + k, reduce)
        for task, values in losses.items():
            dwa.term(task, torch.tensor(values[k]))


def test_dwa_weights_follow_the_ratio_of_the_last_two_window_means():
    dwa = DynamicWeightAverageLoss(TASKS, temperature=2.0, window=2)
    _window(dwa, 1, {"a": [4.0, 4.0], "b": [2.0, 2.0], "c": [1.0, 3.0]})  # window 1 (steps 1-2)
    assert dwa.task_weights() == {"a": 1.0, "b": 1.0, "c": 1.0}
    _window(dwa, 3, {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [3.0, 3.0]})  # window 2 (steps 3-4): still the first two
    assert dwa.task_weights() == {"a": 1.0, "b": 1.0, "c": 1.0}
    dwa.begin_step(5)  # closes window 2: a fell to 1/4, b stayed, c rose by 3/2
    ratios = torch.tensor([1.0 / 4.0, 2.0 / 2.0, 3.0 / 2.0], dtype=torch.float64)
    expected = (torch.softmax(ratios / 2.0, 0) * 3).tolist()
    weights = dwa.task_weights()
    assert list(weights.values()) == pytest.approx(expected, rel=1e-6)
    assert weights["a"] < weights["b"] < weights["c"]  # the task whose loss falls fastest gets the least
    assert dwa.term("c", torch.tensor(1.0)).item() == pytest.approx(expected[2], rel=1e-6)


def test_dwa_closes_windows_only_at_their_first_step_and_averages_over_processes():
    calls = []

    def reduce(tensor):
        calls.append(tensor.clone())
        return tensor * 0.5  # pretend the other process saw nothing

    dwa = DynamicWeightAverageLoss(["a", "b"], window=3)
    _window(dwa, 1, {"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0]}, reduce)
    assert calls == []  # steps 1-3: inside the first window
    dwa.begin_step(4, reduce)
    assert len(calls) == 2  # sums and counts, once
    assert dwa.means[1].tolist() == [1.0, 1.0]  # halved sums over halved counts: the same mean


def test_dwa_state_round_trips_and_skips_non_finite_losses():
    dwa = DynamicWeightAverageLoss(["a", "b"], window=1)
    for step, (a, b) in enumerate([(2.0, 2.0), (1.0, float("nan")), (0.5, 2.0)], start=1):
        dwa.begin_step(step)
        dwa.term("a", torch.tensor(a))
        dwa.term("b", torch.tensor(b))
    dwa.begin_step(4)
    copy = DynamicWeightAverageLoss(["a", "b"], window=1)
    copy.load_state_dict(dwa.state_dict())
    assert copy.task_weights() == dwa.task_weights()
    assert all(math.isfinite(w) for w in dwa.task_weights().values())
    assert dwa.task_weights()["b"] > dwa.task_weights()["a"]  # a halved, b held (its NaN step kept the last mean)


@pytest.mark.parametrize("options, message", [
    ({"temperature": 0}, "option 'temperature' must be a number > 0"),
    ({"temperature": True}, "option 'temperature' must be a number > 0"),
    ({"window": 0}, "option 'window' (optimizer steps per loss average) must be an integer >= 1"),
    ({"window": 2.5}, "option 'window'"),
])
def test_dwa_refuses_bad_options(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DynamicWeightAverageLoss(TASKS, **options)


def test_rlw_refuses_a_non_integer_seed_and_unknown_options():
    with pytest.raises(ConfigError, match="option 'seed' must be an integer"):
        RandomWeightLoss(TASKS, seed="x")
    with pytest.raises(TypeError, match="unexpected option 'temprature'; it accepts: seed"):
        RandomWeightLoss(TASKS, temprature=2)


def test_uncertainty_logs_the_weights_each_step_trained_with_not_the_next_steps(make_config, tmp_path, helpers):
    """The optimizer step moves s before the loop logs: step 1 logged exp(-s) after its update (1.105 at lr 0.1), not the
    1.0 it trained with."""
    from mtcore import Trainer

    config = make_config(loss={"strategy": "uncertainty"}, optimizer={"lr": 0.1}, checkpoint={"every": None},
                         schedule={"name": "constant", "max_steps": 3, "warmup_steps": 0}, logging={"every": 1, "progress": "none", "plot": False})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    trainer.train()
    logged = [e["weights"] for e in helpers.read_events(tmp_path / "run") if e["event"] == "loss_weights"]
    assert list(logged[0].values()) == [1.0, 1.0, 1.0]  # init 0: exp(-0)
    assert all(abs(w - 1.0) > 0.05 for w in logged[1].values())  # AdamW's first step moved every s by about lr
    strategy = trainer.engine.strategy
    final = {t: math.exp(-s) for t, s in zip(strategy.task_ids, strategy.log_variances.tolist())}
    assert logged[2] != pytest.approx(final)  # the last step's weights, not those after its update
