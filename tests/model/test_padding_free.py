"""Padding-free batches: the encoder runs on real tokens only and gives what the padded batch gives."""

from __future__ import annotations

import json

import pytest
import torch

from mtcore.data.collate import Collator
from mtcore.errors import ConfigError, DataError
from mtcore.model import MultitaskModel
from mtcore.model import padding_free
from mtcore.model.heads.base import HeadSpec

PACKABLE = ["bert", "roberta", "xlm-roberta", "electra", "distilbert", "modernbert"]

PAIR_ROWS = [  # different lengths, second segments, one row much shorter than the others
    {"input_ids": [2, 11, 12, 13, 3, 21, 22, 3], "token_type_ids": [0, 0, 0, 0, 0, 1, 1, 1], "labels": 1},
    {"input_ids": [2, 14, 3], "token_type_ids": [0, 0, 0], "labels": 0},
    {"input_ids": [2, 15, 16, 3, 23, 3], "token_type_ids": [0, 0, 0, 0, 1, 1], "labels": 2},
]


def _batches(kind: str, rows, pad_id: int = 0):
    padded = Collator(pad_id, kind)(rows)
    packed = Collator(pad_id, kind, padding_free=True)(rows)
    return padded, packed


def test_collator_adds_the_real_token_index_and_cumulative_lengths():
    padded, packed = _batches("pair_classification", PAIR_ROWS)
    assert set(packed) == set(padded) | {"token_index", "cu_seqlens"}
    length = padded["input_ids"].shape[1]
    assert length == 8
    expected_index = list(range(0, 8)) + [8, 9, 10] + [16 + i for i in range(6)]
    assert packed["token_index"].tolist() == expected_index
    assert packed["cu_seqlens"].tolist() == [0, 8, 11, 17]
    assert packed["cu_seqlens"].dtype == torch.int32
    # the gathered ids are exactly the rows' ids, concatenated
    gathered = packed["input_ids"].reshape(-1)[packed["token_index"]].tolist()
    assert gathered == [i for row in PAIR_ROWS for i in row["input_ids"]]


def test_multiple_choice_rows_index_the_flattened_choices():
    rows = [{"input_ids": [[2, 5, 3], [2, 6, 7, 3]], "labels": 1}, {"input_ids": [[2, 3], [2, 8, 3]], "labels": 0}]
    packed = Collator(0, "multiple_choice", padding_free=True)(rows)
    assert packed["input_ids"].shape == (2, 2, 4)
    assert packed["cu_seqlens"].tolist() == [0, 3, 7, 9, 12]
    assert packed["input_ids"].reshape(-1)[packed["token_index"]].tolist() == [2, 5, 3, 2, 6, 7, 3, 2, 3, 2, 8, 3]


@pytest.mark.parametrize("arch", PACKABLE)
def test_packed_logits_equal_padded_logits(arch, tiny_encoders):
    pooling = "pooler" if arch in ("bert", "roberta", "xlm-roberta") else "cls"
    heads = {"demo:pair": HeadSpec("classification", 3, kind="pair_classification", options={"pooling": pooling}),
             "demo:mean": HeadSpec("mlp", 3, kind="text_classification", options={"pooling": "mean"})}
    model = MultitaskModel(tiny_encoders[arch], heads, padding_free=True)
    assert model.padding_free and model.encoder.config._attn_implementation == padding_free.IMPLEMENTATION
    pad_id = int(model.encoder.config.pad_token_id or 0)
    padded, packed = _batches("pair_classification", PAIR_ROWS, pad_id)
    with torch.no_grad():
        for task in heads:
            reference = model(task, **padded)
            result = model(task, **packed)
            assert torch.allclose(result.logits, reference.logits, atol=1e-5), (task, result.logits - reference.logits)
            assert torch.allclose(result.loss, reference.loss, atol=1e-5)


def test_token_classification_and_multiple_choice_match(tiny_encoders, make_batch):
    heads = {"demo:ner": HeadSpec("token_classification", 5, kind="token_classification"),
             "demo:choice": HeadSpec("multiple_choice", 1, kind="multiple_choice", options={"pooling": "max"})}
    model = MultitaskModel(tiny_encoders["bert"], heads, padding_free=True)
    for task, kind in (("demo:ner", "token_classification"), ("demo:choice", "multiple_choice")):
        batch = make_batch(kind, num_labels=5)
        token_index, cu_seqlens = padding_free.pack_indices(batch["attention_mask"])
        with torch.no_grad():
            reference = model(task, **batch)
            result = model(task, **batch, token_index=token_index, cu_seqlens=cu_seqlens)
        assert result.logits.shape == reference.logits.shape
        real = batch["attention_mask"].bool() if kind == "token_classification" else slice(None)
        assert torch.allclose(result.logits[real], reference.logits[real], atol=1e-5)
        assert torch.allclose(result.loss, reference.loss, atol=1e-5)


def test_gradients_equal_padded_gradients(tiny_encoders):
    model = MultitaskModel(tiny_encoders["bert"], {"demo:pair": HeadSpec("classification", 3, kind="pair_classification",
                                                                         options={"pooling": "pooler", "dropout": 0.0})},
                           padding_free=True)
    model.train()
    for module in model.modules():  # dropout off: the two paths must then be the same function
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.encoder.config.attention_probs_dropout_prob = 0.0
    padded, packed = _batches("pair_classification", PAIR_ROWS)
    grads = []
    for batch in (padded, packed):
        model.zero_grad()
        model("demo:pair", **batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any(n.startswith("encoder.embeddings") for n in grads[0])
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name


def test_unpackable_encoder_is_a_one_line_config_error(tiny_encoders):
    with pytest.raises(ConfigError, match=r"DebertaV2Model does not support padding-free batches.*padding_free: false") as info:
        MultitaskModel(tiny_encoders["deberta-v2"], {"demo:a": HeadSpec("classification", 2, kind="text_classification")},
                       padding_free=True)
    assert "\n" not in str(info.value)


def test_the_probe_catches_a_packing_that_changes_the_outputs(tiny_encoders, monkeypatch):
    monkeypatch.setattr(padding_free, "position_offset", lambda encoder: 7)  # wrong positions for BERT
    model = MultitaskModel(tiny_encoders["bert"], {"demo:a": HeadSpec("classification", 2, kind="text_classification")})
    with pytest.raises(ConfigError, match="packed and padded outputs differ: hidden states by up to"):
        model.enable_padding_free()
    assert not model.padding_free
    assert model.encoder.config._attn_implementation == "sdpa"  # left as it was


def test_a_packed_batch_for_a_model_that_is_not_padding_free_is_refused(tiny_encoders):
    model = MultitaskModel(tiny_encoders["bert"], {"demo:pair": HeadSpec("classification", 3, kind="pair_classification")})
    _, packed = _batches("pair_classification", PAIR_ROWS)
    with pytest.raises(DataError, match=r"call model.enable_padding_free\(\)"):
        model("demo:pair", **packed)


def test_saved_padding_free_model_loads_anywhere(tiny_encoders, tmp_path):
    from transformers import AutoModel

    model = MultitaskModel(tiny_encoders["bert"], {"demo:pair": HeadSpec("classification", 3, kind="pair_classification")},
                           padding_free=True)
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "encoder" / "config.json").read_text())
    assert padding_free.IMPLEMENTATION not in json.dumps(config)
    assert AutoModel.from_pretrained(tmp_path / "m" / "encoder").config._attn_implementation != padding_free.IMPLEMENTATION
    loaded = MultitaskModel.from_pretrained(tmp_path / "m", padding_free=True)
    padded, packed = _batches("pair_classification", PAIR_ROWS)
    with torch.no_grad():
        assert torch.allclose(loaded("demo:pair", **packed).logits, model("demo:pair", **padded).logits, atol=1e-5)


def test_gradient_checkpointing_passes_the_packing_through(tiny_encoders):
    """Checkpointed layers get the packing too: same loss and gradients as without checkpointing."""
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = MultitaskModel(tiny_encoders["bert"], {"demo:pair": HeadSpec("classification", 3, kind="pair_classification",
                                                                             options={"dropout": 0.0})},
                               padding_free=True, gradient_checkpointing=checkpointing).train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        model.encoder.config.attention_probs_dropout_prob = 0.0
        _, packed = _batches("pair_classification", PAIR_ROWS)
        loss = model("demo:pair", **packed).loss
        loss.backward()
        results.append((loss.detach(), model.encoder.embeddings.word_embeddings.weight.grad.clone()))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6) and results[0][1].abs().sum() > 0


@pytest.mark.parametrize("path", ["per_sequence", "repadded"])
def test_both_attention_paths_equal_attention_on_each_sequence_alone(path):
    """The CPU path (SDPA per sequence) and the compiled / CUDA fallback (re-padded SDPA) both
    give every token the attention over its own sequence only."""
    torch.manual_seed(0)
    lengths, heads, dim = [4, 1, 6], 2, 8
    query, key, value = (torch.randn(1, heads, sum(lengths), dim) for _ in range(3))
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    token_index, cu_seqlens = padding_free.pack_indices(mask)
    if path == "per_sequence":
        out = padding_free._per_sequence(query, key, value, cu_seqlens, 0.0, None)
    else:
        out = padding_free._repadded(query, key, value, token_index, mask.bool()[:, None, None, :], 0.0, None)
    assert out.shape == (1, sum(lengths), heads, dim)
    start = 0
    for n in lengths:
        alone = torch.nn.functional.scaled_dot_product_attention(*(t[:, :, start:start + n] for t in (query, key, value)))
        assert torch.allclose(out[:, start:start + n], alone.transpose(1, 2), atol=1e-6)
        start += n


def test_multiple_choice_rows_with_different_choice_counts_pack_like_each_row_alone(tiny_encoders):
    heads = {"demo:choice": HeadSpec("multiple_choice", 1, kind="multiple_choice", options={"pooling": "mean"}),
             "demo:pair": HeadSpec("classification", 3, kind="pair_classification")}
    model = MultitaskModel(tiny_encoders["bert"], heads, padding_free=True)
    rows = [{"input_ids": [[2, 5, 3], [2, 6, 7, 3]], "labels": 1}, {"input_ids": [[2, 3, 4], [2, 8, 3], [2, 9, 9, 3]], "labels": 2}]
    padded, packed = _batches("multiple_choice", rows)
    assert padded["choice_mask"].tolist() == [[True, True, False], [True, True, True]]
    with torch.no_grad():
        reference, result = model("demo:choice", **padded), model("demo:choice", **packed)
        alone = [model("demo:choice", **Collator(0, "multiple_choice")([row])) for row in rows]
    assert torch.allclose(result.logits, reference.logits, atol=1e-5) and torch.allclose(result.loss, reference.loss, atol=1e-5)
    assert result.logits[0, 2].item() == torch.finfo(result.logits.dtype).min
    assert torch.allclose(result.logits[0, :2], alone[0].logits[0], atol=1e-5) and torch.allclose(result.logits[1], alone[1].logits[0], atol=1e-5)
    assert torch.allclose(result.loss, (alone[0].loss + alone[1].loss) / 2, atol=1e-5)
    with pytest.raises(DataError, match="choice_mask belongs to multiple-choice batches"):
        model("demo:pair", input_ids=padded["input_ids"][:, 0], choice_mask=padded["choice_mask"])
