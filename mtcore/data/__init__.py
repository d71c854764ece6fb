"""The data pipeline: sources -> raw rows -> prepared, validated rows -> token ids -> padded batches.

Importing ``mtcore.data`` is cheap; the names below are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load_task_data": "mtcore.data.task_data",
    "load_raw": "mtcore.data.task_data",
    "TaskData": "mtcore.data.task_data",
    "Collator": "mtcore.data.collate",
    "Batch": "mtcore.data.batch",
    "BatchData": "mtcore.data.batch",
    "Preprocessor": "mtcore.data.preprocess",
    "NLIPreprocess": "mtcore.data.preprocess",
    "iter_rows": "mtcore.data.readers",
    "dataset_from_rows": "mtcore.data.sources",
    "rows_from_files": "mtcore.data.sources",
    "prepare_split": "mtcore.data.prepare",
    "tokenize_split": "mtcore.data.tokenize",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mtcore.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = list(_LAZY)
