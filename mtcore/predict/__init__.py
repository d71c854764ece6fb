"""Using a trained model: predictions, evaluation and prediction files (``mt predict``, ``mt evaluate``).

* :func:`predict` — labels (in the dataset's own form) and class probabilities for raw rows;
* :func:`evaluate_path` — a run's or a model's metrics on a split, scored by the engine's code;
* :func:`evaluate_model` — the same for a model in memory (your own training loop);
* :mod:`mtcore.predict.writers` — the ``jsonl`` / ``csv`` prediction writers.

Names are resolved lazily (PEP 562): importing this package imports nothing heavy.
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

_LAZY = {
    "predict": "mtcore.predict.predictor",
    "Predictions": "mtcore.predict.predictor",
    "evaluate_path": "mtcore.predict.evaluate",
    "evaluate_model": "mtcore.predict.evaluate",
    "EvaluationReport": "mtcore.predict.evaluate",
    "prediction_task": "mtcore.predict.tasks",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = list(_LAZY)
