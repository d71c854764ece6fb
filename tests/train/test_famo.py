"""FAMO (famo): its weights and its logits' update against the paper's formulas, and training runs that use the loop's
after-step forward, with and without gradient accumulation."""

from __future__ import annotations

import math

import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.train.famo import FAMOLoss, StepLosses

TASKS = ["a", "b", "c"]


def _losses(values: list[float], counted: list[float] | None = None) -> StepLosses:
    out = StepLosses(TASKS)
    out.sums = torch.tensor(values, dtype=torch.float64)
    out.counted = torch.tensor(counted if counted is not None else [1.0] * len(values), dtype=torch.float64)
    return out


def _weights(famo: FAMOLoss) -> list[float]:
    return [famo.term(task, torch.tensor(2.0, dtype=torch.float64)).item() / 2.0 for task in TASKS]


def test_weights_are_k_times_the_normalised_softmax_over_the_loss_gap():
    famo = FAMOLoss(TASKS, min_losses={"b": 0.5})
    famo.begin_step(1)
    assert _weights(famo) == [1.0, 1.0, 1.0]  # no loss measured yet
    xi, losses, floor = [0.3, -0.2, 0.1], [2.0, 0.75, 0.4], [0.0, 0.5, 0.0]
    famo.logits.copy_(torch.tensor(xi, dtype=torch.float64))
    famo.losses.copy_(torch.tensor(losses, dtype=torch.float64))
    famo.measured.fill_(1.0)
    famo.begin_step(2)
    z = [math.exp(x) / sum(math.exp(y) for y in xi) for x in xi]
    ratio = [zi / (loss - low + 1e-8) for zi, loss, low in zip(z, losses, floor)]
    expected = [3 * r / sum(ratio) for r in ratio]
    assert _weights(famo) == pytest.approx(expected, rel=1e-12)
    assert sum(_weights(famo)) == pytest.approx(3.0, rel=1e-12)
    assert famo.task_weights() == pytest.approx(dict(zip(TASKS, expected)), rel=1e-6)
    famo.losses[1] = 0.25  # below b's minimum: clamped to the gap ε, not a NaN; b gets (almost) all the weight
    famo.begin_step(3)
    assert all(math.isfinite(w) for w in _weights(famo)) and _weights(famo)[1] == pytest.approx(3.0, rel=1e-6)


def test_the_logits_take_adam_steps_on_the_softmax_vjp_of_the_log_loss_decrease():
    lr, gamma, start = 0.1, 0.01, [0.2, -0.1, 0.4]
    famo = FAMOLoss(TASKS, lr=lr, gamma=gamma)
    famo.logits.copy_(torch.tensor(start, dtype=torch.float64))
    reference = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([reference], lr=lr, weight_decay=gamma)  # the reference's optimizer of the logits
    steps = [([2.0, 1.0, 0.5], [1.5, 0.9, 0.5]), ([1.5, 0.9, 0.5], [1.4, 0.6, 0.45])]
    for step, (old, new) in enumerate(steps, start=1):
        delta = torch.tensor([math.log(o + 1e-8) - math.log(n + 1e-8) for o, n in zip(old, new)], dtype=torch.float64)
        if step == 1:  # by hand: Adam's first step is lr · g / (|g| + eps), g = (diag(z) − z zᵀ) δ + gamma ξ
            xi = torch.tensor(start, dtype=torch.float64)
            z = torch.exp(xi) / torch.exp(xi).sum()
            g = (torch.diag(z) - torch.outer(z, z)) @ delta + gamma * xi
            by_hand = xi - lr * g / (g.abs() + 1e-8)
        grad = torch.autograd.grad(torch.softmax(reference, 0), reference, grad_outputs=delta)[0]
        adam.zero_grad()
        reference.grad = grad
        adam.step()
        famo.after_step(_losses(old), _losses(new), step)
        assert torch.allclose(famo.logits, reference.detach(), rtol=0, atol=1e-12)
        if step == 1:
            assert torch.allclose(famo.logits, by_hand, rtol=0, atol=1e-12)
        assert famo.losses.tolist() == new  # the next step's weights divide by the losses at the new parameters
    assert int(famo.updates) == 2


def test_a_task_whose_loss_fell_less_gets_a_larger_logit():
    famo = FAMOLoss(TASKS, lr=0.05, gamma=0.0)
    famo.after_step(_losses([1.0, 1.0, 1.0]), _losses([0.5, 0.9, 0.9]), 1)  # a halved, b and c fell by a tenth
    a, b, c = famo.logits.tolist()
    assert a < 0 < b and b == pytest.approx(c)
    for _ in range(5):  # the same again: b and c gain weight over a
        famo.after_step(_losses([1.0, 1.0, 1.0]), _losses([0.5, 0.9, 0.9]), 1)
    famo.begin_step(7)
    weights = _weights(famo)
    z = torch.softmax(famo.logits, 0)
    assert z[1] > z[0] and weights[1] / weights[0] == pytest.approx(float(z[1] / z[0]) * 0.5 / 0.9, rel=1e-6)


def test_after_step_averages_over_processes_in_one_collective_and_skips_what_it_cannot_use():
    calls = []

    def reduce(tensor):
        calls.append(tensor.clone())
        return tensor * 0.5  # pretend the other process counted nothing: the same means, halved

    famo = FAMOLoss(TASKS)
    famo.after_step(_losses([2.0, 2.0, 2.0]), _losses([1.0, 2.0, 2.0]), 1, reduce)
    assert len(calls) == 1 and calls[0].numel() == 9
    assert famo.losses.tolist() == [0.5, 1.0, 1.0] and famo.measured.tolist() == [1.0, 1.0, 1.0]
    assert famo.logits[0] < famo.logits[1] == famo.logits[2]
    state = {k: v.clone() for k, v in famo.state_dict().items()}
    famo.after_step(_losses([2.0, float("nan"), 2.0]), _losses([1.0, 2.0, 2.0]), 2)  # a NaN loss: nothing changes
    assert all(torch.equal(state[k], v) for k, v in famo.state_dict().items())
    famo.after_step(_losses([2.0, 3.0, 2.0], [1.0, 0.0, 1.0]), _losses([1.0, 0.0, 2.0], [1.0, 0.0, 1.0]), 2)
    assert famo.losses[1] == 1.0 and int(famo.updates) == 2  # b had no items: its loss kept, its δ 0
    copy = FAMOLoss(TASKS)
    copy.load_state_dict(famo.state_dict())
    famo.begin_step(3)
    copy.begin_step(3)
    assert copy.task_weights() == famo.task_weights()


@pytest.mark.parametrize(("options", "message"), [
    ({"lr": 0}, "option 'lr' (the learning rate of the task logits, default 0.025) must be a number > 0"),
    ({"lr": True}, "option 'lr'"),
    ({"gamma": -0.1}, "option 'gamma' (the task logits' weight decay, default 0.01) must be a number >= 0"),
    ({"min_losses": "low"}, "option 'min_losses' (each task's lowest loss, default 0) must be a number or a mapping"),
    ({"min_losses": {"bb": 0.1}}, "option 'min_losses' names unknown task 'bb'"),
    ({"min_losses": {"b": float("nan")}}, "option 'min_losses' of task 'b' must be a finite number"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FAMOLoss(TASKS, **options)


def test_min_losses_take_one_number_or_tasks_by_id_or_bare_name():
    assert FAMOLoss(TASKS, min_losses=0.5).min_losses.tolist() == [0.5, 0.5, 0.5]
    assert FAMOLoss(["x:a", "y:b"], min_losses={"a": 0.25, "y:b": 1}).min_losses.tolist() == [0.25, 1.0]


def test_an_unknown_option_is_refused_with_a_suggestion():
    with pytest.raises(TypeError, match=r"unexpected option 'gama' \(did you mean 'gamma'\?\); it accepts: lr, gamma, min_losses"):
        FAMOLoss(TASKS, gama=0.1)


@pytest.mark.parametrize("accumulation", [1, 2])
def test_training_updates_the_logits_from_the_losses_before_and_after_each_step(tmp_path, make_config, helpers, monkeypatch,
                                                                                 small_encoder, accumulation):
    """The loop hands ``after_step`` the step's mean losses (the logged ones) and the same batches' losses at the new
    parameters (no dropout here, so they differ only because the parameters changed); the logged weights sum to K and move."""
    import json
    import shutil

    from mtcore import Trainer

    encoder = shutil.copytree(small_encoder, tmp_path / "encoder")
    settings = json.loads((encoder / "config.json").read_text())
    settings.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (encoder / "config.json").write_text(json.dumps(settings))

    seen = []
    original = FAMOLoss.after_step

    def recording(self, before, after, step, reduce_mean=None):
        seen.append((step, list(self.task_ids), before.sums.clone(), after.sums.clone()))
        original(self, before, after, step, reduce_mean)

    monkeypatch.setattr(FAMOLoss, "after_step", recording)
    config = make_config(loss={"strategy": "famo", "options": {"lr": 0.2}}, logging={"every": 1, "progress": "none", "plot": False},
                         optimizer={"lr": 1e-3, "gradient_accumulation_steps": accumulation}, evaluation={"every": None, "at_end": False},
                         encoder={"path": str(encoder)})
    config["tasks"] = [{**task, "head_options": {"dropout": 0.0}} for task in config["tasks"]]
    run = tmp_path / "run"
    summary = Trainer(config, output_dir=run).train()
    assert summary["steps"] == 6 and [s for s, *_ in seen] == list(range(1, 7))
    events = helpers.read_events(run)
    for step, tasks, before, after in seen:  # logged: each task's mean loss over the step's items
        rows = [e for e in events if e["event"] == "train" and e["step"] == step]
        assert before.tolist() == pytest.approx([next(e["loss"] for e in rows if e["task"] == t) for t in tasks], rel=1e-5)
        # warmup_steps 1: step 1 trains at learning rate 0, so its batches' losses again are the same, bit for bit
        assert torch.isfinite(after).all() and torch.equal(before, after) == (step == 1), (step, before, after)
    weights = [e["weights"] for e in events if e["event"] == "loss_weights"]
    assert len(weights) == 6 and all(sum(w.values()) == pytest.approx(3.0, rel=1e-5) for w in weights)
    assert set(weights[0].values()) == {1.0} and len({tuple(w.values()) for w in weights}) == 6
    assert all(math.isfinite(e["loss"]) for e in events if e["event"] == "train")
