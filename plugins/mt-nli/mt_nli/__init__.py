"""NLI tasks for mtcore: ``nli:xnli-ru``, ``nli:headline-cause-simple``, ``nli:headline-cause-full``, ``nli:nli``.

Importing this package is cheap (no torch, transformers or datasets).
"""

from __future__ import annotations

from mt_nli.augment import swap_headlines, swap_label
from mt_nli.tasks import with_swap_augment

__version__ = "0.1.0"

__all__ = ["__version__", "swap_headlines", "swap_label", "with_swap_augment"]
