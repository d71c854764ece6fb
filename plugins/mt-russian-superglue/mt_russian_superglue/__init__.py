"""Russian SuperGLUE tasks for mtcore: ``rsg:danetqa``, ``rsg:terra``, ``rsg:parus``, ``rsg:rcb``, ``rsg:lidirus``.

Importing this package is cheap (no torch, transformers or datasets). ``preprocess_danetqa`` keeps
the seed library's name for porting notebooks: ``Preprocessor([preprocess_danetqa])``.
"""

from __future__ import annotations

from mt_russian_superglue.preprocess import PARUS_CONNECTIVES, preprocess_danetqa, preprocess_parus

__version__ = "0.1.0"

__all__ = ["PARUS_CONNECTIVES", "__version__", "preprocess_danetqa", "preprocess_parus"]
