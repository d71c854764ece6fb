"""The seed library's Python API (``multitask-transformers``), on mtcore's engine.

The seed README's example ports by changing its import lines (and its data loading)::

    from mtcore.seed.classification import SequenceClassificationTask   # was src.classification
    from mtcore.seed.dataloaders import MultitaskBatchSampler           # was src.dataloaders
    from mtcore.seed.models import MultitaskModel                       # was src.models
    from mtcore.seed.preprocessing import Preprocessor, NLIPreprocess   # was src.preprocessing
    from mtcore.seed.ru import preprocess_danetqa                       # was src.ru (mt_russian_superglue)
    from mtcore.seed.tasks import Tasks                                 # was src.tasks
    from mtcore.seed.tokenizers import TokenizerConfig                  # was src.tokenizers

or ``from mtcore.seed import SequenceClassificationTask, Tasks, ...``. The names are imported
lazily, so ``import mtcore.seed`` is cheap. See ``examples/seed_port.py`` and docs/python-api.md
(which lists what differs from the seed).
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

_LAZY = {
    "SequenceClassificationTask": "mtcore.seed.classification",
    "Tasks": "mtcore.seed.tasks",
    "TaskHeads": "mtcore.seed.tasks",
    "TokenizerConfig": "mtcore.seed.tokenizers",
    "Preprocessor": "mtcore.seed.preprocessing",
    "NLIPreprocess": "mtcore.seed.preprocessing",
    "NLIPreprocessor": "mtcore.seed.preprocessing",
    "MultitaskBatchSampler": "mtcore.seed.dataloaders",
    "MetabatchSampler": "mtcore.seed.dataloaders",
    "MultitaskMetabatchSampler": "mtcore.seed.dataloaders",
    "NLinearsSequenceClassificationTask": "mtcore.seed.classification",
    "NLinearsHead": "mtcore.seed.classification",
    "MultitaskModel": "mtcore.seed.models",
    "preprocess_danetqa": "mtcore.seed.ru",
    "preprocess_parus": "mtcore.seed.ru",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = list(_LAZY)
