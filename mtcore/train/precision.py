"""Training precision on this machine: ``precision`` (auto, fp32, bf16, fp16) as Accelerate's
``mixed_precision``, checked against the GPU (bf16 where it computes natively: Ampere and newer)."""

from __future__ import annotations

from typing import Any

from mtcore.errors import ConfigError


def native_bf16(device: Any = None) -> bool:
    """Whether the GPU computes in bf16 (Ampere or newer). torch's ``is_bf16_supported()`` also says yes
    where bf16 is only emulated (T4, V100: no bf16 tensor cores, slow), which is where fp16 belongs.
    ``device`` (``cuda:1``): that GPU, not the current one (a machine may mix cards)."""
    import torch

    index = getattr(device, "index", None)
    if index is not None and torch.version.hip is None:
        return torch.cuda.get_device_capability(index)[0] >= 8
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # a torch without the argument (< 2.3): its answer was the native one
        return bool(torch.cuda.is_bf16_supported())


def check_weights_dtype(precision: str, options: Any) -> None:
    """fp16's grad scaler unscales into float32 weights: float16 ones (``encoder.options.dtype``) fail at step 1."""
    dtype = str(dict(options or {}).get("dtype", "")).removeprefix("torch.")
    if precision == "fp16" and dtype in ("float16", "half"):
        raise ConfigError("config key 'encoder.options.dtype': float16 weights cannot train in precision fp16 (its grad scaler "
                          "needs float32 weights to unscale into); leave encoder.options.dtype out")


def resolve_precision(requested: str, cuda: bool, device: Any = None) -> str:
    """Accelerate's ``mixed_precision`` for the config's ``precision`` on this machine (on ``device``, a
    ``torch.device``, when given: ``mt evaluate --device cuda:1``)."""
    bf16_ok = cuda and native_bf16(device)
    if requested == "auto":
        return ("bf16" if bf16_ok else "fp16") if cuda else "no"
    if requested == "fp32":
        return "no"
    if requested == "fp16" and not cuda:
        raise ConfigError("config key 'precision': 'fp16' needs a CUDA GPU (it uses a grad scaler); use 'fp32' or 'bf16' on CPU")
    if requested == "bf16" and cuda and not bf16_ok:
        gpu = f"GPU {device}" if getattr(device, "index", None) is not None else "this GPU"
        raise ConfigError(f"config key 'precision': {gpu} has no bf16 support; use 'fp16' or 'auto'")
    return requested
