"""``TokenizerConfig``: how a seed task's texts are tokenized (was ``src.tokenizers``)."""

from __future__ import annotations

from dataclasses import dataclass

from mtcore.errors import ConfigError

TRUNCATIONS = ("longest_first", "only_first", "only_second")


@dataclass(frozen=True)
class TokenizerConfig:
    """Tokenizer settings of one task.

    :param max_length: longest input in tokens (capped by the tokenizer's ``model_max_length``).
    :param truncation: ``True`` (= ``"longest_first"``), ``"only_first"`` or ``"only_second"``.
    :param pad_to_multiple_of: pad each batch's length up to a multiple of this (tensor cores).

    Batches are always padded dynamically to their longest row (the seed padded every row to
    ``max_length``); the results are the same, the batches smaller.
    """

    max_length: int = 512
    truncation: bool | str = True
    pad_to_multiple_of: int | None = None

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
