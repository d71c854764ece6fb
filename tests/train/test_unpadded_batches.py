"""Batches with no padded position reach the encoder without their all-ones attention mask (no host sync in SDPA's
mask check), with the same results."""

from __future__ import annotations

import torch
from transformers.models.bert.modeling_bert import BertModel

from mtcore.data.batch import model_inputs
from mtcore.data.collate import Collator
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import HeadSpec
from mtcore.testing import build_tiny_encoder, smoke_train

HEADS = {"demo:pair": HeadSpec("classification", 3, kind="pair_classification", options={"pooling": "mean", "dropout": 0.0})}


def test_the_model_gives_the_same_loss_and_logits_without_the_mask(tmp_path):
    model = MultitaskModel(build_tiny_encoder(tmp_path / "enc", "bert"), HEADS).eval()
    rows = [{"input_ids": [2, 11, 12, 13, 3], "token_type_ids": [0, 0, 0, 1, 1], "labels": label} for label in (0, 2)]
    batch = Collator(0, "pair_classification")(rows)
    assert batch.no_padding
    with torch.no_grad():
        full, without = model("demo:pair", **batch), model("demo:pair", **model_inputs(batch))
    assert torch.equal(full.logits, without.logits) and torch.equal(full.loss, without.loss)


def test_the_training_loop_leaves_the_mask_out_only_where_no_position_is_padding(tmp_path, monkeypatch):
    seen: list[bool] = []
    forward = BertModel.forward

    def recording(self, *args, **kwargs):
        if self.training:
            seen.append(kwargs.get("attention_mask") is None)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertModel, "forward", recording)
    smoke_train(["rsg:terra"], output_dir=tmp_path / "one-row", steps=3, batch_size=1, evaluate=False)
    assert seen == [True, True, True]  # a batch of one row has no padding
    seen.clear()
    smoke_train(["rsg:terra"], output_dir=tmp_path / "four-rows", steps=3, batch_size=4, evaluate=False,
                overrides=["batching.group_by_length=false"])
    assert len(seen) == 3 and not any(seen)  # rows of several lengths: padded, the mask goes along
