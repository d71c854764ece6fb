"""``PooledHead``: the shared shape of heads over one pooled vector per sequence."""

from __future__ import annotations

import torch

from mtcore.model.heads.base import Head, HeadOutput
from mtcore.model.heads.pooling import SequencePooler


class PooledHead(Head):
    """Pool each sequence (``self.pooler``), :meth:`project` it to logits, :meth:`compute_loss`.

    Subclasses set ``self.pooler`` (a :class:`SequencePooler`) and implement the two methods.
    """

    pooler: SequencePooler

    @property
    def uses_pooler(self) -> bool:
        return self.pooler.pooling == "pooler"

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, *, pooler_output: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, num_choices: int | None = None, spans: torch.Tensor | None = None) -> HeadOutput:
        logits = self.project(self.pooler(hidden_states, attention_mask, pooler_output, spans))
        return HeadOutput(logits=logits, loss=None if labels is None else self.compute_loss(logits, labels))
