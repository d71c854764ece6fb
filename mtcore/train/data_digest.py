"""A digest of a prepared split's rows, by their values: what a checkpoint records of each task's training data
(``state.json`` ``task_rows``), so ``--resume`` can tell whether the rows it trains on are those the run started with.

The ``datasets`` fingerprint of a split is a cache key: for files it follows their paths, sizes, times and inodes, so
a ``touch``, a ``chmod`` or the same plugin installed elsewhere changes it while every row stays the same. The digest
here reads the rows themselves (every column, as the run's batches are cut from them: token ids, labels, ...), in
row order after any selection (a holdout), through the Arrow arrays' logical values (a sliced or re-chunked table
gives the same digest). It is computed once per process and split, and costs one pass over the split's columns.
"""

from __future__ import annotations

import hashlib
from typing import Any

#: Rows read at a time.
BATCH = 16_384


def split_digest(split: Any) -> str | None:
    """A hex digest of ``split``'s rows (a ``datasets.Dataset``), or None for a split it cannot read (a stream)."""
    import pyarrow as pa

    try:
        rows = len(split)
        arrow = split.with_format("arrow")
        names = sorted(split.column_names)
    except (TypeError, AttributeError, NotImplementedError):
        return None
    streams: dict[tuple[str, ...], Any] = {}  # one hash per column, nesting level and part: batch boundaries change nothing
    for start in range(0, rows, BATCH):
        table = arrow[start: start + BATCH]
        if not isinstance(table, pa.Table):
            return None
        for name in names:
            _add(table.column(name).combine_chunks(), (name,), streams)
    digest = hashlib.blake2b(repr((rows, names)).encode(), digest_size=16)
    for key in sorted(streams):
        digest.update(repr(key).encode() + streams[key].digest())
    return digest.hexdigest()


def _add(array: Any, key: tuple[str, ...], streams: dict[tuple[str, ...], Any]) -> None:
    """``array``'s logical values into the streams under ``key``: its type, null positions, list lengths (then the
    values inside, one level down), numbers and booleans as their bytes, anything else as its Python values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def stream(part: str) -> Any:
        return streams.setdefault((*key, part), hashlib.blake2b(digest_size=16))

    kind = array.type
    if (*key, "type") not in streams:
        stream("type").update(str(kind).encode())
    stream("nulls").update(array.is_null().to_numpy(zero_copy_only=False).tobytes() if array.null_count else b"\0" * len(array))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        stream("lengths").update(pc.list_value_length(array).fill_null(-1).cast(pa.int64()).to_numpy(zero_copy_only=False).tobytes())
        _add(array.flatten(), (*key, "items"), streams)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        stream("values").update(array.fill_null(False if pa.types.is_boolean(kind) else 0).to_numpy(zero_copy_only=False).tobytes())
    else:  # text ids, nested records: rare and small beside the token columns
        for value in array.to_pylist():
            stream("values").update(repr(value).encode() + b"\0")
