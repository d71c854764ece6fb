"""Sentiment tasks for mtcore: ``sentiment:mokoron``, ``sentiment:rusentiment``, ``sentiment:sentiment``.

Importing this package is cheap (no torch, transformers or datasets).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
