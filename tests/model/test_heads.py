"""The built-in heads on their own: shapes, masked losses, pooling, options and their errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mtcore.errors import ConfigError, UnknownNameError
from mtcore.model.heads.base import Head, HeadSpec
from mtcore.model.heads.classification import ClassificationHead, MLPHead
from mtcore.model.heads.factory import build_head
from mtcore.model.heads.multi_label import MultiLabelHead
from mtcore.model.heads.multiple_choice import MultipleChoiceHead
from mtcore.model.heads.pooling import pool
from mtcore.model.heads.regression import RegressionHead
from mtcore.model.heads.token_classification import TokenClassificationHead
from mtcore.plugins import get_component

H = 8


def states(batch: int = 4, length: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, H, generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, 3:] = 0
    return hidden, mask


@pytest.mark.parametrize(
    "name, cls",
    [("classification", ClassificationHead), ("mlp", MLPHead), ("regression", RegressionHead), ("multi_label", MultiLabelHead),
     ("multiple_choice", MultipleChoiceHead), ("token_classification", TokenClassificationHead)],
)
def test_builtin_heads_are_registered_under_their_names(name, cls):
    assert get_component("head", name) is cls
    assert issubclass(cls, Head)


def test_mean_and_max_pooling_ignore_padding():
    hidden, mask = states()
    noisy = hidden.clone()
    noisy[0, 3:] = 1e4  # padding positions of row 0
    assert torch.allclose(pool(hidden, mask, "mean"), pool(noisy, mask, "mean"))
    assert torch.allclose(pool(hidden, mask, "max"), pool(noisy, mask, "max"))
    assert torch.allclose(pool(hidden, mask, "mean")[0], hidden[0, :3].mean(0))
    assert torch.equal(pool(hidden, mask, "cls"), hidden[:, 0])


def test_mean_pooling_of_bf16_states_sums_in_float32():
    """bf16 hidden states (a bf16 residual stream, a bf16 model): the mean is the float32 mean,
    rounded once; a bf16 count of 301 tokens would already round to 300 or 302."""
    torch.manual_seed(0)
    hidden = torch.randn(2, 320, 8).to(torch.bfloat16)
    mask = torch.ones(2, 320, dtype=torch.long)
    mask[0, 301:] = 0
    pooled = pool(hidden, mask, "mean")
    assert pooled.dtype == torch.bfloat16
    assert torch.equal(pooled, pool(hidden.float(), mask, "mean").to(torch.bfloat16))


def test_classification_loss_is_cross_entropy_and_skips_unlabelled_rows():
    head = ClassificationHead(H, 3, dropout=0.0)
    hidden, mask = states()
    labels = torch.tensor([2, -1, 0, 1])
    out = head(hidden, mask, labels=labels)
    assert out.logits.shape == (4, 3)
    expected = F.cross_entropy(out.logits[[0, 2, 3]], labels[[0, 2, 3]])
    assert torch.allclose(out.loss, expected)


def test_all_unlabelled_batch_gives_no_loss_in_eval_and_a_finite_zero_in_training():
    head = ClassificationHead(H, 2)
    hidden, mask = states()
    none = torch.full((4,), -1)
    head.eval()
    assert head(hidden, mask, labels=none).loss is None
    head.train()
    loss = head(hidden, mask, labels=none).loss
    assert torch.isfinite(loss) and loss.item() == 0.0
    loss.backward()  # a zero gradient, not a crash
    assert all(p.grad is None or torch.all(p.grad == 0) for p in head.parameters())


def test_mlp_head_has_the_requested_layers_and_activation():
    head = MLPHead(H, 3, num_layers=3, linear_hidden_size=16, activation="tanh", dropout_between=0.2)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(H, 16), (16, 16), (16, 3)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in head.modules()) == 2
    single = MLPHead(H, 3, num_layers=1)
    assert [type(m) for m in single.layers] == [torch.nn.Linear]


def test_regression_mse_with_nan_as_no_label():
    head = RegressionHead(H, dropout=0.0)
    hidden, mask = states()
    labels = torch.tensor([0.5, float("nan"), 2.0, -1.0])
    out = head(hidden, mask, labels=labels)
    assert out.logits.shape == (4, 1)
    keep = [0, 2, 3]
    assert torch.allclose(out.loss, F.mse_loss(out.logits[keep, 0], labels[keep]))


def test_multi_label_bce_on_multi_hot_floats():
    head = MultiLabelHead(H, 3, dropout=0.0)
    hidden, mask = states()
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    out = head(hidden, mask, labels=labels)
    assert torch.allclose(out.loss, F.binary_cross_entropy_with_logits(out.logits, labels))


def test_multiple_choice_scores_each_choice_with_one_scorer():
    head = MultipleChoiceHead(H, dropout=0.0)
    hidden, mask = states(batch=6)  # 3 questions x 2 choices, flattened
    labels = torch.tensor([1, 0, 1])
    out = head(hidden, mask, labels=labels, num_choices=2)
    assert out.logits.shape == (3, 2)
    scores = head.scorer(hidden[:, 0]).view(3, 2)
    assert torch.allclose(out.logits, scores)
    assert torch.allclose(out.loss, F.cross_entropy(scores, labels))


def test_multiple_choice_shared_bias_is_not_trained():
    """A shift shared by every choice cancels in the softmax: its gradient is float noise that Adam scaled up to
    learning-rate-sized steps (and DDP ranks disagreed on). It stays 0 and out of the optimizer."""
    head = MultipleChoiceHead(H, pooling="cls", dropout=0.0)
    assert head.scorer.bias.item() == 0.0 and not head.scorer.bias.requires_grad
    optimizer = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=0.1)
    weight = head.scorer.weight.detach().clone()
    for seed in range(3):
        hidden, mask = states(batch=6, seed=seed)
        choices, labels = (2, [0, 1, 1]) if seed else (3, [0, 2])
        head(hidden, mask, labels=torch.tensor(labels), num_choices=choices).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert head.scorer.bias.item() == 0.0 and not torch.equal(head.scorer.weight, weight)


def test_token_classification_ignores_minus_100():
    head = TokenClassificationHead(H, 4, dropout=0.0)
    hidden, mask = states()
    labels = torch.randint(0, 4, (4, 5))
    labels[:, 0] = -100
    labels[0, 3:] = -100
    out = head(hidden, mask, labels=labels)
    assert out.logits.shape == (4, 5, 4)
    assert torch.allclose(out.loss, F.cross_entropy(out.logits.reshape(-1, 4), labels.reshape(-1), ignore_index=-100))
    head.eval()
    assert head(hidden, mask, labels=torch.full((4, 5), -100)).loss is None


def test_unknown_head_name_says_did_you_mean():
    with pytest.raises(UnknownNameError, match="did you mean 'classification'"):
        build_head("demo:t", HeadSpec("clasification", 2, kind="text_classification"), H)


def test_unknown_head_option_says_did_you_mean_and_lists_options():
    with pytest.raises(UnknownNameError) as info:
        build_head("demo:t", HeadSpec("classification", 2, options={"poolin": "mean"}), H)
    message = str(info.value)
    assert "'poolin'" in message and "did you mean 'pooling'" in message and "demo:t" in message and "\n" not in message


def test_bad_option_values_fail_in_one_line_naming_the_task():
    with pytest.raises(UnknownNameError, match=r"demo:t.*pooling 'maxx' \(did you mean 'max'"):
        build_head("demo:t", HeadSpec("classification", 2, options={"pooling": "maxx"}), H)
    with pytest.raises(UnknownNameError, match="activation 'rleu'"):
        build_head("demo:t", HeadSpec("mlp", 2, options={"activation": "rleu"}), H)
    with pytest.raises(ConfigError, match="dropout"):
        build_head("demo:t", HeadSpec("classification", 2, options={"dropout": 1.5}), H)
    with pytest.raises(ConfigError, match="JSON"):
        build_head("demo:t", HeadSpec("mlp", 2, options={"activation": torch.relu}), H)


def test_head_for_another_kind_is_refused():
    with pytest.raises(ConfigError, match=r"demo:t' \(regression\) cannot use head 'classification'"):
        build_head("demo:t", HeadSpec("classification", 1, kind="regression"), H)


def test_head_options_reach_the_head():
    head, info = build_head("demo:t", HeadSpec("classification", 2, kind="text_classification", options={"pooling": "mean", "dropout": 0.3}), H)
    assert head.pooler.pooling == "mean" and math.isclose(head.pooler.dropout.p, 0.3)
    assert info["head"] == "classification" and info["head_options"] == {"pooling": "mean", "dropout": 0.3}
    assert info["num_labels"] == 2 and info["head_registered"] is True
