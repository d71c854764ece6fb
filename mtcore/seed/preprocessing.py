"""``Preprocessor`` and ``NLIPreprocess`` (was ``src.preprocessing``): mtcore's own, unchanged.

``Preprocessor([f, g])`` runs row functions in order; ``NLIPreprocess(premise=..., hypothesis=...,
label=...)`` maps NLI fields to ``text`` / ``text_pair`` / ``label``. See :mod:`mtcore.data.preprocess`.
"""

from __future__ import annotations

from mtcore.data.preprocess import NLIPreprocess, Preprocessor

__all__ = ["NLIPreprocess", "Preprocessor"]
