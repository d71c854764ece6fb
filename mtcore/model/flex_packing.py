"""FlexAttention over a packed row: a block-diagonal ("document") mask built from ``cu_seqlens``.

FlashAttention's variable-length kernel (``varlen_attn``) gives every sequence its own tiles:
a batch of hundreds of short sequences launches tens of thousands of mostly empty thread
blocks. On an H100 that made attention a quarter of a 64k-token BERT-base step while it is a
few percent of the FLOPs (docs/benchmarks.md). FlexAttention instead walks the packed row in
128-token tiles and skips the tiles where no query attends to a key: short sequences share
tiles, long ones get the tiles on their diagonal block.

:func:`document_block_mask` builds the :class:`~torch.nn.attention.flex_attention.BlockMask`
directly from the cumulative sequence lengths with a few tensor operations on the device (no
host synchronisation, nothing of size ``tokens x tokens``): for each 128-token query tile the
key tiles it needs form one contiguous range (sequences are contiguous), of which the tiles
lying wholly inside the query tile's own sequence are "full" (no mask evaluated) and the others
"partial" (``mask_mod``: same sequence).

FlexAttention is fast only inside ``torch.compile`` (Inductor generates its kernels); run
eagerly it computes every score of the row, which is fine for tests and tiny batches only. The
engine therefore asks for ``compile`` with ``batching.packed_attention: flex``.
"""

from __future__ import annotations

from typing import Any

import torch

#: Query and key tile size of the block mask (FlexAttention's default sparse block size).
BLOCK = 128


def document_block_mask(cu_seqlens: torch.Tensor, tokens: int, block: int = BLOCK) -> Any:
    """The block-diagonal BlockMask of ``tokens`` packed tokens whose sequences end at ``cu_seqlens[1:]``.

    ``cu_seqlens`` holds ``rows + 1`` cumulative lengths starting at 0 and ending at ``tokens``;
    it may live on the device (only device operations are used).
    """
    from torch.nn.attention.flex_attention import BlockMask

    device = cu_seqlens.device
    tiles = -(-tokens // block)
    cu = cu_seqlens.to(torch.long)
    # every position of the padded row gets its sequence; positions past the last token form one more
    doc = torch.searchsorted(cu[1:], torch.arange(tiles * block, device=device), right=True)
    starts = torch.cat([cu[:-1], cu.new_full((1,), tokens)])
    ends = torch.cat([cu[1:], cu.new_full((1,), tiles * block)])  # exclusive
    first, last = doc[::block], doc[block - 1::block]
    lo, hi = starts[first] // block, (ends[last] - 1) // block  # the key tiles a query tile needs: lo..hi
    single = first == last  # the query tile lies inside one sequence
    full_lo, full_hi = -(-starts[first] // block), ends[first] // block - 1  # tiles wholly inside that sequence
    full_count = torch.where(single, (full_hi - full_lo + 1).clamp(min=0), 0)
    columns = torch.arange(tiles, device=device)
    # partial tiles: all of lo..hi for a query tile spanning sequences; else the edge tiles its sequence shares
    lo_partial, hi_partial = lo < full_lo, hi > full_hi
    single_rows = torch.stack([torch.where(lo_partial, lo, hi), hi], dim=1)
    single_rows = torch.cat([single_rows, single_rows.new_zeros((tiles, max(tiles - 2, 0)))], dim=1)[:, :tiles]
    partial_rows = torch.where(single[:, None], single_rows, lo[:, None] + columns[None, :])
    partial_count = torch.where(single, lo_partial.long() + (hi_partial & (hi != lo)).long(), hi - lo + 1)
    full_rows = full_lo[:, None] + columns[None, :]

    def as_mask(count: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return count.to(torch.int32)[None, None], rows.clamp(0, tiles - 1).to(torch.int32)[None, None]

    def same_sequence(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return doc[q_idx] == doc[kv_idx]

    kv_num, kv_indices = as_mask(partial_count, partial_rows)
    full_num, full_indices = as_mask(full_count, full_rows)
    return BlockMask.from_kv_blocks(kv_num, kv_indices, full_num, full_indices, BLOCK_SIZE=block, mask_mod=same_sequence,
                                    seq_lengths=(tokens, tokens))


def flex_packed_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, block_mask: Any,
                          scaling: float | None) -> torch.Tensor:
    """FlexAttention on ``(1, heads, tokens, dim)`` packed tensors; returns ``(1, tokens, heads, dim)``."""
    from torch.nn.attention.flex_attention import flex_attention

    return flex_attention(query, key, value, block_mask=block_mask, scale=scaling).transpose(1, 2)
