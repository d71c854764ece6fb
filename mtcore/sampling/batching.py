"""Cutting one task's examples into batches: random, length-grouped, or by token budget.

Every function here is deterministic: randomness comes only from the ``numpy.random.Generator``
passed in, which callers build with :func:`rng_for` from plain integers (seed, epoch, task,
cycle). No global random state is read or changed.

Batches are returned as ``numpy`` arrays of row indices into the task's split.

* :func:`random_batches` — a random permutation cut into batches.
* :func:`length_grouped_batches` — like Hugging Face ``group_by_length``: a random permutation is
  cut into mega-batches of ``mega_batch`` batches, each mega-batch is sorted by length (longest
  first) and cut into batches, then the order of all batches is shuffled. Rows of similar
  length share a batch, so dynamic padding wastes little, and batch order stays random.
* :func:`token_budget_batches` — batches hold as many rows as fit in a budget of padded token
  slots: ``rows * longest_row <= budget``, never exceeded; for padding-free batches
  (``packed=True``) the budget counts real tokens instead: ``sum(lengths) <= budget``. An example
  longer than the budget on its own cannot fit anywhere: it gets a batch of its own and
  :class:`OversizeExampleWarning` is emitted by :func:`check_token_budget` (raise
  ``token_budget`` or lower ``max_length``).

Multiple-choice rows may differ in their number of choices (``choices``, one count per row): the
collator pads every row of a batch to the batch's most choices, with one-token stand-in choices.
A padded batch then costs what its tensor holds, ``rows * most_choices * longest_choice``
(:func:`batch_cost`); a padding-free one its real tokens plus one token per stand-in.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence

import numpy as np

from mtcore.errors import ConfigError

#: Default number of batches per mega-batch for length grouping (Hugging Face uses 50).
MEGA_BATCH = 50

#: Domain tags mixed into the seeds so task batching and task choice never share a stream.
BATCHING_STREAM = 1
CHOICE_STREAM = 2


class OversizeExampleWarning(UserWarning):
    """Some examples are longer than the token budget; each of them gets a batch of its own."""


def rng_for(*keys: int) -> np.random.Generator:
    """A PCG64 generator seeded from plain integers (negative ones are wrapped to 64 bits)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(k) % 2**64 for k in keys])))


def task_key(name: str) -> int:
    """A stable integer for a task name (the same in every process and Python run)."""
    return zlib.crc32(name.encode("utf-8"))


def padded_lengths(lengths: Sequence[int] | np.ndarray, pad_to_multiple_of: int | None = None) -> np.ndarray:
    """Lengths as int64, rounded up to ``pad_to_multiple_of`` the way a collator pads them."""
    array = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if pad_to_multiple_of and pad_to_multiple_of > 1:
        m = int(pad_to_multiple_of)
        array = (array + m - 1) // m * m
    return array


def _cut(order: np.ndarray, batch_size: int, drop_last: bool) -> list[np.ndarray]:
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def random_batches(
    num_examples: int, batch_size: int, rng: np.random.Generator | None, *, drop_last: bool = False
) -> list[np.ndarray]:
    """Rows ``0..num_examples-1`` in random order (dataset order when ``rng`` is None), cut into batches.

    Only the last batch can be short; ``drop_last`` drops it.
    """
    batch_size = _check_batch_size(batch_size)
    order = rng.permutation(num_examples) if rng is not None else np.arange(num_examples)
    return _cut(order, batch_size, drop_last)


def _sorted_mega_batches(lengths: np.ndarray, order: np.ndarray, mega_size: int) -> np.ndarray:
    """``order`` cut into chunks of ``mega_size``, each chunk sorted by length, longest first."""
    chunks = []
    for start in range(0, len(order), mega_size):
        chunk = order[start : start + mega_size]
        chunks.append(chunk[np.argsort(-lengths[chunk], kind="stable")])
    return np.concatenate(chunks) if chunks else order


def length_grouped_batches(
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None,
    *,
    mega_batch: int = MEGA_BATCH,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """Batches of rows of similar length, in random order (see the module docstring).

    With ``rng=None`` nothing is random: mega-batches follow dataset order and the batch order
    is kept. Only the last batch can be short; ``drop_last`` drops it.
    """
    batch_size = _check_batch_size(batch_size)
    lengths = padded_lengths(lengths)
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    order = _sorted_mega_batches(lengths, order, batch_size * max(1, int(mega_batch)))
    batches = _cut(order, batch_size, drop_last)
    if rng is not None and batches:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _choice_array(choices: Sequence[int] | np.ndarray | None, rows: int) -> np.ndarray | None:
    if choices is None:
        return None
    array = np.asarray(choices, dtype=np.int64).reshape(-1)
    if len(array) != rows:
        raise ConfigError(f"choices has {len(array)} entries but lengths has {rows}: give one choice count per row")
    return array


def choice_widths(lengths: Sequence[int] | np.ndarray, choices: Sequence[int] | np.ndarray,
                  pad_to_multiple_of: int | None = None) -> np.ndarray:
    """Each multiple-choice row's longest choice, rounded up to ``pad_to_multiple_of``: its token
    slots ``lengths`` (choices x longest choice) divided by its ``choices`` (rounded up)."""
    slots = np.asarray(lengths, dtype=np.int64).reshape(-1)
    counts = _choice_array(choices, len(slots))
    return padded_lengths(-(-slots // np.maximum(counts, 1)), pad_to_multiple_of)


def row_costs(lengths: Sequence[int] | np.ndarray, choices: Sequence[int] | np.ndarray | None = None,
              pad_to_multiple_of: int | None = None, packed: bool = False) -> np.ndarray:
    """What each row costs in a batch of its own: its padded length (multiple choice: choices x
    its rounded longest choice) or, ``packed``, its real tokens."""
    if packed or choices is None:
        return padded_lengths(lengths, None if packed else pad_to_multiple_of)
    counts = _choice_array(choices, len(np.asarray(lengths).reshape(-1)))
    return counts * choice_widths(lengths, counts, pad_to_multiple_of)


def batch_cost(lengths: Sequence[int] | np.ndarray, choices: Sequence[int] | np.ndarray | None = None,
               pad_to_multiple_of: int | None = None, packed: bool = False) -> int:
    """What a budget counts for one batch of rows, exactly what the collator makes of them.

    Padded: ``rows * longest`` token slots, with ``choices`` (multiple choice, ``lengths`` being
    choices x longest choice) ``rows * most choices * longest choice`` — the collated tensor's
    size. ``packed``: the real tokens ``sum(lengths)``, plus one token per stand-in choice
    (``rows * most choices - sum(choices)``), which the encoder computes too.
    """
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    rows = len(lengths)
    if not rows:
        return 0
    counts = _choice_array(choices, rows)
    if packed:
        return int(lengths.sum()) + (int(rows * counts.max() - counts.sum()) if counts is not None else 0)
    if counts is None:
        return rows * int(padded_lengths(lengths, pad_to_multiple_of).max())
    return rows * int(counts.max()) * int(choice_widths(lengths, counts, pad_to_multiple_of).max())


def token_budget_batches(
    lengths: Sequence[int] | np.ndarray,
    budget: int,
    rng: np.random.Generator | None,
    *,
    group_by_length: bool = True,
    mega_batch: int = MEGA_BATCH,
    max_rows: int | None = None,
    pad_to_multiple_of: int | None = None,
    packed: bool = False,
    choices: Sequence[int] | np.ndarray | None = None,
) -> list[np.ndarray]:
    """Batches filled up to ``budget`` padded token slots (``rows * longest <= budget``).

    With ``packed`` (padding-free batches: the encoder computes real tokens only) the budget
    counts real tokens, ``sum(lengths) <= budget``, and ``pad_to_multiple_of`` is not applied.
    With ``choices`` (multiple choice: each row's number of choices; ``lengths`` are then choices
    x longest choice, or real tokens when ``packed``) a batch costs :func:`batch_cost`: rows x
    most choices x longest choice, or real tokens plus one per stand-in choice when ``packed``.

    Rows are taken in random order (sorted by length inside mega-batches when
    ``group_by_length``, multiple-choice rows by number of choices first, then longest choice;
    a mega-batch holds about ``mega_batch`` budgets' worth of rows) and
    added to the current batch while the batch still fits; ``max_rows`` caps the rows per batch.
    Lengths are first rounded up to ``pad_to_multiple_of``, as the collator will pad them. A row
    longer than the budget gets a batch of its own (see :func:`check_token_budget`). Batch order
    is shuffled when ``rng`` is given.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(f"token_budget must be a positive integer (padded tokens per batch), got {budget!r}")
    if max_rows is not None:
        max_rows = _check_batch_size(max_rows)
    counts = _choice_array(choices, len(np.asarray(lengths).reshape(-1)))
    costs = row_costs(lengths, counts, pad_to_multiple_of, packed)
    # per row: ``size`` (padded: the longest choice, or the padded length; packed: real tokens) and choices
    size = costs if packed or counts is None else choice_widths(lengths, counts, pad_to_multiple_of)
    order = rng.permutation(len(costs)) if rng is not None else np.arange(len(costs))
    if group_by_length and len(costs):
        rows_per_budget = max(1, int(budget) // max(1, int(np.median(costs))))
        key = costs if packed or counts is None else counts * (int(size.max()) + 1) + size  # choices, then longest choice
        order = _sorted_mega_batches(key, order, rows_per_budget * max(1, int(mega_batch)))
    order_sizes = size[order].tolist()
    if counts is None:
        cut = _cut_by_budget(order_sizes, budget, packed, max_rows)
    else:
        cut = _cut_by_budget_with_choices(order_sizes, counts[order].tolist(), budget, packed, max_rows)
    batches = [order[a:b] for a, b in zip(cut, cut[1:] + [len(order)])] if len(order) else []
    if rng is not None and batches:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _cut_by_budget(sizes: list[int], budget: int, packed: bool, max_rows: int | None) -> list[int]:
    """Start positions of the batches: ``rows * longest`` (or ``sum``, packed) never above ``budget``."""
    starts, start, longest, total = [0], 0, 0, 0
    for position, length in enumerate(sizes):
        rows = position - start
        new_longest, new_total = max(longest, length), total + length
        cost = new_total if packed else new_longest * (rows + 1)
        if rows and (cost > budget or (max_rows is not None and rows >= max_rows)):
            starts.append(position)
            start, new_longest, new_total = position, length, length
        longest, total = new_longest, new_total
    return starts


def _cut_by_budget_with_choices(sizes: list[int], choices: list[int], budget: int, packed: bool, max_rows: int | None) -> list[int]:
    """Like :func:`_cut_by_budget` for multiple-choice rows: every row is padded to the batch's most
    choices (rows x most x longest; packed: real tokens plus one per stand-in choice)."""
    starts, start, longest, total, most, count = [0], 0, 0, 0, 0, 0
    for position, (length, choice) in enumerate(zip(sizes, choices)):
        rows = position - start
        new_longest, new_total = max(longest, length), total + length
        new_most, new_count = max(most, choice), count + choice
        cost = new_total + new_most * (rows + 1) - new_count if packed else new_longest * new_most * (rows + 1)
        if rows and (cost > budget or (max_rows is not None and rows >= max_rows)):
            starts.append(position)
            start, new_longest, new_total, new_most, new_count = position, length, length, choice, choice
        longest, total, most, count = new_longest, new_total, new_most, new_count
    return starts


def check_token_budget(name: str, lengths: Sequence[int] | np.ndarray, budget: int, pad_to_multiple_of: int | None = None,
                       packed: bool = False, choices: Sequence[int] | np.ndarray | None = None) -> int:
    """Warn (once, one line) when examples of task ``name`` exceed ``budget``; return their count.

    An example's size is :func:`row_costs`: its padded length (multiple choice: choices x its
    rounded longest choice) or, ``packed``, its real tokens."""
    padded = row_costs(lengths, choices, pad_to_multiple_of, packed)
    over = int((padded > budget).sum())
    if over:
        warnings.warn(
            f"task {name!r}: {over} example(s) are longer than token_budget {budget} (longest {int(padded.max())} "
            f"{'real' if packed else 'padded'} tokens); each goes in a batch of its own that exceeds the budget: "
            "raise the token budget (batching.max_tokens) or lower max_length",
            OversizeExampleWarning,
            stacklevel=3,
        )
    return over


def padding_efficiency(lengths: Sequence[int] | np.ndarray, batches: Sequence[np.ndarray], pad_to_multiple_of: int | None = None) -> float:
    """Real tokens / computed token slots: ``sum(lengths) / sum(rows * longest)`` over ``batches``."""
    raw = padded_lengths(lengths)
    padded = padded_lengths(lengths, pad_to_multiple_of)
    real = sum(int(raw[b].sum()) for b in batches if len(b))
    slots = sum(len(b) * int(padded[b].max()) for b in batches if len(b))
    return real / slots if slots else 1.0
