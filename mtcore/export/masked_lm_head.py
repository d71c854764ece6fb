"""A ``masked_lm`` head onto a plain ``AutoModelForMaskedLM`` (BERT's ``cls.predictions``, RoBERTa's ``lm_head``,
DistilBERT's ``vocab_*``, ModernBERT's ``head``): the exported model fills masks (``pipeline("fill-mask")``).

The plain model's decoder is its word-embedding matrix, as the head's is (:mod:`mtcore.model.heads.masked_lm`): the
encoder's weights fill it; the head's transform (linear, layer norm) and output bias are copied here, then
:func:`mtcore.export.mapping.verify` compares the two models' scores.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mtcore.export.mapping import ExportError


def _refusal(task_id: str, plain: nn.Module, detail: str) -> ExportError:
    return ExportError(f"task {task_id!r} cannot be exported as a plain {type(plain).__name__}: its masked_lm head {detail}; "
                       "export the encoder alone with --encoder-only")


def _zero(tensor: torch.Tensor | None) -> bool:
    return tensor is None or not bool(tensor.detach().abs().max() > 0)


def copy_mlm_head(plain: nn.Module, head: Any, task_id: str) -> list[str]:
    """Copy ``head``'s transform and output bias onto ``plain``'s prediction head; returns the names filled."""
    from mtcore.model.pretrained_mlm import LAYOUTS

    for _, dense_path, norm_path, biases in LAYOUTS:
        try:
            dense, norm = plain.get_submodule(dense_path), plain.get_submodule(norm_path)
        except AttributeError:
            continue
        break
    else:
        raise _refusal(task_id, plain, "has no counterpart there (no prediction head of a known layout)")
    output = plain.get_output_embeddings()
    bias = next((found for name in biases if (found := _parameter(plain, name)) is not None), getattr(output, "bias", None))
    pairs = [(dense, head.dense, dense_path), (norm, head.layer_norm, norm_path)]
    for theirs, ours, name in pairs:
        if tuple(theirs.weight.shape) != tuple(ours.weight.shape):
            raise _refusal(task_id, plain, f"has a layer of shape {tuple(ours.weight.shape)} where {name} is {tuple(theirs.weight.shape)}")
        if theirs.bias is None and not _zero(ours.bias):
            raise _refusal(task_id, plain, f"has a bias in {name.rpartition('.')[2]} where {name} has none")
    if norm.eps != head.layer_norm.eps:
        raise _refusal(task_id, plain, f"has a layer norm of eps {head.layer_norm.eps:g} where {norm_path}'s is {norm.eps:g} (head option "
                                       "layer_norm_eps)")
    if bias is None or tuple(bias.shape) != tuple(head.bias.shape):
        raise _refusal(task_id, plain, f"decodes {head.bias.shape[0]} tokens where the plain model's output bias is "
                                       f"{None if bias is None else tuple(bias.shape)}")
    with torch.no_grad():
        for theirs, ours, _ in pairs:
            theirs.weight.copy_(ours.weight.float())
            if theirs.bias is not None:
                theirs.bias.copy_(ours.bias.float())
        bias.copy_(head.bias.float())
        embeddings = plain.get_input_embeddings().weight
        weight = getattr(output, "weight", None)
        if weight is not None and weight is not embeddings and weight.shape == embeddings.shape:  # tie_word_embeddings false:
            weight.copy_(embeddings)  # the decoder is a copy of the embeddings here
    return [dense_path, norm_path, "output bias"]


def _parameter(module: nn.Module, name: str) -> Any:
    try:
        return module.get_parameter(name)
    except AttributeError:
        return None
