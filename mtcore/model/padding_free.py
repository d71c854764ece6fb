"""Padding-free encoding: the encoder computes on real tokens only.

A padding-free batch is an ordinary padded batch plus two index tensors that the collator builds
on the CPU (so nothing on the device waits for the host):

* ``token_index`` — positions of the real tokens in the flattened ``(rows * length)`` layout;
* ``cu_seqlens`` — int32 cumulative sequence lengths, ``rows + 1`` values starting at 0.

:func:`encode_packed` gathers the real tokens into one packed row ``(1, tokens)`` with
per-sequence ``position_ids`` (restarting at every sequence, shifted for RoBERTa-style
embeddings) and ``token_type_ids``, runs the encoder, and scatters the last hidden states back to
``(rows, length)``: every head (``cls``/``mean``/``max``/``pooler`` pooling, token
classification, multiple choice) gets the usual padded layout and works unchanged; the encoder's
pooler is applied to each sequence's own first token.

Attention is the registered implementation ``"mtcore_varlen"`` (:func:`varlen_attention`):

* with ``attention="flex"`` and no attention dropout: FlexAttention over the packed row with a
  block-diagonal mask (:mod:`mtcore.model.flex_packing`; fast inside ``torch.compile`` only);
* on CUDA in fp16/bf16 without attention dropout: ``torch.nn.attention.varlen.varlen_attn``
  (FlashAttention's variable-length kernel: no padding anywhere);
* on CPU (outside ``torch.compile``), when re-padding would be more than a quarter padding
  (random batches): SDPA on each sequence's slice of the packed row, with no padding and no mask;
* otherwise (length-grouped batches on CPU, CUDA with attention dropout or in fp32, compiled
  graphs) the packed queries, keys and values are put back into ``(rows, heads, length, dim)``
  for SDPA with a key-padding mask.

Either way embeddings, projections, feed-forward blocks and norms, most of an encoder's FLOPs,
run on real tokens only.

Batches without ``token_index`` (evaluation with another collator, :meth:`predict`) take SDPA's
ordinary padded path through the same implementation.

:func:`enable` registers the implementation, switches the encoder to it and checks on a probe
batch that the packed forward equals the padded one (hidden states and pooler output).
Architectures where it does not — attention that ignores the packing (DeBERTa-v2's relative
attention), embeddings without ``position_ids`` — give a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from mtcore.errors import ConfigError

#: The attention implementation name registered with transformers.
IMPLEMENTATION = "mtcore_varlen"
#: The batch keys a padding-free collator adds.
BATCH_KEYS = ("token_index", "cu_seqlens")
#: Attention over packed tokens: FlashAttention's variable-length kernel (with SDPA fallbacks), or
#: FlexAttention with a block-diagonal mask (needs ``torch.compile`` to be fast).
ATTENTION_KERNELS = ("varlen", "flex")


def varlen_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     mtcore_packing: tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any] | None = None,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """A transformers attention function: packed sequences when ``mtcore_packing`` is given, SDPA otherwise.

    ``query``/``key``/``value`` arrive as ``(batch, heads, tokens, dim)``; the result is
    ``(batch, tokens, heads, dim)`` like every transformers attention function.
    ``mtcore_packing`` is ``(token_index, cu_seqlens, key_mask, block_mask)`` with ``key_mask`` of
    shape ``(rows, 1, 1, length)`` and ``block_mask`` a FlexAttention BlockMask or None.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if mtcore_packing is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    token_index, cu_seqlens, key_mask, block_mask = mtcore_packing
    if block_mask is not None and not dropout:
        from mtcore.model.flex_packing import flex_packed_attention

        return flex_packed_attention(query, key, value, block_mask, scaling), None
    if _flash_varlen_usable(query, dropout, scaling):
        kernel, takes_scale = _varlen_kernel()
        length = key_mask.shape[-1]
        q, k, v = (t[0].transpose(0, 1).contiguous() for t in (query, key, value))  # (tokens, heads, dim)
        options = {"scale": scaling} if takes_scale and scaling is not None else {}
        return kernel(q, k, v, cu_seqlens, cu_seqlens, length, length, **options)[None], None
    if query.device.type == "cpu" and not torch.compiler.is_compiling() and _mostly_padding(query, key_mask):
        return _per_sequence(query, key, value, cu_seqlens, dropout, scaling), None
    return _repadded(query, key, value, token_index, key_mask, dropout, scaling), None


def _repad(t: torch.Tensor, token_index: torch.Tensor, rows: int, length: int) -> torch.Tensor:
    """``(1, heads, tokens, dim)`` packed -> ``(rows, heads, length, dim)`` with zeros for padding."""
    t = t[0].transpose(0, 1)
    full = t.new_zeros((rows * length, *t.shape[1:])).index_copy(0, token_index, t)
    return full.view(rows, length, *t.shape[1:]).transpose(1, 2)


def _unpad(out: torch.Tensor, token_index: torch.Tensor) -> torch.Tensor:
    """``(rows, heads, length, dim)`` -> the packed ``(1, tokens, heads, dim)`` of the real tokens."""
    rows, heads, length, dim = out.shape
    return out.transpose(1, 2).reshape(rows * length, heads, dim).index_select(0, token_index)[None]


def _repadded(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, token_index: torch.Tensor, key_mask: torch.Tensor,
              dropout: float, scaling: float | None) -> torch.Tensor:
    """SDPA over the packed tokens put back into ``(rows, heads, length, dim)``, with a key-padding mask."""
    rows, length = key_mask.shape[0], key_mask.shape[-1]
    q, k, v = (_repad(t, token_index, rows, length) for t in (query, key, value))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout, scale=scaling)
    return _unpad(out, token_index)


#: Below this share of real tokens in the re-padded layout, CPU attention runs sequence by sequence.
PER_SEQUENCE_BELOW = 0.75


def _mostly_padding(query: torch.Tensor, key_mask: torch.Tensor) -> bool:
    """Whether re-padding would compute mostly padding (shapes only: no device read)."""
    return query.shape[2] < PER_SEQUENCE_BELOW * key_mask.shape[0] * key_mask.shape[-1]


def _per_sequence(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu_seqlens: torch.Tensor, dropout: float,
                  scaling: float | None) -> torch.Tensor:
    """SDPA on each sequence's own slice of the packed row (CPU: no padding, no mask; a few
    microseconds of Python per sequence and layer)."""
    bounds = cu_seqlens.tolist()  # a CPU tensor: no device synchronisation
    outputs = [torch.nn.functional.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b],
                                                                dropout_p=dropout, scale=scaling)
               for a, b in zip(bounds[:-1], bounds[1:])]
    return torch.cat(outputs, dim=2).transpose(1, 2)


def _find_varlen_kernel() -> tuple[Any, bool]:
    """``torch.nn.attention.varlen.varlen_attn`` (torch >= 2.10) and whether it takes ``scale``."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None, False
    try:
        takes_scale = "scale" in inspect.signature(varlen_attn).parameters
    except (TypeError, ValueError):
        takes_scale = False
    return varlen_attn, takes_scale


#: Looked up once at import, so that compiled graphs only read a constant.
_VARLEN_KERNEL = _find_varlen_kernel()


def _varlen_kernel() -> tuple[Any, bool]:
    return _VARLEN_KERNEL


#: False once :func:`note_device` saw a GPU older than Ampere (compute capability 8.0), where torch's
#: FlashAttention refuses to run ("FlashAttention only supports Ampere GPUs or newer"); a module
#: constant, so compiled graphs read no device property.
_FLASH_GPU = True


def note_device(device: Any) -> None:
    """Record whether ``device`` (the training GPU) runs FlashAttention; padded SDPA is used where not."""
    global _FLASH_GPU
    if getattr(device, "type", None) == "cuda" and torch.cuda.is_available():
        _FLASH_GPU = torch.cuda.get_device_capability(device)[0] >= 8


def _flash_varlen_usable(q: torch.Tensor, dropout: float, scaling: float | None = None) -> bool:
    """CUDA on an Ampere or newer GPU, half precision, no attention dropout (the kernel has none), and a
    torch that has the kernel (taking ``scale`` unless the scale is the default ``dim ** -0.5``)."""
    if not q.is_cuda or not _FLASH_GPU or q.dtype not in (torch.float16, torch.bfloat16) or dropout:
        return False
    kernel, takes_scale = _varlen_kernel()
    if kernel is None:
        return False
    return takes_scale or scaling is None or abs(scaling - q.shape[-1] ** -0.5) < 1e-9


def register() -> None:
    """Make ``"mtcore_varlen"`` a transformers attention implementation (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, varlen_attention)
    AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)


def position_offset(encoder: nn.Module) -> int:
    """The first position id of a sequence: ``padding_idx + 1`` for RoBERTa-style embeddings, else 0."""
    embeddings = getattr(encoder, "embeddings", None)
    if callable(getattr(embeddings, "create_position_ids_from_input_ids", None)):
        return int(getattr(embeddings, "padding_idx", 0) or 0) + 1
    return 0


def encode_packed(encoder: nn.Module, inputs: dict[str, Any], token_index: torch.Tensor, cu_seqlens: torch.Tensor,
                  *, offset: int, pooler: bool, attention: str = "varlen") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``encoder`` on the real tokens of padded ``inputs``; returns padded hidden states and the pooler output.

    ``inputs`` holds ``input_ids`` and ``attention_mask`` of shape ``(rows, length)`` and other
    per-token encoder inputs (``token_type_ids``) of the same shape; other entries pass through.
    ``attention``: ``"varlen"`` or ``"flex"`` (see :data:`ATTENTION_KERNELS`).
    """
    input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
    rows, length = input_ids.shape
    packed: dict[str, Any] = {}
    for name, value in inputs.items():
        if name == "attention_mask":
            continue
        per_token = isinstance(value, torch.Tensor) and tuple(value.shape) == (rows, length)
        packed[name] = value.reshape(-1).index_select(0, token_index)[None] if per_token else value
    packed["position_ids"] = (token_index % length + offset)[None]
    key_mask = attention_mask.bool()[:, None, None, :]
    cu_seqlens = cu_seqlens.to(torch.int32)
    block_mask = None
    if attention == "flex":
        from mtcore.model.flex_packing import document_block_mask

        block_mask = document_block_mask(cu_seqlens, int(token_index.shape[0]))
    outputs = encoder(**packed, mtcore_packing=(token_index, cu_seqlens, key_mask, block_mask))
    hidden = outputs[0][0] if not hasattr(outputs, "last_hidden_state") else outputs.last_hidden_state[0]
    hidden_states = hidden.new_zeros((rows * length, hidden.shape[-1])).index_copy(0, token_index, hidden).view(rows, length, -1)
    pooler_output = encoder.pooler(hidden_states) if pooler else None
    return hidden_states, pooler_output


def pack_indices(attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``token_index`` and ``cu_seqlens`` of a ``(rows, length)`` mask (used by collators, on the CPU)."""
    mask = attention_mask.reshape(-1, attention_mask.shape[-1]).bool()
    token_index = mask.reshape(-1).nonzero().squeeze(1)
    cu_seqlens = torch.zeros(mask.shape[0] + 1, dtype=torch.int32)
    cu_seqlens[1:] = mask.sum(dim=1).cumsum(0)
    return token_index, cu_seqlens


def enable(encoder: nn.Module, *, uses_token_type_ids: bool, pooler: bool, attention: str = "varlen") -> int:
    """Switch ``encoder`` to ``"mtcore_varlen"`` attention and check it on a probe; returns the position offset."""
    name = type(encoder).__name__
    config = getattr(encoder, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    if not getattr(encoder, "_supports_attention_backend", False):
        raise ConfigError(f"encoder {name} does not support padding-free batches (its attention is not pluggable through "
                          "transformers' AttentionInterface); set batching.padding_free: false")
    register()
    try:
        encoder.set_attn_implementation(IMPLEMENTATION)
    except (AttributeError, ValueError, ImportError, TypeError) as exc:
        raise ConfigError(f"encoder {name} cannot take padding-free batches (no pluggable attention: {exc}); "
                          "set batching.padding_free: false") from None
    offset = position_offset(encoder)
    try:
        difference = _probe(encoder, offset, uses_token_type_ids, pooler, attention)
    except Exception as exc:  # noqa: BLE001 - any failure means: not supported
        difference = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if difference is not None:
        if previous is not None:
            encoder.set_attn_implementation(previous)
        raise ConfigError(f"encoder {name} does not support padding-free batches (packed and padded outputs differ: "
                          f"{difference}); set batching.padding_free: false")
    return offset


def _tf32(device: torch.device) -> bool:
    """Whether float32 matmuls on ``device`` may round to TF32: the packed and the padded forward then
    multiply matrices of different shapes, which cuBLAS may round differently (gaps of ~1e-3)."""
    return device.type == "cuda" and (torch.backends.cuda.matmul.allow_tf32 or torch.get_float32_matmul_precision() != "highest")


@torch.no_grad()
def _probe(encoder: nn.Module, offset: int, uses_token_type_ids: bool, pooler: bool, attention: str = "varlen") -> str | None:
    """None when packed and padded forwards agree on three sequences of different lengths, else what differs."""
    parameter = next(encoder.parameters())
    device, dtype = parameter.device, parameter.dtype
    config = encoder.config
    vocab = int(getattr(config, "vocab_size", 100) or 100)
    pad = int(getattr(config, "pad_token_id", 0) or 0)
    lengths = torch.tensor([3, 7, 5])
    length = int(lengths.max())
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, max(2, min(vocab, 200)), (3, length), generator=generator)
    ids = torch.where(ids == pad, (ids + 1) % vocab, ids).masked_fill(mask == 0, pad)
    inputs: dict[str, Any] = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    if uses_token_type_ids:
        inputs["token_type_ids"] = ((torch.arange(length)[None, :] >= 2).long() * mask).to(device)
    was_training = encoder.training
    encoder.eval()
    try:
        reference = encoder(**inputs)
        token_index, cu_seqlens = pack_indices(mask)
        hidden, pooled = encode_packed(encoder, dict(inputs), token_index.to(device), cu_seqlens.to(device), offset=offset, pooler=pooler,
                                       attention=attention)
    finally:
        encoder.train(was_training)
    tolerance = 1e-4 if dtype == torch.float32 and not _tf32(device) else 1e-2 if dtype == torch.float32 else 5e-2
    expected = reference[0] if not hasattr(reference, "last_hidden_state") else reference.last_hidden_state
    real = mask.bool().to(device)
    gap = (expected[real].float() - hidden[real].float()).abs().max().item()
    if gap > tolerance:
        return f"hidden states by up to {gap:.3g}"
    if pooler:
        pooled_gap = (reference.pooler_output.float() - pooled.float()).abs().max().item()
        if pooled_gap > tolerance:
            return f"pooler output by up to {pooled_gap:.3g}"
    return None
