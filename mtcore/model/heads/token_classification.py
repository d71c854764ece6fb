"""Token classification head: a linear classifier on every token."""

from __future__ import annotations

import torch
from torch import nn

from mtcore.model.heads.base import Head, HeadOutput
from mtcore.model.heads.losses import classification_loss
from mtcore.model.heads.pooling import check_class_weights, check_probability


class TokenClassificationHead(Head):
    """Hidden states -> dropout -> linear; logits ``(batch, length, num_labels)``.

    Labels are ``(batch, length)`` class ids; ``-100`` (special tokens, padding, word
    continuations) and other negative ids are ignored by the cross-entropy loss.

    :param dropout: dropout on the hidden states.
    :param class_weights: one loss weight per tag (in a config also ``{tag: weight}``), e.g. less for ``O``.
    """

    kinds = ("token_classification",)

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1, class_weights: list[float] | None = None) -> None:
        super().__init__(hidden_size, num_labels)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        self.classifier = nn.Linear(hidden_size, num_labels)
        self.register_buffer("class_weights", check_class_weights(class_weights, num_labels), persistent=False)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, *, pooler_output: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, num_choices: int | None = None) -> HeadOutput:
        logits = self.classifier(self.dropout(hidden_states))
        loss = None
        if labels is not None:
            loss = classification_loss(logits, labels, training=self.training, class_weights=self.class_weights)
        return HeadOutput(logits=logits, loss=loss)
