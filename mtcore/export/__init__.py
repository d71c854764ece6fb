"""Exporting tasks of a multitask model as plain Hugging Face models (``mt export``).

Names are resolved lazily (PEP 562): importing ``mtcore.export`` imports nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export_task": "mtcore.export.hf",
    "export_encoder": "mtcore.export.hf",
    "ExportResult": "mtcore.export.hf",
    "ExportError": "mtcore.export.mapping",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mtcore.export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = list(_LAZY)
