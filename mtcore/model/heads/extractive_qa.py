"""Extractive question answering head: a start and an end score for every token (BERT's SQuAD head)."""

from __future__ import annotations

import torch
from torch import nn

from mtcore.model.heads.base import Head, HeadOutput
from mtcore.model.heads.losses import span_loss
from mtcore.model.heads.pooling import check_probability


class ExtractiveQAHead(Head):
    """Hidden states -> dropout -> linear to 2; logits ``(batch, length, 2)``: ``[..., 0]`` start, ``[..., 1]`` end.

    Padding gets the dtype's lowest score. Labels are ``(batch, 2)``: the answer's first and last
    token, ``-100`` for rows without one. The loss is the mean of the start and end
    cross-entropies over the tokens. The layer is called ``qa_outputs``, as in transformers'
    ``*ForQuestionAnswering`` models, so ``mt export`` writes one of those.

    :param dropout: dropout on the hidden states (transformers' QA heads use none).
    :param max_answer_tokens: the longest answer evaluation and prediction pick, in tokens (SQuAD's
        reference code uses 30); read from the task's ``head_options`` by the decoding.
    """

    kinds = ("extractive_qa",)

    def __init__(self, hidden_size: int, num_labels: int = 2, dropout: float = 0.0, max_answer_tokens: int = 30) -> None:
        super().__init__(hidden_size, 2)
        if isinstance(max_answer_tokens, bool) or not isinstance(max_answer_tokens, int) or max_answer_tokens < 1:
            raise ValueError(f"max_answer_tokens must be an integer >= 1, got {max_answer_tokens!r}")
        self.max_answer_tokens = max_answer_tokens
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, *, pooler_output: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, num_choices: int | None = None) -> HeadOutput:
        logits = self.qa_outputs(self.dropout(hidden_states))
        logits = logits.masked_fill(~attention_mask.bool()[..., None], torch.finfo(logits.dtype).min)
        loss = span_loss(logits, labels, training=self.training) if labels is not None else None
        return HeadOutput(logits=logits, loss=loss)
