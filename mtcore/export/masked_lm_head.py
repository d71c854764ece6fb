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
    embeddings = plain.get_input_embeddings().weight
    output = plain.get_output_embeddings()
    decoder = output if output is not None and output is not dense and getattr(output, "weight", None) is not None \
        and output.weight.shape == embeddings.shape else None  # DeBERTa-v2's non-legacy head names its dense layer so
    named = [found for name in biases if (found := _parameter(plain, name)) is not None]
    # the bias the decoder adds (an untied decoder's own: the named one is linked to it only when tied), else the named one
    targets = [b for b in [getattr(decoder, "bias", None), *named] if b is not None]
    bias = targets[0] if targets else None
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
        for target in targets:
            if tuple(target.shape) == tuple(head.bias.shape):
                target.copy_(head.bias.float())
        if decoder is not None and decoder.weight is not embeddings:  # tie_word_embeddings false: the decoder is a copy of them
            decoder.weight.copy_(embeddings)
    return [dense_path, norm_path, "output bias"]


def _parameter(module: nn.Module, name: str) -> Any:
    try:
        return module.get_parameter(name)
    except AttributeError:
        return None
