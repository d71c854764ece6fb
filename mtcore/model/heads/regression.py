"""Regression head: pooled encoding -> (linear layers ->) linear -> one value per output; MSE loss."""

from __future__ import annotations

import torch
from torch import nn

from mtcore.model.heads.pooled import PooledHead
from mtcore.model.heads.losses import regression_loss
from mtcore.model.heads.pooling import SequencePooler, hidden_layers


class RegressionHead(PooledHead):
    """Pooled -> dropout -> linear; logits have shape ``(batch, num_labels)`` (``num_labels=1``
    for a single score); loss is the mean squared error over labelled rows (``NaN`` = no label).

    :param pooling: ``"cls"``, ``"mean"``, ``"max"``, ``"pooler"`` or ``"spans"`` (see :class:`ClassificationHead`).
    :param num_spans: with ``pooling: spans``, how many spans each row has (default 2).
    :param span_pooling: with ``pooling: spans``, how each span is read: ``mean`` of its tokens (default), ``max``, or
        ``endpoints`` (its first and last token side by side: jiant's endpoint span extractor).
    :param dropout: dropout on the pooled vector.
    :param num_layers, linear_hidden_size, activation, dropout_between: as for the ``mlp`` head: ``num_layers: 2`` puts
        a linear layer and its activation before the output one (what RoBERTa's, DistilBERT's, ELECTRA's and DeBERTa's
        plain classifiers are: ``mt export`` maps it onto them).
    :param layer_norm, layer_norm_eps, inner_bias: as for the ``mlp`` head (ModernBERT's classifier).
    """

    kinds = ("regression",)

    def __init__(self, hidden_size: int, num_labels: int = 1, pooling: str = "cls", dropout: float = 0.1, num_layers: int = 1,
                 linear_hidden_size: int | None = None, activation: str = "relu", dropout_between: float = 0.0,
                 num_spans: int | None = None, layer_norm: bool = False, layer_norm_eps: float = 1e-5, inner_bias: bool = True,
                 span_pooling: str | None = None) -> None:
        super().__init__(hidden_size, num_labels)
        self.pooler = SequencePooler(pooling, dropout, num_spans, span_pooling)
        self.hidden, size_in = hidden_layers(hidden_size, num_layers, linear_hidden_size, activation, dropout_between,
                                             self.pooler.width(hidden_size), layer_norm, layer_norm_eps, inner_bias)
        self.regressor = nn.Linear(size_in, num_labels)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.regressor(self.hidden(pooled))

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        return regression_loss(logits, labels.reshape(logits.shape), training=self.training)
