"""What the encoder takes: whether it reads segment ids, how many positions it has, and the ``max_length`` a task's
rows are cut at (never above what the tokenizer's model or the encoder's position embeddings take)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from mtcore.errors import ConfigError
from mtcore.task import Task, TaskKind


def uses_token_type_ids(encoder_config: Any = None, tokenizer: Any = None) -> bool:
    """Whether segment ids reach the encoder: ``type_vocab_size > 1`` in its config.

    Without a config, fall back to whether the tokenizer lists ``token_type_ids`` among its
    ``model_input_names`` (RoBERTa-like tokenizers leave them out).
    """
    if encoder_config is not None:
        size = encoder_config.get("type_vocab_size") if isinstance(encoder_config, Mapping) else getattr(encoder_config, "type_vocab_size", None)
        return (size or 0) > 1
    return tokenizer is not None and "token_type_ids" in getattr(tokenizer, "model_input_names", ())


#: Encoders whose position ids start after the padding index (RoBERTa's family): ``pad_token_id + 1`` positions unusable.
_POSITIONS_AFTER_PADDING = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer",
                                      "roberta-prelayernorm", "xmod", "luke", "mpnet"})


def position_limit(encoder_config: Any) -> int | None:
    """The longest sequence the encoder's position embeddings take (None when its config does not say)."""
    if encoder_config is None:
        return None
    get = encoder_config.get if isinstance(encoder_config, Mapping) else lambda key: getattr(encoder_config, key, None)
    size = get("max_position_embeddings")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return None
    if get("model_type") in _POSITIONS_AFTER_PADDING:
        pad = get("pad_token_id")
        size -= (pad if isinstance(pad, int) and pad >= 0 else 1) + 1
    return size if size > 0 else None


def resolve_max_length(task: Task, tokenizer: Any, max_length: int | None = None, encoder_config: Any = None) -> int:
    """``max_length`` or the task's, never above what the tokenizer's model accepts, nor (given ``encoder_config``)
    above the encoder's position embeddings: a tokenizer that does not say its limit is cut there, with a warning."""
    length = int(max_length if max_length is not None else task.max_length)
    pair = "text_pair" in task.input_map or task.kind in (TaskKind.MULTIPLE_CHOICE, TaskKind.EXTRACTIVE_QA)
    try:
        special = int(tokenizer.num_special_tokens_to_add(pair=pair))
    except Exception:  # noqa: BLE001 - a tokenizer that cannot say: [CLS] and [SEP] (and one more between a pair)
        special = 3 if pair else 2
    if length < special + (2 if pair else 1):  # the tokenizer would not cut at all: rows longer than the encoder takes
        raise ConfigError(f"task {task.id!r}: max_length {length} leaves no room for text: the tokenizer adds {special} special "
                          f"tokens to a {'pair of texts' if pair else 'text'}; use at least 8")
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < length:  # a tokenizer without a limit says 1e30
        warnings.warn(f"task {task.id!r}: max_length {length} is more than its tokenizer's model takes ({limit} tokens, "
                      f"model_max_length); sequences are cut at {limit} tokens, set max_length to {limit} or less",
                      UserWarning, stacklevel=2)
        length = limit
    positions = position_limit(encoder_config)
    if positions is not None and length > positions:
        warnings.warn(f"task {task.id!r}: max_length {length} is more than the encoder's {positions} positions (its tokenizer "
                      f"does not say its limit); sequences are cut at {positions} tokens, set max_length to {positions} or less",
                      UserWarning, stacklevel=2)
        length = positions
    return length
