"""``mt predict --input FILE`` in chunks: the file is read lazily, a chunk of rows at a time, and
each chunk's rows, in-memory Dataset, tokens, logits and prediction rows are freed before the next
chunk is read.

A chunk holds at most :data:`CHUNK_ROWS` rows and :data:`CHUNK_UNITS` units of work
(:func:`row_units`: a row's words, and the values predicted for it), so what a chunk holds in
memory is bounded for every kind of task: 20,000 rows of 2-30 words for a classification task,
about 1,300 sentences of 2-60 words for a token task with nine tags (a probability per tag per
word), about 2,200 questions on contexts of 40-300 words for extractive QA. With rows alone,
20,000 such sentences peaked at 1.37 GB, now 0.56 GB as classification (0.55); QA went from 1.31
to 0.97 GB, the rest of its peak not being the chunk's (``benchmarks/predict_memory.py``,
``docs/benchmarks.md``).

:func:`check_rows` reads the file once first, keeping nothing: a malformed row, a row missing a
field the task needs, an id an earlier row already has (anywhere in the file: a set of the ids
seen), and rows with and without an id in a file of several chunks are one line naming the file
and rows before any prediction (the fields of a task with preprocessing steps or a
``row_expand``, and the ids of one with preprocessing steps, exist only once a chunk is
prepared: they are checked per chunk; an id a raw row gives is checked for repeats anyway). :func:`predict_chunks` then yields each chunk's
prediction rows; mtcore's ``jsonl`` and ``csv`` writers append them to the output as they come
(:mod:`mtcore.predict.writing`), so peak memory does not grow with the file (a tiny model, short
rows, ``benchmarks/predict_memory.py``: peak RSS 572 MB for 200,000 rows and 565 MB for 600,000,
where holding every row and prediction took 762 MB for 200,000). Rows without an id are numbered
across chunks, as one pass would number them (:class:`Tally` counts them), and the rows and words
cut by ``max_length`` are one warning with the file's totals (:class:`CutTotals`). A plugin's
writer still receives every prediction row at once, as its hook promises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mtcore.errors import DataError

#: Rows predicted at a time, at most.
CHUNK_ROWS = 20_000
#: Units of work (:func:`row_units`) predicted at a time, at most: 20,000 rows of 16 words and two classes.
CHUNK_UNITS = 400_000

Row = tuple[str, int, Any]


def _words(value: Any) -> int:
    """The words of a raw field: a string's (split on whitespace), a list's items' (a token list: one per token)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, Mapping):
        return sum(_words(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_words(item) for item in value)
    return 0


def row_units(row: Mapping[str, Any], task: Any) -> int:
    """The work a raw row makes, roughly proportional to the memory its prediction holds: its words
    (text, tokens, a QA context: tokenized, windowed, predicted; not its label's, dropped), the values
    predicted for it (a probability per class; per class and word for token classification, whose
    rows hold a list per word), and 2 for the row itself."""
    return Budget(task).units(row)


class Budget:
    """Where chunks end: a chunk takes rows until the next would pass ``rows`` rows or ``units`` units of
    work (:func:`row_units`); a row over the units alone is a chunk of its own."""

    def __init__(self, task: Any, rows: int | None = None, units: int | None = None) -> None:
        from mtcore.predict.inputs import label_field
        from mtcore.task import TaskKind

        self.max_rows = rows or CHUNK_ROWS
        self.max_units = units or CHUNK_UNITS
        self._label = label_field(task)
        self._values = max(len(getattr(task, "labels", ()) or ()), 1)
        self._per_word = getattr(task, "kind", None) is TaskKind.TOKEN_CLASSIFICATION
        self.rows = self.units_taken = 0
        self.chunks = 0  # chunks begun so far

    def units(self, row: Mapping[str, Any]) -> int:
        """:func:`row_units` of ``row``."""
        words = sum(_words(value) for key, value in row.items() if key != self._label)
        return 2 + words + self._values * (max(words, 1) if self._per_word else 1)

    def starts_chunk(self, row: Mapping[str, Any]) -> bool:
        """Count ``row`` in; whether it begins a new chunk."""
        units = self.units(row)
        new = self.chunks == 0 or self.rows + 1 > self.max_rows or self.units_taken + units > self.max_units
        if new:
            self.chunks += 1
            self.rows = self.units_taken = 0
        self.rows += 1
        self.units_taken += units
        return new

    def full(self) -> bool:
        """Whether the chunk can take no more rows (known without reading the next one)."""
        return self.rows >= self.max_rows or self.units_taken >= self.max_units


def chunked(rows: Iterable[Row], budget: Budget) -> Iterator[list[Row]]:
    """``rows`` as lists that fit ``budget``, read lazily."""
    chunk: list[Row] = []
    for item in rows:
        if budget.starts_chunk(item[2]) and chunk:
            yield chunk
            chunk = []
        chunk.append(item)
        if budget.full():  # no row read ahead
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class Tally:
    """What :func:`predict_chunks` predicted: prediction rows, and how many of them were numbered (no id given)."""

    rows: int = 0
    numbered: int = 0


def check_rows(rows: Iterable[Row], task: Any, *, chunk_rows: int | None = None, chunk_units: int | None = None) -> int:
    """Read ``rows`` once, keeping none, and return how many there are.

    The first row missing a field the task needs is one line (:func:`~mtcore.predict.inputs.check_fields`);
    so is a row whose id an earlier row has (anywhere in the file), and rows with and without an id
    when they span several chunks (within one chunk the prediction itself refuses them, naming the rows).
    """
    from mtcore.predict.inputs import check_fields

    field = task.id_field
    count = 0
    given = missing = None
    budget = Budget(task, chunk_rows, chunk_units)
    seen: dict[str, tuple[str, int]] = {}  # each id (as JSON text) and where it first was: one key per row, across chunks

    def counted() -> Iterator[Row]:
        nonlocal count, given, missing
        for file, number, row in rows:
            count += 1
            budget.starts_chunk(row)
            if field is not None and row.get(field) is not None:
                given = given or (file, number)
                first = seen.setdefault(_id_key(row[field]), (file, number))
                if first != (file, number):
                    raise DataError(f"{file} row {number} has {field} {_id_text(row[field])}, as {first[0]} row {first[1]} has; "
                                    f"give every row its own {field} (predictions are joined back to rows by it)")
            else:
                missing = missing or (file, number)
            yield file, number, row

    check_fields(counted(), task)
    if budget.chunks > 1 and given and missing:  # (a task with preprocessing too: PARus's rows keep their raw idx)
        raise DataError(f"{missing[0]} row {missing[1]} has no {task.id_field} while {given[0]} row {given[1]} has one; "
                        "give every row an idx, or none (rows are then numbered from 0)")
    return count


def warn_repeated_ids(ids: Iterable[Any], origin: str) -> None:
    """One warning when the ``idx`` of a split's prediction rows repeat (a split's data is the dataset's, so not refused
    as an ``--input`` file's repeats are): a submission or a join by id would keep one prediction of each."""
    import warnings

    seen: set[str] = set()
    repeated, first = 0, None
    for idx in ids:
        key = _id_key(idx)
        if key in seen:
            repeated += 1
            first = idx if first is None else first
        seen.add(key)
    if repeated:
        warnings.warn(f"{origin}: {repeated} prediction row{'s' if repeated > 1 else ''} repeat an idx an earlier row has (the "
                      f"first: {_id_text(first)}); a submission or a join by idx keeps one prediction of each", UserWarning, stacklevel=2)


def _id_key(value: Any) -> str:
    """An id as a set key: ``1`` and ``"1"`` differ, as in the file (numpy values as plain ones)."""
    import json

    value = value.tolist() if hasattr(value, "tolist") else value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _id_text(value: Any) -> str:
    text = _id_key(value)
    return text if len(text) <= 60 else text[:57] + "..."


def predict_chunks(model: Any, head_id: str, task: Any, rows: Iterable[Row], *, batch_size: int, origin: str,
                   chunk_rows: int | None = None, chunk_units: int | None = None, tally: Tally | None = None, n_best: int = 0
                   ) -> Iterator[list[dict[str, Any]]]:
    """The prediction rows (``idx``, ``label``, ...) of ``rows`` (``(file, row number, raw row)``), a list per chunk.

    ``rows`` is read lazily; a chunk's rows are flattened by the task's ``row_expand``, if it has
    one, and checked when the chunk is reached (:func:`~mtcore.predict.inputs.rows_dataset`).
    ``tally``, if given, counts the prediction rows and those numbered for want of an id.
    """
    from mtcore.predict.heap import fix_mmap_threshold
    from mtcore.predict.inputs import rows_dataset
    from mtcore.predict.predictor import predict_raw, quiet_datasets

    fix_mmap_threshold()  # else glibc's heap grows chunk after chunk (QA windows: mtcore.predict.heap)
    tally = tally if tally is not None else Tally()
    done = 0  # prediction rows so far: rows without an id are numbered on from there
    cuts = CutTotals()
    for chunk in chunked(rows, Budget(task, chunk_rows, chunk_units)):
        with quiet_datasets():
            raw = rows_dataset(chunk, task)
        del chunk
        with cuts.counting(raw.num_rows):
            predictions = predict_raw(model, head_id, task, raw, batch_size=batch_size, origin=origin, first_row=done, n_best=n_best)
        del raw
        out = predictions.rows()
        tally.numbered += len(out) if predictions.numbered else 0
        del predictions
        done += len(out)
        tally.rows = done
        yield out
        del out  # not held while the next chunk is predicted
    cuts.warn()


def predict_split_chunks(model: Any, head_id: str, task: Any, raw: Any, *, batch_size: int, origin: str, n_best: int = 0,
                         row_numbers: Sequence[int] | None = None, ids: list[Any] | None = None) -> Iterator[list[dict[str, Any]]]:
    """The prediction rows of a split's raw ``Dataset``, a list per chunk of rows that fits a :class:`Budget`, as
    :func:`predict_chunks` yields a file's (``mt predict --split``: a 10,000-label model's rows held a split's
    probabilities at once). ``row_numbers``: a holdout's rows' places in the train rows; ``ids``, if given, gets every
    row's ``idx`` (to warn about repeats once the rows are written)."""
    from mtcore.predict.heap import fix_mmap_threshold
    from mtcore.predict.predictor import predict_raw

    fix_mmap_threshold()
    budget, starts = Budget(task), []
    for number, row in enumerate(raw):
        if budget.starts_chunk(row):
            starts.append(number)
    cuts = CutTotals()
    for first, end in zip(starts, [*starts[1:], raw.num_rows]):
        part = raw.select(range(first, end)) if (first, end) != (0, raw.num_rows) else raw
        with cuts.counting(part.num_rows):
            predictions = predict_raw(model, head_id, task, part, batch_size=batch_size, origin=origin, first_row=first, n_best=n_best,
                                      row_numbers=row_numbers[first:end] if row_numbers is not None else None)
        del part
        out = predictions.rows()
        del predictions
        if ids is not None:
            ids.extend(row.get("idx") for row in out)
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
                 chunk_rows: int | None = None, chunk_units: int | None = None) -> list[dict[str, Any]]:
    """Every prediction row of ``rows`` in one list (checked first, predicted chunk by chunk)."""
    check_rows(rows, task, chunk_rows=chunk_rows, chunk_units=chunk_units)
    return [row for chunk in predict_chunks(model, head_id, task, rows, batch_size=batch_size, origin=origin,
                                            chunk_rows=chunk_rows, chunk_units=chunk_units) for row in chunk]
