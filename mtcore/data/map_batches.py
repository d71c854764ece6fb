"""How many rows one batch of a ``Dataset.map`` over texts takes: fewer when the texts are long.

A fast tokenizer encodes each whole text before truncating it to ``max_length``, so a batch of datasets' default
1,000 rows of 100,000-character documents held ~17 GB while tokenizing (a scale audit: 300 such rows took
``mt train`` to 5.9 GB). The batch is sized from the mean length of the rows' text to hold about
:data:`BATCH_CHARACTERS` characters; rows of ordinary length keep batches of 1,000.
"""

from __future__ import annotations

from typing import Any

#: The characters of text one map batch holds, about (with a character-level vocabulary ~170 bytes each while encoded).
BATCH_CHARACTERS = 2_000_000
#: datasets' default batch, kept for rows of ordinary length.
MOST_ROWS = 1000


def text_batch_size(dataset: Any) -> int:
    """Rows per map batch for ``dataset``: :data:`MOST_ROWS`, or fewer (at least 1) so a batch of rows of the mean text
    length holds about :data:`BATCH_CHARACTERS` characters of its text columns (strings and lists of strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = max(dataset.data.num_rows, 1)
    characters = 0
    for name in dataset.column_names:
        column = dataset.data.column(name)
        kind = column.type
        while pa.types.is_list(kind) or pa.types.is_large_list(kind):  # choices, tokens: their strings
            column, kind = pc.list_flatten(column), kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            characters += int(pc.sum(pc.utf8_length(column)).as_py() or 0)
    return max(1, min(MOST_ROWS, BATCH_CHARACTERS * rows // max(characters, 1)))
