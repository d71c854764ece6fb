"""GradNorm: learned loss weights that even out the tasks' weighted gradient norms, and give more weight to a task
whose loss falls slower; the update is the weighted sum, heads scaled by their task's weight."""

from __future__ import annotations

import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.train.gradient_balancers import GradNormLoss


def _step(strategy: GradNormLoss, losses: dict[str, torch.Tensor], shared: list[torch.nn.Parameter],
          heads: list[torch.nn.Parameter], step: int) -> None:
    for p in shared + heads:
        p.grad = None
    strategy.backward(losses, shared, heads, lambda loss: loss, step)
    strategy.end_backward(shared, heads, step)


def test_the_task_with_the_larger_gradient_loses_weight_and_the_weights_keep_their_sum():
    x = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
    head_a = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
    head_b = torch.nn.Parameter(torch.tensor(-0.2, dtype=torch.float64))
    strategy = GradNormLoss(["a", "b"], alpha=1.5, lr=0.05)
    history = []
    for step in range(1, 21):
        losses = {"a": 10 * ((x + head_a) ** 2).sum(), "b": ((x - head_b) ** 2).sum()}  # a's gradient is 10 times b's scale
        used = strategy.loss_weights.clone()
        g_a = torch.autograd.grad(losses["a"], [x, head_a], retain_graph=True)
        g_b = torch.autograd.grad(losses["b"], [x, head_b], retain_graph=True)
        _step(strategy, losses, [x], [head_a, head_b], step)
        assert torch.allclose(x.grad, used[0] * g_a[0] + used[1] * g_b[0])  # sum of w_i L_i, this step's weights
        assert torch.allclose(head_a.grad, used[0] * g_a[1]) and torch.allclose(head_b.grad, used[1] * g_b[1])
        assert strategy.task_weights() == pytest.approx({"a": float(used[0]), "b": float(used[1])})
        history.append(strategy.loss_weights.clone())
        assert float(strategy.loss_weights.sum()) == pytest.approx(2.0)
    assert history[-1][0] < history[0][0] < 1.0 < history[0][1] < history[-1][1]  # a keeps losing weight to b


def test_a_task_whose_loss_falls_slower_gets_more_weight():
    """Equal gradients, one loss falling and one not: the relative inverse training rate r_i^alpha moves the targets."""
    x = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    u, v = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    strategy = GradNormLoss(["fast", "slow"], alpha=1.5, lr=0.05)
    for step in range(1, 11):
        falling = 5.0 / step  # the value falls, the gradient (u) stays
        losses = {"fast": x @ u + falling, "slow": x @ v + 5.0}
        _step(strategy, losses, [x], [], step)
    weights = strategy.task_weights()
    assert weights["slow"] > 1.0 > weights["fast"], weights
    flat = GradNormLoss(["fast", "slow"], alpha=0.0, lr=0.05)  # alpha 0: only the gradient norms count, and they are equal
    for step in range(1, 11):
        _step(flat, {"fast": x @ u + 5.0 / step, "slow": x @ v + 5.0}, [x], [], step)
    assert flat.task_weights() == pytest.approx({"fast": 1.0, "slow": 1.0})


@pytest.mark.parametrize(("options", "message"), [
    ({"alpha": -1}, "option 'alpha' (the restoring force"),
    ({"lr": 0}, "option 'lr' (the learning rate of the loss weights) must be a number > 0"),
    ({"alpha": True}, "option 'alpha'"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GradNormLoss(["a", "b"], **options)
