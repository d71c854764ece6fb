"""Multiple-choice head: one scorer applied to every (context, choice) encoding."""

from __future__ import annotations

import torch
from torch import nn

from mtcore.errors import ConfigError
from mtcore.model.heads.base import Head, HeadOutput
from mtcore.model.heads.losses import classification_loss
from mtcore.model.heads.pooling import SequencePooler, hidden_layers


class MultipleChoiceHead(Head):
    """Scores each choice with one linear scorer and applies cross-entropy over the choices.

    The model flattens ``(batch, choices, length)`` inputs to ``(batch * choices, length)`` and
    runs the encoder once; this head pools each encoding, scores it, and reshapes the scores to
    logits of shape ``(batch, choices)``. Labels are the right choice's index (``-1`` = none).

    :param pooling: ``"cls"``, ``"mean"``, ``"max"`` or ``"pooler"``.
    :param dropout: dropout on the pooled vector.
    :param num_layers, linear_hidden_size, activation, dropout_between: as for the ``mlp`` head: ``num_layers: 2`` puts
        a linear layer and its activation before the output one (what RoBERTa's, DistilBERT's, ELECTRA's and DeBERTa's
        plain classifiers are: ``mt export`` maps it onto them).
    :param layer_norm, layer_norm_eps, inner_bias: as for the ``mlp`` head (ModernBERT's classifier).
    """

    kinds = ("multiple_choice",)

    def __init__(self, hidden_size: int, num_labels: int = 1, pooling: str = "cls", dropout: float = 0.1, num_layers: int = 1,
                 linear_hidden_size: int | None = None, activation: str = "relu", dropout_between: float = 0.0,
                 layer_norm: bool = False, layer_norm_eps: float = 1e-5, inner_bias: bool = True) -> None:
        super().__init__(hidden_size, num_labels)
        if pooling == "spans":
            raise ConfigError("pooling 'spans' is for tasks with one text (pair) a row; a multiple-choice head pools each choice: "
                              "use cls, mean, max or pooler")
        self.pooler = SequencePooler(pooling, dropout)
        self.hidden, size_in = hidden_layers(hidden_size, num_layers, linear_hidden_size, activation, dropout_between, None, layer_norm,
                                             layer_norm_eps, inner_bias)
        self.scorer = nn.Linear(size_in, 1)
        # a shift shared by every choice cancels in the softmax over choices: its gradient is float noise, which
        # Adam would scale up to learning-rate-sized random steps (and DDP ranks would disagree on). Kept (at 0) so
        # the head stays a BertForMultipleChoice classifier, but not trained.
        nn.init.zeros_(self.scorer.bias)
        self.scorer.bias.requires_grad_(False)

    @property
    def uses_pooler(self) -> bool:
        return self.pooler.pooling == "pooler"

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, *, pooler_output: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, num_choices: int | None = None) -> HeadOutput:
        scores = self.scorer(self.hidden(self.pooler(hidden_states, attention_mask, pooler_output)))
        logits = scores.view(-1, num_choices) if num_choices else scores.view(1, -1)
        loss = None
        if labels is not None:
            loss = classification_loss(logits, labels, training=self.training)
        return HeadOutput(logits=logits, loss=loss)
