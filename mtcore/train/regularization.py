"""R3F (Aghajanyan et al. 2021, in MT-DNN's toolkit as SMART's lighter sibling): each batch also runs with noise added to
the encoder's input embeddings, and its task's loss gains ``weight`` times the symmetric divergence of the two outputs,
so that the model's outputs stay smooth around the training inputs (``loss.r3f``).

The divergence is :func:`mtcore.train.distill.distillation_loss` both ways at temperature 1 (the squared difference once
for regression), over the batch's labelled items; the noise is drawn from the global random stream (normal or uniform,
scale ``noise``), so a resumed run draws the same. It costs a second forward and backward pass per batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field

from mtcore.train.config_section import Section


class R3FConfig(Section):
    """``loss.r3f``: ``{weight: 1.0, noise: 1.0e-5, distribution: normal}``."""

    weight: float = Field(1.0, gt=0, le=1000)
    noise: float = Field(1e-5, gt=0, le=1)
    distribution: Literal["normal", "uniform"] = "normal"


@contextmanager
def noisy_embeddings(encoder: Any, noise: float, distribution: str) -> Iterator[None]:
    """The encoder's input embeddings with noise added to their output, inside the block."""
    import torch

    def add_noise(module: Any, inputs: Any, output: Any) -> Any:
        if distribution == "uniform":
            return output + torch.empty_like(output).uniform_(-noise, noise)
        return output + torch.randn_like(output) * noise

    handle = encoder.get_input_embeddings().register_forward_hook(add_noise)
    try:
        yield
    finally:
        handle.remove()


class R3F:
    """The R3F term of one batch: ``weight`` times the symmetric divergence of the clean and the noisy outputs."""

    def __init__(self, settings: R3FConfig, kinds: Mapping[str, str], model: Any) -> None:
        """``model``: the MultitaskModel itself (not DDP's wrapper: the noisy pass feeds the step's one backward, which
        the wrapper prepared with the clean pass)."""
        self.settings, self.kinds, self.model = settings, dict(kinds), model

    def term(self, task: str, inputs: Mapping[str, Any], output: Any) -> Any:
        from mtcore.train.distill import distillation_loss

        labels = inputs.get("labels") if isinstance(inputs, Mapping) else None
        if labels is None:
            return 0.0
        kind, clean = self.kinds[task], output.logits
        with noisy_embeddings(self.model.encoder, self.settings.noise, self.settings.distribution):  # masked_lm: labels pick its tokens
            noisy = self.model(task, **{k: v for k, v in inputs.items() if k != "labels" or kind == "masked_lm"}).logits
        both = distillation_loss(kind, noisy, clean, labels)
        if kind != "regression":
            both = both + distillation_loss(kind, clean, noisy, labels)
        return self.settings.weight * both
