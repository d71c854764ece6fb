"""Newer FlashAttention kernels for torch's flash attention (``encoder.options.flash_attention``).

torch (2.11 and later) can replace the FlashAttention-2 kernels it ships — what padding-free
batches run through ``varlen_attn`` and what SDPA's flash backend runs — with kernels from
another package, registered under a name (:func:`torch.nn.attention.list_flash_attention_impls`):

* ``"FA4"``: FlashAttention-4 (Hopper and Blackwell GPUs; ``pip install flash-attn-4``; CuTe-DSL
  kernels compiled on their first call);
* ``"FA3"``: FlashAttention-3 (Hopper; the ``flash_attn_interface`` module of FlashAttention's
  ``hopper/`` build).

The switch is process-wide (torch's dispatcher has one flash kernel) and stays on until the
process ends. These kernels have no attention dropout, so an encoder with attention dropout is
refused instead of failing at its first training step; they run in fp16/bf16 on CUDA only (in
fp32 and on CPU nothing changes). Numerics differ from FlashAttention-2 by rounding only.
"""

from __future__ import annotations

from typing import Any

from mtcore.errors import ConfigError, did_you_mean

#: Where each implementation's kernels come from (what the ConfigError tells the user to install).
INSTALL = {"FA4": "pip install flash-attn-4 (Hopper or Blackwell GPU)",
           "FA3": "build FlashAttention's hopper/ package (flash_attn_interface; Hopper GPU)"}


def implementations() -> list[str]:
    """The names torch knows (empty on a torch without the registry)."""
    try:
        from torch.nn.attention import list_flash_attention_impls
    except ImportError:
        return []
    return list(list_flash_attention_impls())


def resolve(name: Any, where: str = "flash_attention", padding_free: bool = False) -> str:
    """The registered name for ``name`` (case-insensitive); ConfigError naming ``where`` and the choices, or
    (``padding_free``) when this torch cannot train padding-free batches with it (:func:`check_padding_free`)."""
    import torch

    names = implementations()
    if not names:
        raise ConfigError(f"{where}: {name!r} needs torch 2.11 or later (this is torch {torch.__version__}); "
                          "upgrade torch or leave flash_attention out")
    if isinstance(name, str):
        by_lower = {n.lower(): n for n in names}
        if name.lower() in by_lower:
            if padding_free:
                check_padding_free(by_lower[name.lower()])
            return by_lower[name.lower()]
    raise ConfigError(f"{where}: unknown implementation {name!r}{did_you_mean(str(name), names, n=1)}; "
                      f"choose one of {', '.join(names)}")


def check_padding_free(impl: str) -> None:
    """ConfigError when this torch's FA4 glue refuses the backward of padding-free attention (``varlen_attn``).

    torch 2.11's ``torch.nn.attention._fa4`` refuses every backward given window sizes, and ``varlen_attn`` always
    gives them (-1, -1: no window): "windowed attention not supported" at the first training step (seen on an H100,
    2026-11-27). torch 2.13's glue takes them. Told apart by the check's own parameters, not by version.
    """
    if impl != "FA4":
        return
    import inspect

    import torch

    try:
        from torch.nn.attention._fa4 import _fa4_backward_support_error as check
    except ImportError:
        return
    if "window_size_left" in inspect.signature(check).parameters:
        raise ConfigError(f"flash_attention FA4 cannot train padding-free batches on torch {torch.__version__} (its FA4 glue "
                          "refuses varlen_attn's backward); set batching.padding_free: false (SDPA then runs FA4 on padded "
                          "batches), upgrade torch (2.13 takes it), or leave flash_attention out")


def attention_dropout(encoder: Any) -> float:
    """The encoder config's attention dropout (BERT's ``attention_probs_dropout_prob`` and the others' names)."""
    config = getattr(encoder, "config", None)
    for key in ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop"):
        value = getattr(config, key, None)
        if isinstance(value, (int, float)):
            return float(value)
    return 0.0


def check_no_dropout(impl: str, encoder: Any) -> None:
    """A ConfigError when ``encoder`` (anything with a ``.config``) has attention dropout, which ``impl``'s kernels lack."""
    dropout = attention_dropout(encoder)
    if dropout:
        raise ConfigError(f"flash_attention {impl} has no attention dropout, and this encoder's is {dropout:g}; set "
                          "encoder.options.encoder_kwargs.attention_probs_dropout_prob: 0 (or its attention_dropout) "
                          "or leave flash_attention out")


def activate(name: Any, encoder: Any, padding_free: bool = False) -> str:
    """Make ``name``'s kernels torch's flash attention for this process; returns the registered name.

    ConfigError when torch has no such implementation, the encoder has attention dropout, the
    kernels' package does not import (naming what to install), or (``padding_free``) torch cannot
    train padding-free batches with them.
    """
    impl = resolve(name, padding_free=padding_free)
    check_no_dropout(impl, encoder)
    from torch.nn.attention import activate_flash_attention_impl, current_flash_attention_impl

    if current_flash_attention_impl() == impl:
        return impl
    try:
        if impl == "FA4":
            _register_fa4_through_adapter()
        activate_flash_attention_impl(impl)
    except Exception as error:  # an ImportError, or the package's own check (missing kernels, wrong GPU)
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ConfigError(f"flash_attention {impl}: its kernels did not load ({type(error).__name__}: {first_line}); "
                          f"{INSTALL.get(impl, 'install the package that provides them')}, or leave flash_attention out") from error
    return impl


def _register_fa4_through_adapter() -> None:
    """Point torch's FA4 registration at :mod:`mtcore.model.fa4_interface` (flash-attn-4 4.0.0b36 returns more values
    than torch's glue unpacks). Left as torch has it where torch's private FA4 module is not there or differs."""
    from functools import partial

    from torch.nn.attention import register_flash_attention_impl

    try:
        from torch.nn.attention._fa4 import register_flash_attention_fa4
    except ImportError:
        return
    register_flash_attention_impl("FA4", register_fn=partial(register_flash_attention_fa4, module_path="mtcore.model.fa4_interface"))
