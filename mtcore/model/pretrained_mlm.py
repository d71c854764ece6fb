"""The pre-trained masked-LM head a checkpoint holds beside its encoder, for a ``masked_lm`` task's head to start from.

``AutoModel.from_pretrained`` keeps the encoder of a pre-training checkpoint and drops its prediction head (BERT's and
DeBERTa's ``cls.predictions.*``, RoBERTa's ``lm_head.*``, DistilBERT's ``vocab_*``, ModernBERT's ``head.*`` and
``decoder.bias``, an ELECTRA generator's ``generator_predictions.*``, DeBERTa-v2's non-legacy ``lm_predictions.*``,
ALBERT's ``predictions.*``).
A ``masked_lm`` head is that head's transform and bias (:mod:`mtcore.model.heads.masked_lm`): starting it from them
continues the pre-training where it stopped, instead of from a random transform whose first steps send large gradients
into the encoder. The tensors are read from the checkpoint's safetensors files only (never a pickle), from a local
folder or the hub cache the encoder was just loaded from (nothing is downloaded).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

#: (what a note calls it, its transform's linear layer, its layer norm, its output bias's names, first found)
LAYOUTS = (
    ("cls.predictions", "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
     ("cls.predictions.bias", "cls.predictions.decoder.bias")),
    ("lm_head", "lm_head.dense", "lm_head.layer_norm", ("lm_head.bias", "lm_head.decoder.bias")),
    ("vocab_transform", "vocab_transform", "vocab_layer_norm", ("vocab_projector.bias",)),
    ("head", "head.dense", "head.norm", ("decoder.bias",)),
    ("generator_predictions", "generator_predictions.dense", "generator_predictions.LayerNorm", ("generator_lm_head.bias",)),
    ("lm_predictions", "lm_predictions.lm_head.dense", "lm_predictions.lm_head.LayerNorm", ("lm_predictions.lm_head.bias",)),
    ("predictions", "predictions.dense", "predictions.LayerNorm", ("predictions.bias", "predictions.decoder.bias")),  # ALBERT
)


def _cached(source: str, name: str, options: Mapping[str, Any]) -> Path | None:
    """A file of hub model ``source`` in the local cache (None when it is not there: nothing is downloaded)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(source, name, cache_dir=options.get("cache_dir"), revision=options.get("revision"))
    except Exception:  # noqa: BLE001 - not a hub id, or no cache: no pre-trained head, said by the caller
        return None
    return Path(found) if isinstance(found, (str, os.PathLike)) else None


def _files(source: str, options: Mapping[str, Any]) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it, of a local folder or a cached hub model."""
    folder = Path(source).expanduser()
    locate = (lambda name: folder / name if (folder / name).is_file() else None) if folder.is_dir() else \
        (lambda name: _cached(source, name, options))
    index = locate("model.safetensors.index.json")
    if index is not None:
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}
        except (OSError, ValueError):
            return {}
        shards = {shard: locate(shard) for shard in set(weight_map.values())}
        return {name: shards[shard] for name, shard in weight_map.items() if shards.get(shard) is not None}
    single = locate("model.safetensors")
    if single is None:
        return {}
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as handle:
        return {name: single for name in handle.keys()}


def read_mlm_head(source: str, options: Mapping[str, Any] | None = None) -> tuple[str, dict[str, torch.Tensor]] | None:
    """``(layout name, tensors)`` of the checkpoint's masked-LM head, keyed as a masked_lm head's state dict
    (``dense.weight``, ``layer_norm.weight``, ``bias``, and the biases it has), or None when it has none."""
    from safetensors import safe_open

    try:
        files = _files(str(source), options or {})
    except Exception:  # noqa: BLE001 - an unreadable checkpoint: the encoder's load has said what it could
        return None
    for name, dense, norm, biases in LAYOUTS:
        if f"{dense}.weight" not in files:
            continue
        wanted = {"dense.weight": f"{dense}.weight", "dense.bias": f"{dense}.bias",
                  "layer_norm.weight": next((k for k in (f"{norm}.weight", f"{norm}.gamma") if k in files), None),
                  "layer_norm.bias": next((k for k in (f"{norm}.bias", f"{norm}.beta") if k in files), None),
                  "bias": next((k for k in biases if k in files), None)}
        tensors = {}
        for ours, theirs in wanted.items():
            if theirs in files:
                with safe_open(str(files[theirs]), framework="pt") as handle:
                    tensors[ours] = handle.get_tensor(theirs)
        if "layer_norm.weight" in tensors and "bias" in tensors:
            return name, tensors
    return None


def start_from_checkpoint(heads: Mapping[str, Any], source: str, options: Mapping[str, Any] | None = None, config: Any = None) -> None:
    """Load the checkpoint's masked-LM head (if it has one) into every head of ``heads`` that takes it
    (``load_pretrained``). A checkpoint whose decoder is not its word embeddings (``config.tie_word_embeddings`` false)
    has a head that decodes otherwise than a masked_lm head: it is not read (the heads start random)."""
    takers = [head for head in heads.values() if callable(getattr(head, "load_pretrained", None))]
    found = read_mlm_head(source, options) if takers else None
    if found is not None and found[0] != "lm_predictions" and getattr(config, "tie_word_embeddings", True) is False:
        found = None  # its decoder is a matrix of its own (DeBERTa-v2's non-legacy head always decodes with the embeddings)
    if found is not None:
        for head in takers:
            head.load_pretrained(*found)
