"""Masked task losses shared by the built-in heads (and usable by plugin heads).

Every loss is a mean over labelled items only, computed in float32, with no host
synchronisation: unlabelled items are masked arithmetically, so a training batch without labels
gives a zero loss with zero gradients instead of NaN. In evaluation mode (``training=False``) a
batch with no labelled item gives ``None`` (this check reads one flag from the device, which is
harmless when predictions are being collected anyway).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor, *, training: bool, item_weights: torch.Tensor | None = None
                ) -> torch.Tensor | None:
    """Mean of ``values`` where ``mask`` is true (over the sum of ``item_weights`` there, when given: the weighted
    mean of values already multiplied by them); ``None`` in eval mode when nothing is labelled."""
    if not training and not bool(mask.any()):
        return None
    weights = mask.to(values.dtype)
    total = weights.sum() if item_weights is None else (weights * item_weights.to(values.dtype)).sum()
    return (values * weights).sum() / (total.clamp(min=1.0) if item_weights is None else total.clamp(min=1e-12))


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, training: bool, label_smoothing: float = 0.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """Cross-entropy over the last dimension; labels < 0 (``-1``, ``-100``) are "no label". With ``class_weights``
    (one per class) each item counts its class's weight, as in ``F.cross_entropy(weight=...)``'s mean."""
    logits = logits.reshape(-1, logits.shape[-1]).float()
    labels = labels.reshape(-1).long()
    mask = labels >= 0
    weight = None if class_weights is None else class_weights.to(device=logits.device, dtype=logits.dtype)
    per_item = F.cross_entropy(logits, labels.clamp(min=0), weight=weight, reduction="none", label_smoothing=label_smoothing)
    return masked_mean(per_item, mask, training=training, item_weights=None if weight is None else weight[labels.clamp(min=0)])


def span_loss(logits: torch.Tensor, labels: torch.Tensor, *, training: bool) -> torch.Tensor | None:
    """Extractive QA: the mean of the start and end token cross-entropies; ``logits`` ``(batch, length, 2)``,
    ``labels`` ``(batch, 2)`` with ``-100`` (or any negative) for rows without an answer."""
    labels = labels.reshape(-1, 2).long()
    mask = labels[:, 0] >= 0
    logits = logits.float()
    start = F.cross_entropy(logits[..., 0], labels[:, 0].clamp(min=0), reduction="none")
    end = F.cross_entropy(logits[..., 1], labels[:, 1].clamp(min=0), reduction="none")
    return masked_mean((start + end) / 2, mask, training=training)


def regression_loss(predictions: torch.Tensor, labels: torch.Tensor, *, training: bool) -> torch.Tensor | None:
    """Mean squared error; ``NaN`` labels are "no label"."""
    labels = labels.reshape(predictions.shape).float()
    mask = ~torch.isnan(labels)
    per_item = (predictions.float() - torch.nan_to_num(labels, nan=0.0)) ** 2
    return masked_mean(per_item, mask, training=training)


def multi_label_loss(logits: torch.Tensor, labels: torch.Tensor, *, training: bool) -> torch.Tensor | None:
    """Binary cross-entropy per label; negative or ``NaN`` targets are "no label"."""
    labels = labels.reshape(logits.shape).float()
    mask = labels >= 0
    targets = torch.nan_to_num(labels, nan=0.0).clamp(min=0.0, max=1.0)
    per_item = F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none")
    return masked_mean(per_item, mask, training=training)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor, *, training: bool) -> torch.Tensor | None:
    """Cross-entropy at the masked tokens (labels >= 0): ``logits`` either the masked tokens' only, one row each in the
    order of ``labels[labels >= 0]`` (mtcore's masked_lm head), or every token's ``(batch, length, vocabulary)``. A batch
    with no masked token: a zero loss with a graph in training, ``None`` in evaluation."""
    targets = labels[labels >= 0].long()
    if logits.dim() != 2 or logits.shape[0] != targets.shape[0]:
        return classification_loss(logits, labels, training=training)
    if targets.numel() == 0:
        return (logits.float() * 0).sum() if training else None
    return F.cross_entropy(logits.float(), targets)


def default_loss(kind: str | None, logits: torch.Tensor, labels: torch.Tensor, *, training: bool) -> torch.Tensor | None:
    """The loss a task kind implies, for custom heads that return logits only."""
    if kind in ("regression",):
        return regression_loss(logits.reshape(labels.shape), labels, training=training)
    if kind == "multi_label":
        return multi_label_loss(logits, labels, training=training)
    if kind == "extractive_qa":
        return span_loss(logits, labels, training=training)
    if kind == "masked_lm":
        return masked_lm_loss(logits, labels, training=training)
    if kind is None and labels.is_floating_point():
        if labels.shape == logits.shape and logits.shape[-1] > 1:
            return multi_label_loss(logits, labels, training=training)
        return regression_loss(logits.reshape(labels.shape), labels, training=training)
    return classification_loss(logits, labels, training=training)
