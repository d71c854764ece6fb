"""``mt predict --input FILE`` in chunks: the file is read lazily, :data:`CHUNK_ROWS` rows at a
time, and each chunk's rows, in-memory Dataset, tokens, logits and prediction rows are freed
before the next chunk is read.

:func:`check_rows` reads the file once first, keeping nothing: a malformed row, a row missing a
field the task needs, and rows with and without an id in a file of several chunks are one line
naming the file and row before any prediction (the fields of a task with preprocessing steps or
a ``row_expand``, and the ids of one with preprocessing steps, exist only once a chunk is
prepared: they are checked per chunk). :func:`predict_chunks` then yields each chunk's
prediction rows; mtcore's ``jsonl`` and ``csv`` writers append them to the output as they come
(:mod:`mtcore.predict.writing`), so peak memory does not grow with the file (a tiny model, short
rows, ``benchmarks/predict_memory.py``: peak RSS 572 MB for 200,000 rows and 565 MB for 600,000,
where holding every row and prediction took 762 MB for 200,000). Rows without an id are numbered
across chunks, as one pass would number them, and the rows and words cut by ``max_length`` are one
warning with the file's totals (:class:`CutTotals`). A plugin's writer still receives every prediction
row at once, as its hook promises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from mtcore.errors import DataError

#: Rows predicted at a time.
CHUNK_ROWS = 20_000

Row = tuple[str, int, Any]


def chunked(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """``rows`` as lists of ``size`` (the last one shorter), read lazily."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def check_rows(rows: Iterable[Row], task: Any, *, chunk_rows: int | None = None) -> int:
    """Read ``rows`` once, keeping none, and return how many there are.

    The first row missing a field the task needs is one line (:func:`~mtcore.predict.inputs.check_fields`);
    so are rows with and without an id when they span several chunks (within one chunk the
    prediction itself refuses them, naming the rows).
    """
    from mtcore.predict.inputs import check_fields

    field = task.id_field
    count = 0
    given = missing = None

    def counted() -> Iterator[Row]:
        nonlocal count, given, missing
        for file, number, row in rows:
            count += 1
            if field is not None and row.get(field) is not None:
                given = given or (file, number)
            else:
                missing = missing or (file, number)
            yield file, number, row

    check_fields(counted(), task)
    if count > (chunk_rows or CHUNK_ROWS) and not task.preprocess and given and missing:  # ids from preprocessing: per chunk
        raise DataError(f"{missing[0]} row {missing[1]} has no {task.id_field} while {given[0]} row {given[1]} has one; "
                        "give every row an idx, or none (rows are then numbered from 0)")
    return count


def predict_chunks(model: Any, head_id: str, task: Any, rows: Iterable[Row], *, batch_size: int, origin: str,
                   chunk_rows: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """The prediction rows (``idx``, ``label``, ...) of ``rows`` (``(file, row number, raw row)``), a list per chunk.

    ``rows`` is read lazily; a chunk's rows are flattened by the task's ``row_expand``, if it has
    one, and checked when the chunk is reached (:func:`~mtcore.predict.inputs.rows_dataset`).
    """
    from mtcore.predict.inputs import rows_dataset
    from mtcore.predict.predictor import predict_raw, quiet_datasets

    done = 0  # prediction rows so far: rows without an id are numbered on from there
    cuts = CutTotals()
    for chunk in chunked(rows, chunk_rows or CHUNK_ROWS):
        with quiet_datasets():
            raw = rows_dataset(chunk, task)
        del chunk
        with cuts.counting(raw.num_rows):
            predictions = predict_raw(model, head_id, task, raw, batch_size=batch_size, origin=origin, first_row=done)
        del raw
        out = predictions.rows()
        del predictions
        done += len(out)
        yield out
        del out  # not held while the next chunk is predicted
    cuts.warn()


class CutTotals:
    """The cut-words / cut-contexts warnings of every chunk as one warning with the file's totals (each chunk
    warned with its own counts: fifty lines for a file of a million rows)."""

    _NUMBERS = re.compile(r"(\d+) of (\d+) rows( lose (\d+) word)?")

    def __init__(self) -> None:
        self.last: dict[type, Any] = {}  # category -> (message, [rows cut, words cut])
        self.rows = 0  # every chunk's rows: the "of N rows" of the file

    def counting(self, rows: int) -> Any:
        import contextlib
        import warnings

        from mtcore.data.cut_answers import CutAnswersWarning
        from mtcore.data.tokenize import CutWordsWarning

        @contextlib.contextmanager
        def counted() -> Iterator[None]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
            self.rows += rows
            for item in caught:
                found = self._NUMBERS.search(str(item.message))
                if item.category not in (CutWordsWarning, CutAnswersWarning) or found is None:
                    warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
                    continue
                numbers = [int(found.group(1)), int(found.group(4) or 0)]
                _, totals = self.last.get(item.category, ("", [0, 0]))
                self.last[item.category] = (str(item.message), [a + b for a, b in zip(totals, numbers)])

        return counted()

    def warn(self) -> None:
        import warnings

        for category, (message, (rows, words)) in self.last.items():
            text = self._NUMBERS.sub(lambda m: f"{rows} of {self.rows} rows" + (f" lose {words} word" if m.group(3) else ""), message,
                                     count=1)
            warnings.warn(text, category, stacklevel=2)


def predict_rows(model: Any, head_id: str, task: Any, rows: Sequence[Row], *, batch_size: int, origin: str,
                 chunk_rows: int | None = None) -> list[dict[str, Any]]:
    """Every prediction row of ``rows`` in one list (checked first, predicted chunk by chunk)."""
    check_rows(rows, task, chunk_rows=chunk_rows)
    return [row for chunk in predict_chunks(model, head_id, task, rows, batch_size=batch_size, origin=origin,
                                            chunk_rows=chunk_rows) for row in chunk]
