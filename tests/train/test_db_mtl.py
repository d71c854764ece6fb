"""DB-MTL (Lin et al. 2023): the update against hand computations (log-loss gradients, their averages at rate
``β / t^σ``, every average raised to the largest norm), heads on ``∇ log L`` of the whole step, zero gradients and
losses, option checks, and an exact resume from the state dict and from a real run's checkpoint."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.plugins import get_component
from mtcore.train.db_mtl import EPS, DBMTLLoss
from train.thread_ranks import run_two_ranks

F64 = torch.float64


def _step(strategy: DBMTLLoss, grads, losses, step: int) -> torch.Tensor:
    strategy.step_losses(torch.tensor(losses, dtype=F64))
    return strategy.combine([torch.tensor(g) for g in grads], step)


def test_the_update_follows_the_paper_by_hand_over_three_steps():
    s = DBMTLLoss(["a", "b"])  # β = 0.9, σ = 0.5
    # step 1: ∇log L = g / L: a (2, 0) / 2 = (1, 0), b (0, 0.5) / 0.25 = (0, 2); β₁ = 0.9, so ĝ = 0.1 of them:
    # ĝa = (0.1, 0), ĝb = (0, 0.2); α = 0.2 / (0.1, 0.2) = (2, 1); d = (0.2, 0.2); logged α / L = (1, 4)
    assert _step(s, [[2.0, 0.0], [0.0, 0.5]], [2.0, 0.25], 1).tolist() == pytest.approx([0.2, 0.2], rel=1e-6)
    assert s.task_weights() == pytest.approx({"a": 1.0, "b": 4.0}, rel=1e-6)
    # step 2, same gradients: β₂ = 0.9 / √2 = 0.636396; ĝa = 0.636396 · 0.1 + 0.363604 · 1 = 0.427244 (0),
    # ĝb = (0, 0.854487); α = (2, 1); d = (0.854487, 0.854487)
    b2 = 0.9 / math.sqrt(2)
    assert b2 == pytest.approx(0.636396, abs=1e-6)
    assert _step(s, [[2.0, 0.0], [0.0, 0.5]], [2.0, 0.25], 2).tolist() == pytest.approx([0.854487, 0.854487], rel=1e-5)
    # step 3, a's gradient grows: ∇log La = (12, 0) / 2 = (6, 0), b's stays (0, 2); β₃ = 0.9 / √3 = 0.519615:
    # ĝa = 0.519615 · 0.427244 + 0.480385 · 6 = 3.104306, ĝb = 0.519615 · 0.854487 + 0.480385 · 2 = 1.404784;
    # now a is the largest: α = (1, 3.104306 / 1.404784 = 2.209812); d = (3.104306, 3.104306); logged (0.5, 8.839249)
    d = _step(s, [[12.0, 0.0], [0.0, 0.5]], [2.0, 0.25], 3)
    assert d.tolist() == pytest.approx([3.104306, 3.104306], rel=1e-5)
    assert s.task_weights() == pytest.approx({"a": 0.5, "b": 4 * 2.209812}, rel=1e-5)
    assert int(s.updates) == 3 and s.averages.shape == (2, 2)


@pytest.mark.parametrize("beta,sigma", [(0.9, 0.5), (0.5, 0.0), (0.0, 0.5)])
def test_three_tasks_match_an_independent_float64_loop(beta, sigma):
    generator = torch.Generator().manual_seed(7)
    s, average = DBMTLLoss(["a", "b", "c"], beta=beta, beta_sigma=sigma), torch.zeros(3, 5, dtype=F64)
    for t in range(1, 5):
        grads = torch.randn(3, 5, generator=generator, dtype=F64) * torch.tensor([[1.0], [10.0], [0.1]], dtype=F64)
        losses = torch.rand(3, generator=generator, dtype=F64) * 3
        s.step_losses(losses)
        d = s.combine([g.float() for g in grads], t)
        rate = beta / t ** sigma
        average = rate * average + (1 - rate) * grads / (losses + EPS)[:, None]
        norms = average.norm(dim=1)
        alpha = norms.max() / norms
        assert torch.allclose(d.double(), (alpha[:, None] * average).sum(0), rtol=1e-5, atol=1e-6)
        assert torch.allclose(s.averages.double(), average, rtol=1e-5, atol=1e-7)
        assert list(s.task_weights().values()) == pytest.approx((alpha / (losses + EPS)).tolist(), rel=1e-5)
        if beta == 0:  # no average: the logged weights give the update from the step's gradients
            assert torch.allclose(d.double(), sum(w * g for w, g in zip(s.task_weights().values(), grads)), rtol=1e-5)


def _micro_losses(w, heads, data, scale_rows=2.0):
    """One micro-step's losses, divided by the number of micro-steps as the training loop does."""
    return {t: (w @ x + heads[t] @ y) ** 2 / scale_rows for t, (x, y) in data.items()}


def test_heads_get_the_gradient_of_the_log_of_the_step_loss_and_two_micro_steps_are_one_step():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(3, dtype=F64))
    heads = {"a": torch.nn.Parameter(torch.randn(2, dtype=F64)), "b": torch.nn.Parameter(torch.randn(2, dtype=F64))}
    micro = [{t: (torch.randn(3, dtype=F64) * (5.0 if t == "b" else 1.0), torch.randn(2, dtype=F64)) for t in heads} for _ in range(2)]

    def train(scale):
        for p in (w, *heads.values()):
            p.grad = None
        s = DBMTLLoss(["a", "b"])
        for data in micro:
            s.backward(_micro_losses(w, heads, data), [w], list(heads.values()), scale, step=1)
        s.end_backward([w], list(heads.values()), step=1)
        return s, w.grad.clone(), [h.grad.clone() for h in heads.values()]

    s, shared, head_grads = train(lambda loss: loss)
    # the reference: log of each task's whole-step loss (the sum of its micro-steps'), back-propagated at once
    log_grads = []
    for t in heads:
        step_loss = sum(_micro_losses(w, heads, data)[t] for data in micro)
        gw, gh = torch.autograd.grad(torch.log(step_loss + EPS), [w, heads[t]])
        log_grads.append(gw)
        assert torch.allclose(head_grads[list(heads).index(t)], gh, rtol=1e-6), t
    averages = [0.1 * g for g in log_grads]  # β₁ = 0.9: the averages start at 0
    norms = [float(a.norm()) for a in averages]
    expected = sum(max(norms) / n * a for n, a in zip(norms, averages))
    assert torch.allclose(shared, expected.to(shared.dtype), rtol=1e-5)
    assert min(norms) < 0.5 * max(norms)  # the balancing did something: the norms differ
    # fp16's loss scale (here 8) is on every gradient the loop gets, and is divided out of the averages
    scaled, shared8, head_grads8 = train(lambda loss: loss * 8.0)
    assert torch.allclose(shared8, 8 * shared, rtol=1e-6)
    assert all(torch.allclose(a, 8 * b, rtol=1e-6) for a, b in zip(head_grads8, head_grads))
    assert torch.allclose(scaled.averages, s.averages, rtol=1e-6)


def test_a_zero_gradient_gets_weight_0_and_zero_losses_or_all_zero_gradients_divide_nothing_by_0():
    s = DBMTLLoss(["a", "b", "c"])
    d = _step(s, [[3.0, 4.0], [0.0, 0.0], [0.0, 0.0]], [1.0, 0.0, 0.7], 1)  # b: loss 0 (gradient 0), c: gradient 0
    assert d.tolist() == pytest.approx([0.3, 0.4], rel=1e-6)  # a alone: ĝa = 0.1 · (3, 4), α = 1
    assert s.task_weights() == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.0})
    assert torch.isfinite(s.averages).all()
    zero = DBMTLLoss(["a", "b"])
    assert _step(zero, [[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0], 1).tolist() == [0.0, 0.0]
    assert zero.task_weights() == {"a": 0.0, "b": 0.0}
    one = DBMTLLoss(["a"], beta=0.0)  # one task, no average: the log-loss gradient itself
    assert _step(one, [[1.0, -2.0]], [4.0], 1).tolist() == pytest.approx([0.25, -0.5], rel=1e-6)


def test_a_non_finite_loss_is_not_averaged_in():
    s = DBMTLLoss(["a", "b"])
    _step(s, [[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0], 1)
    before, count = s.averages.clone(), int(s.updates)
    d = _step(s, [[1.0, 0.0], [0.0, 1.0]], [float("nan"), 1.0], 2)
    assert d.tolist() == [1.0, 1.0]  # the plain sum passes on, as for a non-finite gradient
    assert torch.equal(s.averages, before) and int(s.updates) == count


@pytest.mark.parametrize("options,expected", [
    ({"beta": 1.0}, "option 'beta' (the rate β of the gradient averages, βₜ = β / t^σ; 0: no average) must be a number in [0, 1), got 1.0"),
    ({"beta": -0.1}, "must be a number in [0, 1), got -0.1"),
    ({"beta": "high"}, "option 'beta' (the rate β of the gradient averages, βₜ = β / t^σ) must be a finite number, got 'high'"),
    ({"beta": True}, "option 'beta' (the rate β"),
    ({"beta": float("nan")}, "must be a finite number, got nan"),
    ({"beta_sigma": -0.5}, "option 'beta_sigma' (the decay σ of the rate, βₜ = β / t^σ; 0: a constant rate) must be a number >= 0, got -0.5"),
    ({"beta_sigma": float("inf")}, "option 'beta_sigma' (the decay σ of the rate, βₜ = β / t^σ) must be a finite number, got inf"),
    ({"betta": 0.5}, "unexpected option 'betta' (did you mean 'beta'?)"),
])
def test_bad_options_are_one_line_errors(options, expected):
    with pytest.raises((ConfigError, TypeError)) as info:
        get_component("loss", "db_mtl")(["a", "b"], **options)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_the_state_dict_resumes_the_averages_and_their_count_exactly():
    generator = torch.Generator().manual_seed(3)
    steps = [([torch.randn(4, generator=generator) for _ in range(2)], torch.rand(2, generator=generator, dtype=F64) + 0.1)
             for _ in range(4)]
    s = DBMTLLoss(["a", "b"], beta=0.8, beta_sigma=0.3)
    for t, (grads, losses) in enumerate(steps[:2], start=1):
        s.step_losses(losses)
        s.combine(grads, t)
    state = {k: v.detach().cpu().clone() for k, v in s.state_dict().items()}  # as a checkpoint saves it
    assert set(state) == {"averages", "updates"} and state["averages"].shape == (2, 4) and int(state["updates"]) == 2
    resumed = DBMTLLoss(["a", "b"], beta=0.8, beta_sigma=0.3)  # its averages are not sized yet
    resumed.load_state_dict(state)
    outputs = []
    for t, (grads, losses) in enumerate(steps[2:], start=3):
        for strategy in (s, resumed):
            strategy.step_losses(losses)
        outputs.append(resumed.combine(grads, t))
        assert torch.equal(outputs[-1], s.combine(grads, t))
    fresh = DBMTLLoss(["a", "b"], beta=0.8, beta_sigma=0.3)  # nothing restored: its averages start again at 0, t = 1
    fresh.step_losses(steps[2][1])
    assert not torch.allclose(fresh.combine(steps[2][0], 3), outputs[0], rtol=1e-2)
    assert torch.equal(resumed.averages, s.averages) and int(resumed.updates) == 4
    with pytest.raises(ConfigError, match="hold 4 values per task .* the encoder has 5"):
        resumed.combine([torch.ones(5), torch.ones(5)], 5)


def test_a_run_trains_logs_its_weights_and_resumes_exactly(tmp_path, make_config, helpers):
    from transformers import AutoModel

    from mtcore import Trainer
    from mtcore.train.state_files import load_state

    config = make_config(loss={"strategy": "db_mtl"}, checkpoint={"every": 2, "keep_last": 100},
                         schedule={"max_steps": 4, "warmup_steps": 1}, logging={"every": 1, "progress": "none", "plot": False})
    full = tmp_path / "full"
    summary = Trainer(config, output_dir=full).train()
    assert summary["steps"] == 4 and all(math.isfinite(v) for v in summary["final"]["metrics"].values())
    events = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines() if line.strip()]
    weights = [e["weights"] for e in events if e["event"] == "loss_weights"]
    assert len(weights) == 4 and all(len(w) == 3 and min(w.values()) > 0 for w in weights), weights
    steps = sorted(p.name for p in (full / "checkpoints").glob("step-*"))
    assert len(steps) == 2
    start = load_state(full / "checkpoints" / steps[0] / "trainer")["strategy"]
    bare = AutoModel.from_pretrained(config["encoder"]["path"], add_pooling_layer=False)  # the heads pool: no pooler trained
    encoder = sum(p.numel() for p in bare.parameters())
    assert int(start["updates"]) == 2 and start["averages"].shape == (3, encoder) and start["averages"].abs().max() > 0
    resumed = tmp_path / "resumed"
    helpers.stopped_copy(full, resumed, steps[0], step=2)
    Trainer(config, output_dir=resumed, resume=True).train()
    a, b = helpers.load_weights(full / "model"), helpers.load_weights(resumed / "model")
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []
    mine, theirs = (load_state(run / "checkpoints" / steps[1] / "trainer")["strategy"] for run in (full, resumed))
    assert int(mine["updates"]) == 4 and all(torch.equal(mine[k], theirs[k]) for k in ("averages", "updates"))


def test_two_processes_divide_by_the_global_step_loss_as_one_process_with_both_halves():
    """DDP through the strategy's own ``reduce_mean`` (two threads standing for two processes): each rank's losses and
    gradients are averaged before the log's division, so both ranks write what one process writes with the global
    batch, whose loss is the mean of the two halves' (the loop divides each rank's loss so that the mean is that)."""
    torch.manual_seed(1)
    w0, h0 = torch.randn(3, dtype=F64), {t: torch.randn(2, dtype=F64) for t in ("a", "b")}
    halves = [{t: (torch.randn(3, dtype=F64) * (4.0 if t == "b" else 1.0), torch.randn(2, dtype=F64)) for t in h0} for _ in range(2)]

    def run(rank_losses, reduce_mean):
        w = torch.nn.Parameter(w0.clone())
        heads = {t: torch.nn.Parameter(h.clone()) for t, h in h0.items()}
        s = DBMTLLoss(["a", "b"])
        for step in (1, 2):  # two steps: the averages carry the first step's log-gradients
            for p in (w, *heads.values()):
                p.grad = None
            s.backward(rank_losses(w, heads), [w], list(heads.values()), lambda loss: loss, step)
            s.end_backward([w], list(heads.values()), step, reduce_mean)
        return [w.grad, *(h.grad for h in heads.values()), s.averages]

    one = run(lambda w, heads: {t: sum(_micro_losses(w, heads, half, 1.0)[t] for half in halves) / 2 for t in h0}, None)
    out = run_two_ranks(lambda rank, reduce_mean: run(lambda w, heads: _micro_losses(w, heads, halves[rank], 1.0), reduce_mean))
    for rank in (0, 1):
        assert out[rank] is not None, rank
        assert all(torch.allclose(a.double(), b.double(), rtol=1e-6, atol=1e-12) for a, b in zip(out[rank], one)), rank
