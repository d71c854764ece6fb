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
) -> list[np.ndarray]:
    """Batches filled up to ``budget`` padded token slots (``rows * longest <= budget``).

    With ``packed`` (padding-free batches: the encoder computes real tokens only) the budget
    counts real tokens, ``sum(lengths) <= budget``, and ``pad_to_multiple_of`` is not applied.

    Rows are taken in random order (sorted by length inside mega-batches when
    ``group_by_length``; a mega-batch holds about ``mega_batch`` budgets' worth of rows) and
    added to the current batch while the batch still fits; ``max_rows`` caps the rows per batch.
    Lengths are first rounded up to ``pad_to_multiple_of``, as the collator will pad them. A row
    longer than the budget gets a batch of its own (see :func:`check_token_budget`). Batch order
    is shuffled when ``rng`` is given.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(f"token_budget must be a positive integer (padded tokens per batch), got {budget!r}")
    if max_rows is not None:
        max_rows = _check_batch_size(max_rows)
    padded = padded_lengths(lengths, None if packed else pad_to_multiple_of)
    order = rng.permutation(len(padded)) if rng is not None else np.arange(len(padded))
    if group_by_length and len(padded):
        rows_per_budget = max(1, int(budget) // max(1, int(np.median(padded))))
        order = _sorted_mega_batches(padded, order, rows_per_budget * max(1, int(mega_batch)))
    batches: list[np.ndarray] = []
    start, longest, total = 0, 0, 0
    order_lengths = padded[order].tolist()
    for position, length in enumerate(order_lengths):
        rows = position - start
        new_longest, new_total = max(longest, length), total + length
        cost = new_total if packed else new_longest * (rows + 1)
        if rows and (cost > budget or (max_rows is not None and rows >= max_rows)):
            batches.append(order[start:position])
            start, new_longest, new_total = position, length, length
        longest, total = new_longest, new_total
    if start < len(order):
        batches.append(order[start:])
    if rng is not None and batches:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def check_token_budget(name: str, lengths: Sequence[int] | np.ndarray, budget: int, pad_to_multiple_of: int | None = None,
                       packed: bool = False) -> int:
    """Warn (once, one line) when examples of task ``name`` exceed ``budget``; return their count."""
    padded = padded_lengths(lengths, None if packed else pad_to_multiple_of)
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
