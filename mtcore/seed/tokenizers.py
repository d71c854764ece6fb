"""``TokenizerConfig``: how a seed task's texts are tokenized (was ``src.tokenizers``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mtcore.errors import ConfigError, did_you_mean

TRUNCATIONS = ("longest_first", "only_first", "only_second")
DEFAULT_MAX_LENGTH = 512

#: The seed's other tokenizer keywords -> a check of the value mtcore can honour (and what it means).
_ANY = (lambda v: True, "")
SEED_OPTIONS: dict[str, tuple[Any, str]] = {
    # batches are padded to their longest row whatever `padding` says (the seed padded dynamically too)
    "padding": (lambda v: v in (True, False, None, "longest", "max_length", "do_not_pad") or type(v).__name__ == "PaddingStrategy", ""),
    "stride": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0 (it only matters with overflowing tokens)"),
    "add_special_tokens": (lambda v: v is True, "True (rows always get [CLS]/[SEP])"),
    "return_token_type_ids": (lambda v: v in (None, True), "None or True (the encoder's token types are always passed)"),
    "return_attention_mask": (lambda v: v in (None, True), "None or True"),
    "is_split_into_words": (lambda v: v is False, "False"),
    "return_overflowing_tokens": (lambda v: v is False, "False (long rows are truncated)"),
    "return_special_tokens_mask": (lambda v: v is False, "False"),
    "return_offsets_mapping": (lambda v: v is False, "False"),
    "return_length": (lambda v: v is False, "False"),
    "return_tensors": (lambda v: v in (None, "pt"), "None or 'pt'"),
    "verbose": _ANY,
}


@dataclass(frozen=True, init=False)
class TokenizerConfig:
    """Tokenizer settings of one task.

    :param max_length: longest input in tokens (capped by the tokenizer's ``model_max_length``;
        ``None`` is the default, 512).
    :param truncation: ``True`` (= ``"longest_first"``), ``"only_first"`` or ``"only_second"``.
    :param pad_to_multiple_of: pad each batch's length up to a multiple of this (tensor cores).
    :param seed_options: the seed's other keywords: ``init_config`` (keywords of
        ``AutoTokenizer.from_pretrained``; every task of a ``Tasks`` must agree), ``padding``
        (accepted: batches are always padded dynamically to their longest row, as the seed's
        collator did), ``stride`` and ``verbose`` (no effect), and ``add_special_tokens``,
        ``return_token_type_ids``, ... at the values mtcore always uses (others are refused).
    """

    max_length: int = DEFAULT_MAX_LENGTH
    truncation: bool | str = True
    pad_to_multiple_of: int | None = None
    init_config: Mapping[str, Any] | None = field(default=None, hash=False, repr=False)

    def __init__(self, max_length: int | None = DEFAULT_MAX_LENGTH, truncation: bool | str = True, pad_to_multiple_of: int | None = None,
                 **seed_options: Any) -> None:
        if isinstance(max_length, Mapping):  # the seed's first field was init_config
            raise ConfigError(f"TokenizerConfig(max_length, ...): the first argument is max_length, and {dict(max_length)!r} is the seed's "
                              f"init_config there; write init_config={dict(max_length)!r} as a keyword")
        init_config = seed_options.pop("init_config", None)
        for key, value in seed_options.items():
            if key not in SEED_OPTIONS:
                accepted = ["max_length", "truncation", "pad_to_multiple_of", "init_config", *SEED_OPTIONS]
                raise ConfigError(f"TokenizerConfig got an unknown keyword {key!r}{did_you_mean(key, accepted)}; it takes {', '.join(accepted)}")
            check, wanted = SEED_OPTIONS[key]
            if not check(value):
                raise ConfigError(f"TokenizerConfig {key}={value!r} is not supported by mtcore; use {key}={wanted} or leave it out")
        if init_config is not None and not isinstance(init_config, Mapping):
            raise ConfigError(f"TokenizerConfig init_config must be a dict of AutoTokenizer.from_pretrained keywords, got {init_config!r}")
        object.__setattr__(self, "max_length", DEFAULT_MAX_LENGTH if max_length is None else max_length)
        object.__setattr__(self, "truncation", truncation)
        object.__setattr__(self, "pad_to_multiple_of", pad_to_multiple_of)
        object.__setattr__(self, "init_config", dict(init_config) if init_config else None)
        self.__post_init__()

    def __post_init__(self) -> None:
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 8:
            raise ConfigError(f"TokenizerConfig max_length must be an integer >= 8, got {self.max_length!r}")
        if self.truncation is False:
            raise ConfigError("TokenizerConfig truncation=False is not supported: rows longer than max_length would not fit the encoder")
        if self.truncation is not True and self.truncation not in TRUNCATIONS:
            raise ConfigError(f"TokenizerConfig truncation {self.truncation!r} is not one of True, {', '.join(TRUNCATIONS)}")

    @property
    def truncation_strategy(self) -> str:
        """The :attr:`mtcore.task.Task.truncation` value."""
        return "longest_first" if self.truncation is True else str(self.truncation)
