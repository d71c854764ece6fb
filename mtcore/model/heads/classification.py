"""Sequence classification heads: a linear classifier and the seed's N-linear-layers MLP."""

from __future__ import annotations

import torch
from torch import nn

from mtcore.model.heads.pooled import PooledHead
from mtcore.model.heads.losses import classification_loss
from mtcore.model.heads.pooling import SequencePooler, check_class_weights, check_probability
from mtcore.model.heads.pooling import hidden_layers


class ClassificationHead(PooledHead):
    """Pooled encoding -> dropout -> linear -> class logits; cross-entropy loss.

    :param pooling: ``"cls"`` (first token), ``"mean"`` / ``"max"`` over the attention mask,
        ``"pooler"`` (the encoder's pooler, where it has one), or ``"spans"`` (the mean of each of the row's spans,
        concatenated: tasks that map ``spans``).
    :param num_spans: with ``pooling: spans``, how many spans each row has (default 2).
    :param span_pooling: with ``pooling: spans``, how each span is read: ``mean`` of its tokens (default), ``max``, or
        ``endpoints`` (its first and last token side by side: jiant's endpoint span extractor).
    :param dropout: dropout on the pooled vector.
    :param label_smoothing: cross-entropy label smoothing.
    :param class_weights: one loss weight per class (in a config also ``{label: weight}``), for imbalanced data.
    """

    kinds = ("text_classification", "pair_classification")

    def __init__(self, hidden_size: int, num_labels: int, pooling: str = "cls", dropout: float = 0.1, label_smoothing: float = 0.0,
                 class_weights: list[float] | None = None, num_spans: int | None = None, span_pooling: str | None = None) -> None:
        super().__init__(hidden_size, num_labels)
        self.pooler = SequencePooler(pooling, dropout, num_spans, span_pooling)
        self.classifier = nn.Linear(self.pooler.width(hidden_size), num_labels)
        self.label_smoothing = check_probability("label_smoothing", label_smoothing)
        _keep_class_weights(self, class_weights, num_labels)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        return classification_loss(logits, labels, training=self.training, label_smoothing=self.label_smoothing,
                                   class_weights=self.class_weights)


def _keep_class_weights(head: nn.Module, value: list[float] | None, num_labels: int) -> None:
    """``head.class_weights``: a buffer that follows the head's device and is not saved with its weights (the head
    options, saved in the manifest, rebuild it)."""
    head.register_buffer("class_weights", check_class_weights(value, num_labels), persistent=False)


class MLPHead(PooledHead):
    """The seed's N-linear-layers head: pooled -> [linear, activation, dropout] x (N-1) -> linear.

    :param num_layers: number of linear layers including the output one (1 = a plain linear
        classifier).
    :param linear_hidden_size: width of the inner layers (default: the encoder's hidden size).
    :param dropout_in: dropout on the pooled vector.
    :param dropout_between: dropout after each inner activation.
    :param activation: ``relu`` (the seed's default), ``gelu``, ``tanh``, ``silu``, ``leaky_relu``
        or ``none``.
    :param pooling, num_spans, span_pooling: as for :class:`ClassificationHead`.
    :param layer_norm: a layer norm after each inner activation (``layer_norm_eps``); with ``inner_bias: false`` (inner
        layers and norms without bias), ``num_layers: 2`` and ``activation: gelu``: ModernBERT's classifier, which
        ``mt export`` maps onto.
    :param label_smoothing, class_weights: as for :class:`ClassificationHead`.
    """

    kinds = ("text_classification", "pair_classification")

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        num_layers: int = 2,
        linear_hidden_size: int | None = None,
        dropout_in: float = 0.1,
        dropout_between: float = 0.0,
        activation: str = "relu",
        pooling: str = "cls",
        label_smoothing: float = 0.0,
        class_weights: list[float] | None = None,
        num_spans: int | None = None,
        layer_norm: bool = False,
        layer_norm_eps: float = 1e-5,
        inner_bias: bool = True,
        span_pooling: str | None = None,
    ) -> None:
        super().__init__(hidden_size, num_labels)
        self.pooler = SequencePooler(pooling, dropout_in, num_spans, span_pooling)
        inner, size_in = hidden_layers(hidden_size, num_layers, linear_hidden_size, activation, dropout_between,
                                       self.pooler.width(hidden_size), layer_norm, layer_norm_eps, inner_bias)
        self.layers = nn.Sequential(*inner, nn.Linear(size_in, num_labels))
        self.label_smoothing = check_probability("label_smoothing", label_smoothing)
        _keep_class_weights(self, class_weights, num_labels)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.layers(pooled)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        return classification_loss(logits, labels, training=self.training, label_smoothing=self.label_smoothing,
                                   class_weights=self.class_weights)

