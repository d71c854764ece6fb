"""Process-wide CUDA kernel choices for training (applied by the engine when it runs on a GPU)."""

from __future__ import annotations


def configure_cuda_kernels() -> None:
    """Leave cuDNN out of ``scaled_dot_product_attention``.

    cuDNN's attention builds an execution plan for every new batch shape. Training batches
    change shape at every step (dynamic padding, token budgets, packed sequences), and on an H100
    with torch 2.11 that cost about 6 ms of host time per layer call: BERT-base steps ran about
    3x slower than with the FlashAttention / memory-efficient kernels, which take any shape
    (``benchmarks/gpu_bench.py --profile``; docs/benchmarks.md). Does nothing without CUDA.
    """
    import torch

    if torch.cuda.is_available() and hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
        torch.backends.cuda.enable_cudnn_sdp(False)
