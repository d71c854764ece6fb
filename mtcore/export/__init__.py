"""Exporting tasks of a multitask model as plain Hugging Face models (``mt export``).

Names are resolved lazily (PEP 562): importing ``mtcore.export`` imports nothing heavy.
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

_LAZY = {
    "export_task": "mtcore.export.hf",
    "export_encoder": "mtcore.export.hf",
    "export_all": "mtcore.export.hf",
    "ExportResult": "mtcore.export.hf",
    "ExportError": "mtcore.export.mapping",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = list(_LAZY)
