"""Masking the tokens of a ``masked_lm`` task: BERT's recipe, drawn when the data are tokenized.

Of each row's tokens that are not special tokens (``[CLS]``, ``[SEP]``, ...), 15% (the task's ``mask_probability``) are
chosen (at least one in a row that has any; with ``mask_whole_words``, 15% of its words, each with all its tokens): 80% of those become the tokenizer's mask token, 10% a random token of the vocabulary that is not a special one, 10%
stay as they are. The row's labels are the chosen tokens' original ids, ``-100`` everywhere else.

The draws depend only on the row's position in its split (and on which of its tokens are special): evaluation scores the same masked tokens at
every evaluation and in every run (its perplexity is comparable across runs), and the tokenized split is cached like any
other. Training rows get new masks each time they are drawn (RoBERTa's dynamic masking): the batch sampler redraws them
(:meth:`Masker.redraw`) from the row's position, the epoch and the step, so a resumed run draws what the uninterrupted
one did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtcore.errors import ConfigError

MASK_PROBABILITY = 0.15
#: Shares of the chosen tokens that become the mask token, and (of the rest) a random token; the others stay.
MASK_TOKEN_SHARE, RANDOM_TOKEN_SHARE = 0.8, 0.5
#: The tokenized column of each token's word (whole-word masking): -1 for special tokens, else a number per word of the row.
WORDS = "mask_words"
#: Part of the tokenized splits' cache key: a change to the recipe makes them be tokenized again.
MASKING_VERSION = 1
_SEED = 0x6D6C6D  # "mlm": the masks of row i of a split are drawn from default_rng([_SEED, i])


class Masker:
    """``masker(input_ids, rows) -> (masked input_ids, labels)`` for one tokenizer (``probability``: the share of tokens
    chosen, 0.15 when None)."""

    def __init__(self, tokenizer: Any, task_id: str, probability: float | None = None, whole_words: bool = False) -> None:
        self.probability = float(probability or MASK_PROBABILITY)
        self.task_id = task_id
        self.whole_words = bool(whole_words)
        if whole_words and not getattr(tokenizer, "is_fast", False):
            raise ConfigError(f"task {task_id!r} (masked_lm): mask_whole_words needs a fast tokenizer (its tokens' words), and "
                              f"{type(tokenizer).__name__} is not one; use an encoder with a tokenizer.json, or leave mask_whole_words out")
        if whole_words and len({w for w in tokenizer("one two three four").word_ids() if w is not None}) < 2:
            raise ConfigError(f"task {task_id!r} (masked_lm): mask_whole_words needs the tokenizer's word boundaries, and "
                              f"{type(tokenizer).__name__} reports 'one two three four' as one word (whole-word masking would mask "
                              "every token); leave mask_whole_words out")
        mask_id = getattr(tokenizer, "mask_token_id", None)
        if mask_id is None:
            raise ConfigError(f"task {task_id!r} (masked_lm): tokenizer {type(tokenizer).__name__} has no mask token; use an "
                              "encoder trained with masked language modelling (BERT, RoBERTa, ModernBERT) or one whose tokenizer "
                              "defines mask_token")
        self.mask_id = int(mask_id)
        self.special = np.asarray(sorted({int(i) for i in getattr(tokenizer, "all_special_ids", [])} | {self.mask_id}), dtype=np.int64)
        ordinary = np.setdiff1d(np.arange(len(tokenizer), dtype=np.int64), self.special)
        if ordinary.size == 0:
            raise ConfigError(f"task {task_id!r} (masked_lm): tokenizer {type(tokenizer).__name__} has only special tokens")
        self.ordinary = ordinary

    def __call__(self, input_ids: list[list[int]], rows: list[int], words: list[list[int]] | None = None
                 ) -> tuple[list[list[int]], list[list[int]]]:
        masked, labels = [], []
        for k, (ids, row) in enumerate(zip(input_ids, rows)):
            row_ids, row_labels = self.mask_row(np.asarray(ids, dtype=np.int64), int(row), (), words[k] if words is not None else None)
            masked.append(row_ids.tolist())
            labels.append(row_labels.tolist())
        return masked, labels

    def redraw(self, rows: Any, positions: list[int], draw: tuple[int, ...]) -> Any:
        """``rows`` (a dict of columns or a list of row dicts, as read for a batch; ``positions``: their places in the
        split) with new masks: the original tokens (``labels`` where set, ``input_ids`` elsewhere) masked again from
        ``default_rng([seed, position, *draw])`` (the training sampler's ``(epoch, step)``)."""
        keys = ("input_ids", "labels", WORDS) if self.whole_words else ("input_ids", "labels")
        columns = rows if isinstance(rows, dict) else {key: [row[key] for row in rows] for key in keys}
        originals = [np.where(np.asarray(labels) >= 0, np.asarray(labels), np.asarray(ids)).astype(np.int64)
                     for ids, labels in zip(columns["input_ids"], columns["labels"])]
        words = columns[WORDS] if self.whole_words else [None] * len(originals)
        drawn = [self.mask_row(ids, int(position), draw, group) for ids, position, group in zip(originals, positions, words)]
        masked, labels = [ids.tolist() for ids, _ in drawn], [targets.tolist() for _, targets in drawn]
        if isinstance(rows, dict):
            return {**rows, "input_ids": masked, "labels": labels}
        return [{**row, "input_ids": ids, "labels": targets} for row, ids, targets in zip(rows, masked, labels)]

    def mask_row(self, ids: np.ndarray, row: int, draw: tuple[int, ...] = (), words: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """One row's masked ids and labels (see the module docstring); ``words``: each token's word in the row (-1: a
        special token), for whole-word masking: a chosen word's tokens are all chosen."""
        rng = np.random.default_rng([_SEED, row, *draw])
        eligible = ~np.isin(ids, self.special)
        if words is None:
            chosen = eligible & (rng.random(ids.shape[0]) < self.probability)
        else:
            words = np.asarray(words, dtype=np.int64)
            names = np.unique(words[eligible & (words >= 0)])
            chosen = eligible & np.isin(words, names[rng.random(names.shape[0]) < self.probability])
        if eligible.any() and not chosen.any():  # a short row: one token (its word) all the same
            pick = rng.choice(np.flatnonzero(eligible))
            chosen[pick] = True
            if words is not None and words[pick] >= 0:
                chosen |= eligible & (words == words[pick])
        labels = np.where(chosen, ids, -100)
        how = rng.random(ids.shape[0])
        to_mask = chosen & (how < MASK_TOKEN_SHARE)
        to_random = chosen & ~to_mask & (how >= MASK_TOKEN_SHARE + (1 - MASK_TOKEN_SHARE) * RANDOM_TOKEN_SHARE)
        out = ids.copy()
        out[to_mask] = self.mask_id
        out[to_random] = self.ordinary[rng.integers(0, self.ordinary.size, int(to_random.sum()))]
        return out, labels


def token_words(encoded: Any, row: int) -> list[int]:
    """Each token's word in row ``row`` of a fast tokenizer's batch encoding: -1 for special tokens, else a number per
    word, the second text's words numbered after the first's."""
    groups, seen = [], {}
    for word, sequence in zip(encoded.word_ids(row), encoded.sequence_ids(row)):
        groups.append(-1 if word is None else seen.setdefault((sequence, word), len(seen)))
    return groups
