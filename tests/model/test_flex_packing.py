"""FlexAttention over packed tokens: the block mask built from cu_seqlens, and the attention it gives.

Only forward passes run here: torch has no CPU backward for FlexAttention (training with it is
measured on a GPU, docs/benchmarks.md).
"""

from __future__ import annotations

import random

import pytest
import torch
from torch.nn.attention.flex_attention import _ordered_to_dense, create_block_mask

from mtcore.data.collate import Collator
from mtcore.errors import UnknownNameError
from mtcore.model import MultitaskModel
from mtcore.model.flex_packing import document_block_mask, flex_packed_attention
from mtcore.model.heads.base import HeadSpec

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


def _dense(num, indices, tiles):
    return _ordered_to_dense(num, indices, tiles)[0, 0].bool()


@pytest.mark.parametrize("block", [16, 128])
def test_block_mask_has_exactly_the_tiles_of_the_reference_mask(block):
    """Partial and full tiles equal what FlexAttention's own create_block_mask finds on a dense mask."""
    rng = random.Random(block)
    for _ in range(40):
        lengths = [rng.choice([rng.randint(1, 20), rng.randint(1, 300)]) for _ in range(rng.randint(1, 10))]
        cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
        tokens = int(cu_seqlens[-1])
        mask = document_block_mask(cu_seqlens, tokens, block)
        doc = torch.searchsorted(cu_seqlens[1:].long(), torch.arange(tokens), right=True)
        reference = create_block_mask(lambda b, h, q, kv: doc[q] == doc[kv], None, None, tokens, tokens, device="cpu", BLOCK_SIZE=block)
        tiles = -(-tokens // block)
        partial, full = _dense(mask.kv_num_blocks, mask.kv_indices, tiles), _dense(mask.full_kv_num_blocks, mask.full_kv_indices, tiles)
        assert torch.equal(full, _dense(reference.full_kv_num_blocks, reference.full_kv_indices, tiles)), lengths
        assert torch.equal(partial | full, _dense(reference.kv_num_blocks, reference.kv_indices, tiles) | full), lengths
        assert not (partial & full).any()
        assert mask.seq_lengths == (tokens, tokens)


def test_flex_attention_equals_attention_on_each_sequence_alone():
    torch.manual_seed(0)
    lengths, heads, dim = [130, 5, 1, 140, 7], 2, 8  # sequences across tile edges, and tiny ones sharing a tile
    query, key, value = (torch.randn(1, heads, sum(lengths), dim) for _ in range(3))
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    with torch.no_grad():
        out = flex_packed_attention(query, key, value, document_block_mask(cu_seqlens, sum(lengths)), None)
    assert out.shape == (1, sum(lengths), heads, dim)
    start = 0
    for n in lengths:
        alone = torch.nn.functional.scaled_dot_product_attention(*(t[:, :, start:start + n] for t in (query, key, value)))
        assert torch.allclose(out[:, start:start + n], alone.transpose(1, 2), atol=1e-5), n
        start += n


def test_flex_packed_model_gives_the_padded_logits(tiny_encoders):
    heads = {"demo:pair": HeadSpec("classification", 3, kind="pair_classification", options={"pooling": "pooler"}),
             "demo:mean": HeadSpec("mlp", 3, kind="text_classification", options={"pooling": "mean"})}
    model = MultitaskModel(tiny_encoders["bert"], heads, padding_free=True, packed_attention="flex",
                           encoder_kwargs={"attention_probs_dropout_prob": 0.0})
    assert model.packed_attention == "flex"
    rng = random.Random(0)
    rows = [{"input_ids": [2, *(rng.randint(5, 40) for _ in range(n)), 3], "token_type_ids": [0] * (n + 2), "labels": n % 3}
            for n in (150, 3, 40, 1, 200)]
    padded, packed = Collator(0, "pair_classification")(rows), Collator(0, "pair_classification", padding_free=True)(rows)
    with torch.no_grad():
        for task in heads:
            reference, result = model(task, **padded), model(task, **packed)
            assert torch.allclose(result.logits, reference.logits, atol=1e-5), task
            assert torch.allclose(result.loss, reference.loss, atol=1e-5)


def test_unknown_packed_attention_suggests_the_name(tiny_encoders):
    with pytest.raises(UnknownNameError, match=r"unknown packed attention 'flx' \(did you mean 'flex'\?\)"):
        MultitaskModel(tiny_encoders["bert"], {"demo:a": HeadSpec("classification", 2, kind="text_classification")},
                       packed_attention="flx")
