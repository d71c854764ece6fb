"""Layer norms that keep mixed-precision activations in the compute dtype (``fp32_residual=False``).

Under autocast, PyTorch runs ``layer_norm`` in float32 and returns float32: in a post-norm
encoder (BERT, RoBERTa, ELECTRA) every layer's output, and so the whole residual stream and its
gradients, is then float32, twice the bytes of the bf16 matmul outputs around it. In a step
whose matmuls run near the GPU's peak, those element-wise kernels are a third of the time
(docs/benchmarks.md).

:class:`ComputeDtypeLayerNorm` is an ``nn.LayerNorm`` (same parameters, same state-dict keys)
whose forward, under autocast, normalises the input in the autocast dtype: the statistics are
still accumulated in float32 inside the kernel, the weights stay float32 parameters (cast per
call, like a linear layer's under autocast), and the output is bf16/fp16 — what Megatron-LM
does unless ``fp32_residual_connection`` is set. Outside autocast it is ``nn.LayerNorm``.

:func:`keep_norms_in_compute_dtype` switches every ``nn.LayerNorm`` of a module in place.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ComputeDtypeLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` whose output stays in the autocast dtype (statistics in float32)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - nn.LayerNorm's name
        device = input.device.type
        if not torch.is_autocast_enabled(device):
            return super().forward(input)
        dtype = torch.get_autocast_dtype(device)
        if dtype == torch.float32:
            return super().forward(input)
        weight = None if self.weight is None else self.weight.to(dtype)
        bias = None if self.bias is None else self.bias.to(dtype)
        with torch.autocast(device, enabled=False):
            return F.layer_norm(input.to(dtype), self.normalized_shape, weight, bias, self.eps)


def keep_norms_in_compute_dtype(module: nn.Module) -> int:
    """Make every ``nn.LayerNorm`` inside ``module`` a :class:`ComputeDtypeLayerNorm`; returns how many."""
    count = 0
    for child in module.modules():
        if type(child) is nn.LayerNorm:
            child.__class__ = ComputeDtypeLayerNorm
            count += 1
        elif isinstance(child, ComputeDtypeLayerNorm):
            count += 1
    return count
