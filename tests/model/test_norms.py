"""``fp32_residual=False``: layer norms keep bf16 activations under autocast, nothing else changes."""

from __future__ import annotations

import pytest
import torch

from mtcore.errors import ConfigError
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import HeadSpec
from mtcore.model.norms import ComputeDtypeLayerNorm

HEADS = {"demo:pair": HeadSpec("classification", 3, kind="pair_classification", options={"pooling": "mean", "dropout": 0.0})}


def _batch() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[2, 11, 12, 13, 3, 21, 22, 3], [2, 14, 3, 0, 0, 0, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([1, 2])}


def _model(path, **options) -> MultitaskModel:
    torch.manual_seed(0)
    return MultitaskModel(path, HEADS, encoder_kwargs={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}, **options)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_norm_outputs_stay_bf16_under_autocast_and_match_the_fp32_residual_model(arch, tiny_encoders):
    default, low = _model(tiny_encoders[arch]), _model(tiny_encoders[arch], fp32_residual=False)
    assert default.state_dict().keys() == low.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), low.state_dict().values()))
    norms = [m for m in low.encoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(type(m) is ComputeDtypeLayerNorm for m in norms)
    outputs = {}
    for name, model in (("default", default), ("low", low)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs[name] = model.encoder(**{k: v for k, v in _batch().items() if k != "labels"}).last_hidden_state
    assert outputs["default"].dtype == torch.float32 and outputs["low"].dtype == torch.bfloat16
    assert (outputs["default"] - outputs["low"].float()).abs().max() < 0.1  # bf16 rounding, not another function
    # outside autocast the norm is nn.LayerNorm: the same function exactly
    batch = _batch()
    assert torch.equal(default("demo:pair", **batch).logits, low("demo:pair", **batch).logits)


def test_gradients_reach_the_float32_norm_weights(tiny_encoders):
    model = _model(tiny_encoders["bert"], fp32_residual=False).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model("demo:pair", **_batch()).loss
    loss.backward()
    norm = model.encoder.embeddings.LayerNorm
    assert norm.weight.dtype == torch.float32 and norm.weight.grad is not None
    assert norm.weight.grad.dtype == torch.float32 and norm.weight.grad.abs().sum() > 0


def test_fp32_residual_must_be_a_boolean(tiny_encoders):
    with pytest.raises(ConfigError, match="fp32_residual must be true or false"):
        _model(tiny_encoders["bert"], fp32_residual="no")


def test_a_saved_model_reloads_with_its_norms(tiny_encoders, tmp_path):
    low = _model(tiny_encoders["bert"], fp32_residual=False)
    loaded = MultitaskModel.from_pretrained(low.save_pretrained(tmp_path / "low"))
    assert all(type(m) is ComputeDtypeLayerNorm for m in loaded.encoder.modules() if isinstance(m, torch.nn.LayerNorm))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(loaded("demo:pair", **_batch()).logits, low("demo:pair", **_batch()).logits)
    plain = MultitaskModel.from_pretrained(_model(tiny_encoders["bert"]).save_pretrained(tmp_path / "plain"))
    assert not any(isinstance(m, ComputeDtypeLayerNorm) for m in plain.encoder.modules())
