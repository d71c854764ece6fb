"""Checking a ``--device`` / ``device=`` value before any work: one line for a typo or a missing GPU.

>>> check_device("cpu")                    # torch.device('cpu')
>>> check_device("gpu", "--device")        # UsageError: --device 'gpu' is not a device (did you mean 'cuda'?); ...
>>> check_device("cuda", "--device")       # on a machine without CUDA: UsageError: --device cuda: no CUDA GPU ...
"""

from __future__ import annotations

from typing import Any

from mtcore.errors import UsageError, did_you_mean

#: The device types mtcore runs on (other torch types are accepted only when their backend is available).
DEVICE_TYPES = ("cpu", "cuda", "mps")
#: Common names for a device type that torch spells differently.
ALIASES = {"gpu": "cuda", "nvidia": "cuda", "cuda0": "cuda:0", "cuda1": "cuda:1", "apple": "mps", "metal": "mps"}
USAGE = "use cpu, cuda, cuda:N or mps"


def _names(flag: str, text: str) -> tuple[str, str]:
    """How to name the given value and the cpu fallback: ``--device cuda`` / ``device='cuda'``."""
    if flag.startswith("-"):
        return f"{flag} {text}", f"{flag} cpu"
    return f"{flag}={text!r}", f"{flag}='cpu'"


def _suggestion(text: str) -> str:
    kind, _, index = text.strip().lower().partition(":")
    if kind in ALIASES:
        alias = ALIASES[kind]
        if index and ":" not in alias:
            alias = f"{alias}:{index}"
        return f" (did you mean {alias!r}?)"
    return did_you_mean(kind, DEVICE_TYPES)


def check_device(device: Any, flag: str = "device") -> Any:
    """``device`` as a ``torch.device``, or a one-line :class:`UsageError` naming ``flag`` and the fix.

    Refuses a string torch cannot parse, CUDA without a CUDA GPU (or ``cuda:N`` past the last
    GPU), MPS without Apple's GPU, and other device types whose backend is not available.
    """
    import torch

    if isinstance(device, torch.device):
        parsed, text = device, str(device)
    else:
        text = str(device)
        try:
            parsed = torch.device(text)
        except (RuntimeError, ValueError, TypeError):
            shown = f"{flag} {text!r}" if flag.startswith("-") else f"{flag}={text!r}"
            raise UsageError(f"{shown} is not a device{_suggestion(text)}; {USAGE}") from None
    named, fallback = _names(flag, text)
    if parsed.type == "cpu":
        return parsed
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{named}: no CUDA GPU is available here; use {fallback}")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            gpus = f"{count} CUDA GPU" + ("s" if count != 1 else "")
            raise UsageError(f"{named}: this machine has {gpus} (cuda:0 to cuda:{count - 1}); choose one of them, or use {fallback}")
        return parsed
    if parsed.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise UsageError(f"{named}: no Apple GPU (MPS) is available here; use {fallback}")
        return parsed
    module = getattr(torch, parsed.type, None)
    available = getattr(module, "is_available", None)
    if callable(available) and available():
        return parsed
    raise UsageError(f"{named}: mtcore cannot run on {parsed.type!r} here; {USAGE}")
