"""``imtl`` with ``loss_scale: true``, the hybrid IMTL (IMTL-L + IMTL-G, Liu et al. 2021; LibMTL's ``IMTL``): the learned
scales ``sᵢ`` get ``e^sᵢ Lᵢ − 1`` over the whole step (micro-steps summed, fp16's loss scale on it, processes averaged) and
move towards ``−log Lᵢ``; the encoder's update is IMTL-G of the gradients of ``e^sᵢ Lᵢ``, the heads' those gradients;
the default is IMTL-G unchanged; a run trains, logs its weights, accumulates and resumes exactly; bad options are one
line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.plugins import get_component
from mtcore.train.gradient_surgery import IMTLGLoss
from train.thread_ranks import run_two_ranks

F64 = torch.float64


def _problem(seed: int = 0, tasks: int = 3):
    """A shared vector ``w``, one head per task and two micro-steps of data: task losses of clearly different sizes."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.randn(4, generator=generator, dtype=F64))
    names = [f"t{i}" for i in range(tasks)]
    heads = {t: torch.nn.Parameter(torch.randn(2, generator=generator, dtype=F64)) for t in names}
    micro = [{t: (torch.randn(4, generator=generator, dtype=F64) * (1.0 + 2 * i), torch.randn(2, generator=generator, dtype=F64))
              for i, t in enumerate(names)} for _ in range(2)]
    return w, heads, micro


def _micro_losses(w, heads, data):
    """One micro-step's losses, divided by the two micro-steps as the training loop does."""
    return {t: (w @ x + heads[t] @ y) ** 2 / 2 for t, (x, y) in data.items()}


def _step_losses(w, heads, micro):
    return {t: sum(_micro_losses(w, heads, data)[t] for data in micro) for t in heads}


def _train_step(strategy, w, heads, micro, scale=lambda loss: loss, reduce_mean=None, step=1):
    params = [w, *heads.values(), *strategy.parameters()]
    for p in params:
        p.grad = None
    for data in micro:
        strategy.backward(_micro_losses(w, heads, data), [w], list(heads.values()), scale, step)
    strategy.end_backward([w], list(heads.values()), step, reduce_mean)
    return [None if p.grad is None else p.grad.clone() for p in params]


def test_the_scales_get_exp_s_l_minus_1_and_the_update_is_imtl_g_of_the_scaled_losses_gradients():
    w, heads, micro = _problem()
    strategy = IMTLGLoss(list(heads), loss_scale=True)
    with torch.no_grad():
        strategy.log_scales.copy_(torch.tensor([0.3, -0.5, 1.2]))
    factors = torch.exp(strategy.log_scales.detach()).double()  # e^sᵢ as the strategy computes it (s is float32)
    shared, *rest = _train_step(strategy, w, heads, micro)
    head_grads, s_grad = rest[:-1], rest[-1]
    losses = _step_losses(w, heads, micro)
    step_losses = torch.stack([losses[t].detach() for t in heads])
    # sᵢ: ∂(e^sᵢ Lᵢ − sᵢ)/∂sᵢ, Lᵢ the whole step's loss (the −1 counted once, not once per micro-step)
    assert torch.allclose(s_grad.double(), factors * step_losses - 1, rtol=1e-6)
    # heads: the gradient of their own e^sᵢ Lᵢ; encoder: IMTL-G (a fresh one) of the gradients of e^sᵢ Lᵢ
    scaled = [torch.autograd.grad(factors[i] * losses[t], [w, heads[t]]) for i, t in enumerate(heads)]
    for i, t in enumerate(heads):
        assert torch.allclose(head_grads[i], scaled[i][1], rtol=1e-9), t
    reference = IMTLGLoss(list(heads))
    expected = reference.combine([g for g, _ in scaled], step=1)
    assert torch.allclose(shared, expected, rtol=1e-9)
    # logged: each raw gᵢ's weight in the update, the IMTL-G weight times e^sᵢ
    raw = [torch.autograd.grad(loss, w)[0] for loss in _step_losses(w, heads, micro).values()]
    logged = strategy.task_weights()
    assert logged == pytest.approx({t: reference.task_weights()[t] * float(factors[i]) for i, t in enumerate(heads)}, rel=1e-9)
    assert torch.allclose(sum(logged[t] * g for t, g in zip(heads, raw)), shared, rtol=1e-9)


def test_fp16_s_loss_scale_is_on_the_scales_gradient_too():
    w, heads, micro = _problem(1)
    plain = _train_step(IMTLGLoss(list(heads), loss_scale=True), w, heads, micro)
    scaled = _train_step(IMTLGLoss(list(heads), loss_scale=True), w, heads, micro, scale=lambda loss: loss * 1024.0)
    assert all(torch.allclose(a * 1024.0, b, rtol=1e-9) for a, b in zip(plain, scaled))  # the scaler unscales all alike


def test_the_scales_learn_minus_log_of_the_losses():
    """Gradient descent on the scales alone (fixed losses of different sizes): e^sᵢ Lᵢ → 1, sᵢ → −log Lᵢ."""
    w, heads, micro = _problem(2)
    strategy = IMTLGLoss(list(heads), loss_scale=True)
    target = -torch.log(torch.stack([v.detach() for v in _step_losses(w, heads, micro).values()])).float()
    assert target.max() - target.min() > 1  # losses of clearly different sizes
    optimizer = torch.optim.SGD(strategy.parameters(), lr=0.1)
    start = (strategy.log_scales.detach() - target).abs()
    for step in range(1, 301):
        optimizer.zero_grad()
        _train_step(strategy, w, heads, micro, step=step)
        optimizer.step()
        if step == 1:
            first = (strategy.log_scales.detach() - target).abs()
            assert (first < start).all()  # every scale moved towards −log Lᵢ from the first step
    assert torch.allclose(strategy.log_scales.detach(), target, atol=1e-3)


def test_two_processes_average_the_scales_gradient_as_one_process_with_both_halves():
    """DDP through ``reduce_mean`` (two threads for two processes), then the loop's ``sync_gradients``."""
    w, heads, micro = _problem(3)
    one = _train_step(IMTLGLoss(list(heads), loss_scale=True), w, heads, micro)  # both halves, as two micro-steps of one process
    def rank_run(rank, reduce_mean):  # each rank's loss is its half's, times 2 (the loop divides by the global count: ×2 of the half's)
        local_w = torch.nn.Parameter(w.detach().clone())
        local_heads = {t: torch.nn.Parameter(h.detach().clone()) for t, h in heads.items()}
        strategy = IMTLGLoss(list(heads), loss_scale=True)
        data = micro[rank]
        strategy.backward({t: v * 2 for t, v in _micro_losses(local_w, local_heads, data).items()}, [local_w],
                          list(local_heads.values()), lambda loss: loss, 1)
        strategy.end_backward([local_w], list(local_heads.values()), 1, reduce_mean)
        strategy.sync_gradients(reduce_mean)
        return [local_w.grad, *(h.grad for h in local_heads.values()), strategy.log_scales.grad]

    out = run_two_ranks(rank_run)
    for rank in (0, 1):
        assert out[rank] is not None, rank
        assert all(torch.allclose(a.double(), b.double(), rtol=1e-6, atol=1e-12) for a, b in zip(out[rank], one)), rank


def test_the_default_is_imtl_g_unchanged():
    w, heads, micro = _problem(4)
    default = IMTLGLoss(list(heads))
    assert default.loss_scale is False and list(default.parameters()) == [] and default.state_dict() == {}
    shared, *head_grads = _train_step(default, w, heads, micro)
    losses = _step_losses(w, heads, micro)
    raw = [torch.autograd.grad(losses[t], [w, heads[t]]) for t in heads]
    reference = IMTLGLoss(list(heads))
    assert torch.equal(shared, reference.combine([g for g, _ in raw], step=1))  # IMTL-G of the raw gradients, bit for bit
    assert all(torch.allclose(h, g, rtol=1e-12) for h, (_, g) in zip(head_grads, raw))  # heads: their own raw gradient
    assert default.task_weights() == reference.task_weights()
    assert IMTLGLoss.option_names() == ["loss_scale"] and IMTLGLoss(list(heads), loss_scale=False).state_dict() == {}


@pytest.mark.parametrize("value", ["yes", 1, 0, 1.0, None, "true"])
def test_a_bad_loss_scale_is_one_config_error_line(value):
    with pytest.raises(ConfigError) as info:
        get_component("loss", "imtl")(["a", "b"], loss_scale=value)
    message = str(info.value)
    assert message == (f"loss strategy 'imtl': option 'loss_scale' (IMTL-L's learned loss scales, the paper's hybrid IMTL; "
                       f"false: IMTL-G alone) must be true or false, got {value!r}")
    assert "\n" not in message
    with pytest.raises(TypeError, match=r"unexpected option 'loss_scales' \(did you mean 'loss_scale'\?\)"):
        get_component("loss", "imtl")(["a", "b"], loss_scales=True)


def _quiet(make_config, **sections):
    """Dropout off, so runs with the same data and parameters compute the same."""
    return make_config(tasks=[{**t, "head_options": {"dropout": 0.0}} for t in make_config()["tasks"]],
                       encoder={**make_config()["encoder"], "options": {"encoder_kwargs": {
                           "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}}, **sections)


def test_a_run_trains_the_scales_logs_weights_and_resumes_exactly(tmp_path, make_config, helpers):
    from mtcore import Trainer
    from mtcore.train.state_files import load_state

    config = make_config(loss={"strategy": "imtl"}, checkpoint={"every": 2, "keep_last": 100},
                         schedule={"max_steps": 4, "warmup_steps": 1}, logging={"every": 1, "progress": "none", "plot": False})
    overrides = ["loss.options.loss_scale=true"]
    full = tmp_path / "full"
    summary = Trainer(config, output_dir=full, overrides=overrides).train()
    assert summary["steps"] == 4 and all(math.isfinite(v) for v in summary["final"]["metrics"].values())
    events = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines() if line.strip()]
    weights = [e["weights"] for e in events if e["event"] == "loss_weights"]
    assert len(weights) == 4 and all(len(w) == 3 and all(math.isfinite(v) for v in w.values()) for w in weights), weights
    steps = sorted(p.name for p in (full / "checkpoints").glob("step-*"))
    assert len(steps) == 2
    start = load_state(full / "checkpoints" / steps[0] / "trainer")["strategy"]
    assert set(start) == {"log_scales"} and start["log_scales"].shape == (3,) and start["log_scales"].abs().min() > 0  # learned
    resumed = tmp_path / "resumed"
    helpers.stopped_copy(full, resumed, steps[0], step=2)
    Trainer(config, output_dir=resumed, resume=True, overrides=overrides).train()
    a, b = helpers.load_weights(full / "model"), helpers.load_weights(resumed / "model")
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []
    mine, theirs = (load_state(run / "checkpoints" / steps[1] / "trainer")["strategy"]["log_scales"] for run in (full, resumed))
    assert torch.equal(mine, theirs) and not torch.equal(mine, start["log_scales"])
    later = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert [e["weights"] for e in later if e["event"] == "loss_weights"][-1] == weights[-1]


def test_gradient_accumulation_trains_two_micro_steps_of_4_rows_as_one_step_of_8(make_config, tmp_path, helpers):
    from mtcore import Trainer
    from mtcore.train.state_files import load_state

    def train(name: str, overrides: list[str]) -> tuple[dict, torch.Tensor]:
        config = _quiet(make_config, loss={"strategy": "imtl", "options": {"loss_scale": True}},
                        schedule={"max_steps": 4, "warmup_steps": 1}, batching={"batch_size": 8, "group_by_length": False},
                        checkpoint={"every": 4, "keep_last": 1}, evaluation={"every": None, "at_end": False})
        Trainer(config, output_dir=tmp_path / name, overrides=overrides).train()
        last = sorted((tmp_path / name / "checkpoints").glob("step-*"))[-1]
        scales = load_state(last / "trainer")["strategy"]["log_scales"]
        return helpers.load_weights(tmp_path / name / "model"), scales

    accumulated, acc_scales = train("accumulated", ["optimizer.gradient_accumulation_steps=2", "batching.batch_size=4"])
    whole, whole_scales = train("whole", [])
    assert accumulated.keys() == whole.keys()
    worst = max((accumulated[k] - whole[k]).abs().max().item() for k in whole)
    assert worst < 1e-5, worst
    assert torch.allclose(acc_scales, whole_scales, atol=1e-6) and whole_scales.abs().min() > 1e-4


def test_mt_train_refuses_a_bad_loss_scale_in_one_line(make_config, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(make_config(loss={"strategy": "imtl"})), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(tmp_path / "run.yaml"), "--output-dir", str(tmp_path / "run"),
                                      "loss.options.loss_scale=2"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if "loss_scale" in line]
    assert len(lines) == 1 and "option 'loss_scale'" in lines[0] and "must be true or false, got 2" in lines[0], result.output
    assert "Traceback" not in result.output
