"""``mt check``'s call of every task's metrics: once, through the run's own evaluation code, on the evaluation rows
predicted right (a stand-in model), so that a metric that raises or returns no number is found before training."""

from __future__ import annotations

import warnings
from typing import Any

from mtcore.cli.check import _OneProcess


#: The most evaluation rows of a task :func:`check_metrics` scores (spread evenly over a larger split).
PROBE_ROWS = 2048


def check_metrics(plan: Any, evaluation: dict[str, Any], default_split: str, splits: dict[str, str]) -> None:
    """Call every task's metrics once, through the run's own evaluation code, on (up to :data:`PROBE_ROWS`
    of) the evaluation split's rows predicted right: a stand-in model's logits pick each row's label, so
    each metric gets what the run will give it (shapes, ids, extractive QA's answer texts). A metric that
    raises or returns no number is found here, not after the training."""
    from mtcore.plugins import get_component
    from mtcore.train.evaluation import evaluate
    from mtcore.train.metrics import MetricError

    for p in [*plan.tasks, *plan.evaluated]:
        split = splits.get(p.id, default_split)
        if p.id not in evaluation or split not in evaluation[p.id].splits:
            continue
        sample = _Sample(evaluation[p.id], split, PROBE_ROWS)
        try:
            with warnings.catch_warnings():  # perfect predictions of a sample: sklearn's notes on them say nothing of the run
                warnings.simplefilter("ignore")
                evaluate(_RightModel(p.task), {p.id: sample}, {p.id: p.task}, _OneProcess(), split=split, batch_size=64,
                         metric_fn=lambda name: get_component("metric", name))
        except MetricError as exc:
            raise MetricError(f"mt check, scoring the {split} split's labels as predictions: {exc}") from exc.__cause__


class _Sample:
    """A task's evaluation data with at most ``limit`` rows of ``split``, evenly spread (what :func:`evaluate` reads)."""

    def __init__(self, data: Any, split: str, limit: int) -> None:
        import numpy as np

        rows, lengths = data.splits[split], list(data.lengths(split))
        if len(lengths) > limit:
            picked = sorted(set(np.linspace(0, len(lengths) - 1, limit).round().astype(int).tolist()))
            rows, lengths = rows.select(picked), [lengths[i] for i in picked]
        self.task, self.collator, self.splits, self._lengths = data.task, data.collator, {split: rows}, lengths

    def lengths(self, split: str) -> list[int]:
        return self._lengths


class _RightModel:
    """Stands in for the model in :func:`check_metrics`: logits whose prediction is each row's label."""

    training = False

    def __init__(self, task: Any) -> None:
        self.kind, self.width = task.kind.value, len(getattr(task, "labels", ()) or ())

    def eval(self) -> None:
        pass

    def train(self, mode: bool = True) -> None:
        pass

    def __call__(self, task_id: str, **batch: Any) -> Any:
        from types import SimpleNamespace

        import torch

        ids, labels = batch["input_ids"], batch.get("labels")
        rows = ids.shape[0]
        if self.kind == "regression":
            values = torch.zeros(rows) if labels is None else torch.nan_to_num(labels.float().reshape(rows, -1)[:, 0])
            return SimpleNamespace(loss=None, logits=values.reshape(rows, 1))
        if self.kind == "multi_label":
            logits = -torch.ones(rows, self.width) if labels is None else torch.where(labels.float() > 0.5, 1.0, -1.0)
            return SimpleNamespace(loss=None, logits=logits)
        if self.kind == "extractive_qa":  # labels: the answer's [first, last] token of each window
            logits = torch.zeros(rows, ids.shape[-1], 2)
            for row, (first, last) in enumerate(labels.tolist() if labels is not None else []):
                if 0 <= first <= last < ids.shape[-1]:
                    logits[row, first, 0] = logits[row, last, 1] = 10.0
            return SimpleNamespace(loss=None, logits=logits)
        if self.kind == "masked_lm":  # the masked tokens' scores only, each right
            right = labels[labels >= 0].long() if labels is not None else torch.zeros(0, dtype=torch.long)
            logits = torch.zeros(right.shape[0], int(right.max()) + 1 if right.numel() else 1)
            logits[torch.arange(right.shape[0]), right] = 10.0
            return SimpleNamespace(loss=None, logits=logits)
        classes = ids.shape[1] if self.kind == "multiple_choice" else max(self.width, 1)
        shape = (rows, ids.shape[-1], classes) if self.kind == "token_classification" else (rows, classes)
        logits = torch.zeros(shape)
        if labels is not None:
            right = labels.long().clamp(min=0, max=classes - 1)
            logits.scatter_(-1, right.unsqueeze(-1), 1.0)
        return SimpleNamespace(loss=None, logits=logits)
