"""mtcore: train multitask Transformer encoders — one shared encoder, a small head per task.

Importing ``mtcore`` is cheap: the heavy pieces (torch, transformers, datasets) are reached
lazily through the attributes below, so ``mt --help`` and ``mt list-tasks`` stay fast.
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

__version__ = "0.1.0"

# Public names and where they live; resolved on first access (PEP 562).
_LAZY = {
    "Task": "mtcore.task",
    "TaskKind": "mtcore.task",
    "Source": "mtcore.task",
    "MtError": "mtcore.errors",
    "Preprocessor": "mtcore.data.preprocess",
    "NLIPreprocess": "mtcore.data.preprocess",
    "Sampler": "mtcore.sampling.base",
    "Head": "mtcore.model.heads.base",
    "MultitaskModel": "mtcore.model.multitask_model",
    "MultitaskBatchSampler": "mtcore.sampling.batch_sampler",
    "Trainer": "mtcore.train.trainer",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = ["__version__", *_LAZY]
