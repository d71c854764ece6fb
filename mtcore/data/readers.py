"""Readers for the files users download: JSON Lines, JSON, CSV/TSV, Parquet and CoNLL columns (:mod:`mtcore.data.conll`).

Every reader yields ``(row_number, row)`` where ``row_number`` is what a person sees when they
open the file: the line where the record starts for text formats (1-based, so a CSV header is
line 1 and the first data row line 2), the 1-based record number for JSON and Parquet. Every
problem — an unreadable file, bytes that are not valid text in the encoding, a malformed record —
raises :class:`~mtcore.errors.DataError` with one line naming the file and the row.

Only the standard library and pyarrow (for Parquet) are used; nothing is loaded into memory
whole except plain ``.json`` files, which cannot be streamed.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mtcore.data.answers import is_squad, squad_rows
from mtcore.data.conll import OPTIONS as CONLL_OPTIONS
from mtcore.data.conll import conll_rows
from mtcore.data.formats import FORMATS
from mtcore.data.text_files import _COMPRESSED, READ_ERRORS, _bom_tolerant, _decode_error, _open_binary, text_lines
from mtcore.errors import ConfigError, DataError, did_you_mean
from mtcore.refs import resolve

_EXTENSIONS = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "json", "csv": "csv", "tsv": "tsv", "tab": "tsv",
               "parquet": "parquet", "pq": "parquet", "conll": "conll", "iob": "conll", "iob2": "conll", "bio": "conll"}
_QUOTING = {"minimal": csv.QUOTE_MINIMAL, "none": csv.QUOTE_NONE, "all": csv.QUOTE_ALL}
#: Options each format accepts (``row_filter``, ``row_expand`` and ``encoding`` apply to all).
_OPTIONS = {
    "jsonl": {"encoding"},
    "json": {"encoding", "field"},
    "csv": {"encoding", "sep", "header", "names", "quoting", "multiline"},
    "tsv": {"encoding", "sep", "header", "names", "quoting", "multiline"},
    "parquet": set(),
    "conll": CONLL_OPTIONS,
}

#: Other libraries' names for the same options.
_OPTION_ALIASES = {"separator": "sep", "seperator": "sep", "delimiter": "sep", "delim": "sep", "column_names": "names",
                   "quotechar": "quoting", "filter": "row_filter", "expand": "row_expand", "flatten": "row_expand"}
_ALL_FORMATS = {"row_filter", "row_expand"}

RowFilter = Callable[[Mapping[str, Any]], bool]


def reader_option_names(fmt: str) -> set[str]:
    """The options :func:`iter_rows` takes for files of format ``fmt`` (``row_filter`` / ``row_expand`` included)."""
    return set(_OPTIONS.get(fmt, ())) | _ALL_FORMATS


def format_of(path: str | Path) -> str | None:
    """The format a file name says (``train.csv.gz`` -> ``csv``), or None."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return _EXTENSIONS.get(suffixes[-1].lstrip(".")) if suffixes else None


def detect_format(path: str | Path, format: str = "auto") -> str:
    """The reader format for ``path``: ``format`` itself, or guessed from the extension."""
    if format != "auto":
        if format not in FORMATS:
            raise ConfigError(f"unknown data format {format!r}{did_you_mean(format, FORMATS)}; choose one of: {', '.join(FORMATS)}")
        return format
    suffixes = [s.lstrip(".").lower() for s in Path(path).suffixes if "." + s.lstrip(".").lower() not in _COMPRESSED]
    guess = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if guess is None:
        raise ConfigError(f"{path}: cannot tell the data format from the file name; set format to one of: {', '.join(FORMATS)}")
    return guess


def make_row_filter(spec: Any) -> RowFilter | None:
    """A predicate from a ``row_filter`` option.

    ``{"language": "ru"}`` keeps rows whose field equals the value (a list of values means any of
    them); a callable or a ``"module:func"`` reference is called with the row and returns a bool.
    """
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        wanted = {key: set(value) if isinstance(value, (list, tuple, set)) else {value} for key, value in spec.items()}

        def keep(row: Mapping[str, Any]) -> bool:
            for key, values in wanted.items():
                if key not in row:
                    raise DataError(f"row_filter field {key!r} is not in the row (fields: {', '.join(map(str, row))})")
                if row[key] not in values:
                    return False
            return True

        return keep
    predicate = resolve(spec)
    if not callable(predicate):
        raise ConfigError(f"row_filter must be a mapping {{field: value}} or a 'module:function' predicate, not {spec!r}")
    return predicate


def iter_rows(path: str | Path, format: str = "auto", *, row_filter: Any = None, row_expand: Any = None,
              **options: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, row)`` for every record of one file.

    Options: ``encoding`` (default ``"utf-8-sig"``: a byte-order mark is accepted), for CSV/TSV
    ``sep`` (default ``,`` / tab), ``header`` (``True``: the first row names the columns;
    ``None``/``False``: no header, columns from ``names`` or ``"0"``, ``"1"``, ...), ``names``,
    ``quoting`` (``"minimal"`` default, ``"none"`` keeps stray double quotes as text),
    ``multiline`` (``True``: quoted fields that span lines are expected; by default a quoted field
    whose later lines look like rows of their own — the right number of fields, and a value seen
    before in a column of few values, such as a label — is refused as a stray quote), for JSON
    ``field`` (the key holding the list of records; a SQuAD-layout file, ``{"data": [{"paragraphs":
    [{"context", "qas"}]}]}``, gives one row per question without it: :func:`~mtcore.data.answers.squad_rows`),
    for CoNLL ``sep``, ``columns`` and ``comment`` (one row per sentence: :func:`~mtcore.data.conll.conll_rows`).
    ``row_expand`` (``"module:func"``) turns each record into the rows it holds (nested layouts:
    one row per answer or per query; each keeps its record's row number). ``row_filter`` keeps only
    matching rows, after ``row_expand`` (row numbers stay those of the file). Files ending in ``.gz``, ``.bz2`` or ``.xz`` are decompressed.
    """
    path = Path(path)
    fmt = detect_format(path, format)
    unknown_options = sorted(set(options) - _OPTIONS[fmt])
    if unknown_options:
        name = unknown_options[0]
        allowed = sorted(_OPTIONS[fmt] | _ALL_FORMATS)
        hint = f" (did you mean {_OPTION_ALIASES[name]!r}?)" if name in _OPTION_ALIASES else did_you_mean(name, allowed)
        raise ConfigError(f"{path}: unknown {fmt} reader option {name!r}{hint}; "
                          f"{fmt} files take: {', '.join(allowed)}")
    from mtcore.data.expand import expanded_rows, make_row_expander

    keep = make_row_filter(row_filter)
    expand = make_row_expander(row_expand)
    rows = {"jsonl": _jsonl_rows, "json": _json_rows, "csv": _csv_rows, "tsv": _csv_rows, "parquet": _parquet_rows, "conll": conll_rows}[fmt]
    tsv_default = {"sep": "\t"} if fmt == "tsv" else {}
    for number, row in expanded_rows(path, rows(path, **{**tsv_default, **options}), expand):
        if keep is None:
            yield number, row
            continue
        try:
            kept = keep(row)
        except DataError as exc:
            raise DataError(f"{path} row {number}: {exc}") from None
        if kept:
            yield number, row


# ---- formats -------------------------------------------------------------------------------
def _jsonl_rows(path: Path, encoding: str = "utf-8-sig") -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in text_lines(path, encoding):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} row {number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                            f"JSON Lines files hold one JSON object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{path} row {number}: expected a JSON object, got {type(row).__name__} {_short(row)}")
        yield number, row


def _json_rows(path: Path, encoding: str = "utf-8-sig", field: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    encoding = _bom_tolerant(path, encoding)
    with _open_binary(path) as handle:
        try:
            data = handle.read()
        except READ_ERRORS as exc:
            raise DataError(f"{path}: cannot read the file ({exc})") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, data.count(b"\n", 0, exc.start) + 1, exc, encoding) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ("; the file looks like JSON Lines (one object per line): set format: jsonl or name it .jsonl"
                if exc.msg == "Extra data" and text.lstrip().startswith("{") else "")
        raise DataError(f"{path} row {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}){hint}") from None
    if isinstance(document, dict) and field is None and is_squad(document):  # SQuAD / SberQuAD: one row per question
        try:
            yield from squad_rows(document)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        return
    if isinstance(document, dict):
        lists = [key for key, value in document.items() if isinstance(value, list)]
        if field is None and len(lists) == 1:
            field = lists[0]
        if field is None or field not in document:
            raise DataError(f"{path}: expected a list of JSON objects; set the reader option field= to the key that holds them"
                            + (f" (keys: {', '.join(document)})" if document else ""))
        document = document[field]
    if not isinstance(document, list):
        raise DataError(f"{path}: expected a list of JSON objects, got {type(document).__name__}")
    for number, row in enumerate(document, start=1):
        if not isinstance(row, dict):
            raise DataError(f"{path} row {number}: expected a JSON object, got {type(row).__name__} {_short(row)}")
        yield number, row


def _quoting(value: Any) -> int:
    if isinstance(value, int):
        return value
    key = str(value).lower()
    if key not in _QUOTING:
        raise ConfigError(f"quoting {value!r} is not one of: {', '.join(_QUOTING)}")
    return _QUOTING[key]


def _raise_field_limit() -> None:
    limit = sys.maxsize
    while limit > csv.field_size_limit():
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def _csv_rows(path: Path, encoding: str = "utf-8-sig", sep: str = ",", header: Any = True, names: list[str] | None = None,
              quoting: Any = None, multiline: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    _raise_field_limit()
    if not isinstance(multiline, bool):
        raise ConfigError(f"{path}: reader option multiline must be true or false, not {multiline!r}")
    mode = _quoting(quoting if quoting is not None else "minimal")
    last_line = 0  # the last line the csv reader has consumed

    def lines() -> Iterator[str]:
        nonlocal last_line
        for last_line, line in text_lines(path, encoding):
            yield line

    reader = csv.reader(lines(), delimiter=sep, quoting=mode, **({"escapechar": None} if mode == csv.QUOTE_NONE else {}))
    header_pending = header not in (None, False)
    columns = [str(name) for name in names] if names is not None else None
    seen: list[set[str] | None] = []  # each column's values so far while there are few of them (labels)
    early: list[tuple[int, int, list[str]]] = []  # multi-line rows among the first ones, checked once values are known
    rows = 0
    while True:
        number = last_line + 1
        try:
            record = next(reader)
        except StopIteration:
            for args in early:
                _check_stray_quote(path, *args, columns or [], sep, mode, seen)
            return
        except csv.Error as exc:
            raise DataError(f"{path} row {number}: not valid CSV ({exc}); check the sep= and quoting= reader options") from None
        if not record:
            continue
        if header_pending:  # names= given as well replace the header's names
            header_pending = False
            columns = columns or [column.strip() for column in record]
            continue
        if columns is None:
            columns = [str(i) for i in range(len(record))]
        if len(record) != len(columns):
            quote = (f"; a quote opened in this row runs to line {last_line}: if quotes are plain text in this file set the "
                     "reader option quoting: none" if last_line > number and mode != csv.QUOTE_NONE else "")
            raise DataError(f"{path} row {number}: {len(record)} fields where {len(columns)} columns are expected "
                            f"({', '.join(columns)}); check the sep={sep!r} and quoting= reader options{quote}")
        if last_line > number and not multiline and mode != csv.QUOTE_NONE:
            if rows < _EARLY_ROWS:
                early.append((number, last_line, record))
            else:
                _check_stray_quote(path, number, last_line, record, columns, sep, mode, seen)
        _remember(seen, record)
        rows += 1
        if early and rows >= _EARLY_ROWS:
            for args in early:
                _check_stray_quote(path, *args, columns, sep, mode, seen)
            early.clear()
        yield number, dict(zip(columns, record))


#: A column with more distinct values than this is free text, not a label-like column.
_FEW_VALUES = 50
#: Multi-line rows among the first rows are checked for a stray quote after this many rows (or at
#: the end of the file): a quote in the first row has no earlier rows to say what a label looks like.
_EARLY_ROWS = 20


def _remember(seen: list[set[str] | None], record: list[str]) -> None:
    if not seen:
        seen.extend(set() for _ in record)
    for i, value in enumerate(record):
        values = seen[i]
        if values is not None:
            values.add(value)
            if len(values) > _FEW_VALUES:
                seen[i] = None


def _check_stray_quote(path: Path, number: int, last_line: int, record: list[str], columns: list[str], sep: str, mode: int,
                       seen: list[set[str] | None]) -> None:
    """A quoted field over several lines whose later lines parse as rows of this file (the right
    number of fields, and a known value in a column of few values): a stray quote swallowed them."""
    if len(columns) < 2 or not seen:
        return
    for position, (column, value) in enumerate(zip(columns, record)):
        rows = []
        lines = value.splitlines()
        for number_in_field, line in enumerate(lines if len(lines) > 1 else []):
            fields = next(csv.reader([line], delimiter=sep, quoting=mode), [])
            first = 0 if number_in_field else position + 1  # known values count in the swallowed fields only
            if number_in_field == 0:  # the rest of the row the quote opened in: its own later fields
                fields = record[:position] + fields
            if len(fields) == len(columns) and any(i >= first and i != position and known is not None and fields[i] in known
                                                   and fields[i].strip() for i, known in enumerate(seen)):
                rows.append(line)
        if rows:
            raise DataError(f"{path} row {number}: a quote opens field {column!r} and runs to line {last_line}, taking in "
                            f"{len(rows)} line(s) that look like rows of their own (e.g. {_short(rows[0])}); if quotes are "
                            "plain text in this file set the reader option quoting: none, if fields really span lines set "
                            "multiline: true, else close the quote")


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(f"{path}: cannot read the file (no such file)")
    number = 0
    try:
        for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}{f' row {number + 1}' if number else ''}: not a readable Parquet file ({exc})") from None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
