"""The data pipeline: sources -> raw rows -> prepared, validated rows -> token ids -> padded batches.

Importing ``mtcore.data`` is cheap; the names below are imported on first use (PEP 562).
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

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
    "CutWordsWarning": "mtcore.data.tokenize",
    "CutAnswersWarning": "mtcore.data.cut_answers",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = list(_LAZY)
