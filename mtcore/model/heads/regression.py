"""Regression head: pooled encoding -> linear -> one value per output; MSE loss."""

from __future__ import annotations

import torch
from torch import nn

from mtcore.model.heads.pooled import PooledHead
from mtcore.model.heads.losses import regression_loss
from mtcore.model.heads.pooling import SequencePooler


class RegressionHead(PooledHead):
    """Pooled -> dropout -> linear; logits have shape ``(batch, num_labels)`` (``num_labels=1``
    for a single score); loss is the mean squared error over labelled rows (``NaN`` = no label).

    :param pooling: ``"cls"``, ``"mean"``, ``"max"`` or ``"pooler"``.
    :param dropout: dropout on the pooled vector.
    """

    kinds = ("regression",)

    def __init__(self, hidden_size: int, num_labels: int = 1, pooling: str = "cls", dropout: float = 0.1) -> None:
        super().__init__(hidden_size, num_labels)
        self.pooler = SequencePooler(pooling, dropout)
        self.regressor = nn.Linear(hidden_size, num_labels)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.regressor(pooled)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        return regression_loss(logits, labels.reshape(logits.shape), training=self.training)
