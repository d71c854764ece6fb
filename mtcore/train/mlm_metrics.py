"""The metrics of ``masked_lm`` tasks, scored at the masked tokens.

Evaluation hands them, per row, an ``(n, 2)`` array of each masked token's predicted id and the cross-entropy of its true
id (its negative log-probability), and the ``(n,)`` true ids (:mod:`mtcore.train.evaluation`): so perplexity needs no
``(batch, length, vocabulary)`` scores kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _columns(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in predictions]
    scored = np.concatenate(rows) if rows else np.zeros((0, 2))
    truth = np.concatenate([np.asarray(r, dtype=np.int64).reshape(-1) for r in references]) if rows else np.zeros(0, dtype=np.int64)
    return scored[:, 0].astype(np.int64), scored[:, 1], truth


def mlm_accuracy(predictions: Any, references: Any, task: Any = None) -> float:
    """Share of masked tokens whose most likely token is the true one."""
    predicted, _, truth = _columns(predictions, references)
    return float((predicted == truth).mean()) if truth.size else 0.0


def perplexity(predictions: Any, references: Any, task: Any = None) -> float:
    """``exp`` of the mean cross-entropy over the masked tokens (lower is better)."""
    _, losses, truth = _columns(predictions, references)
    return float(math.exp(min(float(losses.mean()), 700.0))) if truth.size else float("nan")
