"""Raw rows -> a cached, memory-mapped ``datasets.Dataset``.

Rows read from files are plain dicts whose fields may be missing in some rows (RCB's
``negation``), null in the first thousand rows, or ints in one row and floats in another. Arrow
needs one type per column, so :func:`dataset_from_rows` first scans the rows to settle each
column's type (reporting a real conflict — ``true`` in one row, ``"maybe"`` in another — as one
line naming the file and the row), then writes them under a fingerprint, :data:`CHUNK_ROWS` rows
to an Arrow table (a ``datasets`` builder like ``Dataset.from_generator``'s, without its
per-example encoding, which took ten times as long): the Arrow file lives on disk, is
memory-mapped, and a second load with the same fingerprint reads it back without touching the
source files.

Every row keeps where it came from in two extra columns, :data:`FILE_COLUMN` and
:data:`ROW_COLUMN`, so later validation can name the file and row of a bad value, and which of the
columns it lacked in :data:`MISSING_COLUMN` (Arrow stores an absent field as null: validation
must still tell a row without a ``label`` key from one whose label is an explicit null).
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mtcore.errors import DataError

FILE_COLUMN = "_mt_file"
ROW_COLUMN = "_mt_row"
MISSING_COLUMN = "_mt_missing"
#: The fields a task does not read, as one JSON text, when a file has more than :data:`MAX_LOOSE_COLUMNS` of them.
OTHER_COLUMN = "_mt_other"
#: Columns mtcore adds to every row read from files (not the data's own fields).
META_COLUMNS = (FILE_COLUMN, ROW_COLUMN, MISSING_COLUMN, OTHER_COLUMN)
#: A file whose rows hold more distinct fields the task does not read (a key per row: ids as keys) keeps them as
#: one JSON text column, and a field the task does not read whose objects hold more keys is kept as JSON text:
#: a column (or struct field) per key, null in every other row, made reading quadratic in time, memory and disk
#: (an 879 KB file: 5.5 GB and a 1.35 GB cache).
MAX_LOOSE_COLUMNS = MAX_STRUCT_FIELDS = 100
#: Bump when :func:`dataset_from_rows` changes what it writes: old caches are then not reused.
ROWS_VERSION = 2
#: Rows converted to one Arrow table at a time when writing the cache: a multiple of the writer's
#: batch size (1000 rows, 100 with a binary column), so the file's record batches are unchanged.
CHUNK_ROWS = 10_000

#: Rows with their origin: ``(file, row_number, row)``.
RowsFactory = Callable[[], Iterable[tuple[str, int, Mapping[str, Any]]]]

_SCALARS = {bool: "bool", int: "int", float: "float", str: "str", bytes: "bytes",
            datetime.datetime: "timestamp", datetime.date: "date"}
_TYPE_WORDS = {"bool": "bool", "int": "integer", "float": "number", "str": "text", "bytes": "bytes",
               "timestamp": "timestamp", "date": "date", "list": "list", "dict": "object"}


class NoRows(DataError):
    """The rows factory yielded nothing (an empty file, or a row filter that matched nothing)."""


class TypeConflict(Exception):
    """Two values of one column that cannot share an Arrow type."""


#: The kind of a column the task does not read whose values disagree: stored as text.
ANY_TEXT = "any-text"
_INT64 = (-(2**63), 2**63 - 1)


def value_kind(value: Any) -> Any:
    """The type of ``value`` as a small tree: ``"int"``, ``("list", "str")``, ``("dict", {...})``."""
    if value is None:
        return "null"
    if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
        raise TypeConflict("an integer too large for 64 bits")
    kind = _SCALARS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, (list, tuple)):
        element: Any = "null"
        for item in value:
            element = merge_kinds(element, value_kind(item))
        return ("list", element)
    if isinstance(value, Mapping):
        return ("dict", {str(k): value_kind(v) for k, v in value.items()})
    raise TypeConflict(f"values of type {type(value).__name__} cannot be stored")


def merge_kinds(a: Any, b: Any) -> Any:
    """The kind that holds both ``a`` and ``b`` (ints widen to floats, missing dict keys are null)."""
    if ANY_TEXT in (a, b):
        return ANY_TEXT
    if a == "null" or a == b:
        return b
    if b == "null":
        return a
    if isinstance(a, str) and isinstance(b, str) and {a, b} == {"int", "float"}:
        return "float"
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0]:
        if a[0] == "list":
            return ("list", merge_kinds(a[1], b[1]))
        keys = list(a[1]) + [k for k in b[1] if k not in a[1]]
        return ("dict", {k: merge_kinds(a[1].get(k, "null"), b[1].get(k, "null")) for k in keys})
    raise TypeConflict(f"{_word(a)} and {_word(b)}")


def _word(kind: Any) -> str:
    return _TYPE_WORDS.get(kind[0] if isinstance(kind, tuple) else kind, str(kind))


def kind_feature(kind: Any) -> Any:
    """The ``datasets`` feature storing values of ``kind`` (an all-null column is stored as text)."""
    from datasets import List, Value

    if isinstance(kind, tuple):
        if kind[0] == "list":
            return List(kind_feature(kind[1]))
        return {key: kind_feature(sub) for key, sub in kind[1].items()}
    dtype = {"null": "string", ANY_TEXT: "string", "bool": "bool", "int": "int64", "float": "float64", "str": "string",
             "bytes": "binary", "timestamp": "timestamp[us]", "date": "date32"}[kind]
    return Value(dtype)


def conform(value: Any, kind: Any) -> Any:
    """``value`` shaped to ``kind``: ints as floats in float columns, missing dict keys as None."""
    if value is None:
        return None
    if kind == "float":
        return float(value)
    if kind == ANY_TEXT:
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (list, dict)) else str(value)
    if isinstance(kind, tuple):
        if kind[0] == "list":
            return [conform(item, kind[1]) for item in value]
        return {key: conform(value.get(key), sub) for key, sub in kind[1].items()}
    return value


def _needs_conform(kind: Any) -> bool:
    return kind in ("float", ANY_TEXT) or isinstance(kind, tuple)


def scan_kinds(rows: RowsFactory, *, what: str, describe_conflict: Callable[[str, Any], str | None] | None = None,
               loose: Callable[[str], bool] | None = None) -> tuple[dict[str, Any], int]:
    """One pass over the rows: ``({column: kind}, row_count)``; a conflict raises a DataError, no rows :class:`NoRows`.

    ``loose(column)``: True for a column nobody reads as a typed value (a field the task does not
    use); a conflict there stores the column as text instead of stopping.
    """
    kinds: dict[str, Any] = {}
    first_seen: dict[str, tuple[int, Any]] = {}
    count = 0
    for file, number, row in rows():
        count += 1
        for column, value in row.items():
            try:
                kind = value_kind(value)
                if column in kinds:
                    kinds[column] = merge_kinds(kinds[column], kind)
                else:
                    kinds[column] = kind
                if loose is not None and _width(kinds[column]) > MAX_STRUCT_FIELDS and loose(column):
                    kinds[column] = ANY_TEXT
                if value is not None and column not in first_seen:
                    first_seen[column] = (number, value)
            except TypeConflict as exc:
                if loose is not None and loose(column):
                    kinds[column] = ANY_TEXT
                    continue
                message = describe_conflict(column, value) if describe_conflict else None
                if message is None and "too large" in str(exc):
                    message = f"field {column!r} holds {_short(value)}, {exc}; quote it in the file to read it as text"
                if message is None and column not in first_seen:
                    message = f"field {column!r} holds {_short(value)} ({type(value).__name__}), which cannot be stored"
                if message is None:
                    seen_row, seen_value = first_seen[column]
                    message = (f"field {column!r} holds {_short(value)} ({_word(value_kind_or_none(value))}) but row "
                               f"{seen_row} holds {_short(seen_value)} ({_word(value_kind_or_none(seen_value))}); "
                               f"a field must hold one type in every row")
                raise DataError(f"{file} row {number}: {message}") from None
    if count == 0:
        raise NoRows(f"{what}: no rows")
    return kinds, count


def _width(kind: Any) -> int:
    """The keys of the objects in ``kind``, at every depth."""
    if not isinstance(kind, tuple):
        return 0
    if kind[0] == "list":
        return _width(kind[1])
    return len(kind[1]) + sum(_width(sub) for sub in kind[1].values())


def value_kind_or_none(value: Any) -> Any:
    try:
        return value_kind(value)
    except TypeConflict:
        return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.cache
def _builder_class() -> type:
    """A ``datasets`` builder writing the rows as Arrow tables: the ``Generator`` of ``Dataset.from_generator``
    (same config, same cache folder ``generator/default-fingerprint=.../``, same ``.incomplete`` folder
    renamed only once finished), but an ``ArrowBasedBuilder``, fed by :func:`_tables`."""
    import datasets
    from datasets.packaged_modules.generator.generator import GeneratorConfig

    try:
        from datasets.builder import Key  # datasets >= 5: tables are keyed (shard, index)

        def key(index: int) -> Any:
            return Key(0, index)
    except ImportError:  # older datasets: any key
        def key(index: int) -> Any:
            return index

    class RowsBuilder(datasets.ArrowBasedBuilder):
        BUILDER_CONFIG_CLASS = GeneratorConfig

        def _info(self):
            return datasets.DatasetInfo(features=self.config.features)

        def _split_generators(self, dl_manager):
            return [datasets.SplitGenerator(name=self.config.split, gen_kwargs=self.config.gen_kwargs)]

        def _generate_tables(self, rows, kinds):
            for index, table in enumerate(_tables(rows, kinds, self.config.features.arrow_schema)):
                yield key(index), table

    return RowsBuilder


def _builder(cache_dir: str | None, fingerprint: str, rows: RowsFactory, kinds: dict[str, Any], features: Any = None):
    # ``generator`` is unused (GeneratorConfig requires one); dataset_name keeps from_generator's folder and file names
    return _builder_class()(cache_dir=cache_dir, dataset_name="generator", features=features, generator=_generate,
                            gen_kwargs={"rows": rows, "kinds": kinds}, config_id="default-fingerprint=" + fingerprint)


def _cached_folder(cache_dir: str | None, fingerprint: str) -> str | None:
    """The cache folder of the rows under ``fingerprint`` when it holds a finished dataset, else None."""
    builder = _builder(cache_dir, fingerprint, list, {})
    return builder.cache_dir if os.path.exists(os.path.join(builder.cache_dir, "dataset_info.json")) else None


def _read(rows: RowsFactory, kinds: dict[str, Any], cache_dir: str | None, fingerprint: str, features: Any = None):
    """The dataset under ``fingerprint``: read back from the cache, else written from ``rows()`` (a cache hit reads no rows)."""
    builder = _builder(cache_dir, fingerprint, rows, kinds, features)
    builder.download_and_prepare()
    dataset = builder.as_dataset(split=builder.config.split)
    dataset._fingerprint = fingerprint
    return dataset


def _generate(rows: RowsFactory, kinds: dict[str, Any]):
    other = kinds.get(OTHER_COLUMN) or frozenset()  # the folded fields' names (:func:`_fold`)
    conformed = {column: kind for column, kind in kinds.items() if _needs_conform(kind) and column not in META_COLUMNS}
    fields = [column for column in kinds if column not in META_COLUMNS]
    for file, number, row in rows():
        out = {column: row.get(column) for column in fields}
        for column, kind in conformed.items():
            out[column] = conform(out[column], kind)
        out[FILE_COLUMN] = file
        out[ROW_COLUMN] = number
        out[MISSING_COLUMN] = [column for column in fields if column not in row]
        if other:
            folded = {column: value for column, value in row.items() if column in other}
            out[OTHER_COLUMN] = json.dumps(folded, ensure_ascii=False, default=str) if folded else None
        yield out


def _fold(kinds: dict[str, Any], loose: Callable[[str], bool] | None) -> dict[str, Any]:
    """``kinds`` with more than :data:`MAX_LOOSE_COLUMNS` fields nobody reads replaced by :data:`OTHER_COLUMN`
    (its value: their names), stored as one JSON text per row."""
    unread = [column for column in kinds if column not in META_COLUMNS and loose is not None and loose(column)]
    if len(unread) <= MAX_LOOSE_COLUMNS:
        return kinds
    kept = {column: kind for column, kind in kinds.items() if column not in unread}
    kept[OTHER_COLUMN] = frozenset(unread)
    return kept


def _tables(rows: RowsFactory, kinds: dict[str, Any], schema: Any):
    """The rows of :func:`_generate` as Arrow tables of :data:`CHUNK_ROWS` rows (the last one shorter)."""
    import pyarrow as pa

    chunk: list[dict[str, Any]] = []
    for out in _generate(rows, kinds):
        chunk.append(out)
        if len(chunk) >= CHUNK_ROWS:
            yield pa.Table.from_pylist(chunk, schema=schema)
            chunk = []
    if chunk:
        yield pa.Table.from_pylist(chunk, schema=schema)


def dataset_from_rows(rows: RowsFactory, *, fingerprint: str, what: str, cache_dir: str | Path | None = None,
                      describe_conflict: Callable[[str, Any], str | None] | None = None,
                      loose: Callable[[str], bool] | None = None):
    """A cached ``datasets.Dataset`` of the rows ``rows()`` yields as ``(file, row_number, row)``.

    ``fingerprint`` must change whenever what ``rows()`` yields would (see
    :func:`mtcore.data.files.files_fingerprint`); the cache key adds ``loose`` to it, by its code
    and what it closes over (:func:`mtcore.data.cache.stable_key`), since a column it loosens is
    stored as text: rows cached for a task that did not read a field are not served to one that
    does. It also adds the code of ``rows`` (and of the functions it closes over, with their
    modules' sources: :func:`mtcore.data.cache.code_key`) and mtcore's own pipeline code, so a
    loader's row conversion edited without a version bump is not served from the cache. With the
    key already on disk the rows are not read at all. ``rows`` is called twice on a
    cache miss (a type scan, then the write), so pass a function, not a generator. ``what`` names
    the data in errors; no rows at all raise :class:`NoRows`.
    ``describe_conflict(column, value)`` may phrase a type conflict better (a bad label; it only
    words errors, so it is not part of the key);
    ``loose(column)`` names columns stored as text when their values disagree (see :func:`scan_kinds`).
    """
    from mtcore.data.cache import cache_write_errors, code_key, pipeline_key
    from mtcore.data.cache import fingerprint as fingerprint_of

    fingerprint = fingerprint_of("mtcore-rows", ROWS_VERSION, fingerprint, loose, code_key(rows), pipeline_key())
    with cache_write_errors(cache_dir):
        return _cached_rows(rows, fingerprint, what, cache_dir, describe_conflict, loose)


def rows_in_memory(rows: list[tuple[str, int, Mapping[str, Any]]], *, what: str, loose: Callable[[str], bool] | None = None):
    """An in-memory ``datasets.Dataset`` of ``rows``, read as :func:`dataset_from_rows` reads them (types settled over
    all rows, origin and missing-field columns, fields nobody reads kept loosely), without a cache."""
    from datasets import Dataset

    kinds = _fold(scan_kinds(lambda: rows, what=what, loose=loose)[0], loose)
    return Dataset.from_list(list(_generate(lambda: rows, kinds)), features=_features(kinds))


def _features(kinds: dict[str, Any]) -> Any:
    from datasets import Features, List, Value

    features = Features({column: kind_feature(kind) for column, kind in kinds.items() if column not in META_COLUMNS})
    features[FILE_COLUMN] = Value("string")
    features[ROW_COLUMN] = Value("int64")
    features[MISSING_COLUMN] = List(Value("string"))  # lacking is not null
    if OTHER_COLUMN in kinds:
        features[OTHER_COLUMN] = Value("string")
    return features


def _cached_rows(rows: RowsFactory, fingerprint: str, what: str, cache_dir: str | Path | None,
                 describe_conflict: Callable[[str, Any], str | None] | None, loose: Callable[[str], bool] | None):
    cache = str(cache_dir) if cache_dir is not None else None
    cached = _cached_folder(cache, fingerprint)
    if cached is not None:
        from mtcore.data.cache import damaged_cache_errors

        try:
            dataset = _read(rows, {}, cache, fingerprint)
            recorded = dataset.info.splits["train"].num_examples if dataset.info.splits and "train" in dataset.info.splits else None
            if recorded is None or recorded == len(dataset):
                return dataset
        except damaged_cache_errors():
            pass
        shutil.rmtree(cached, ignore_errors=True)  # a damaged cache entry (fewer rows than written, or unreadable): read the files again
    kinds = _fold(scan_kinds(rows, what=what, describe_conflict=describe_conflict, loose=loose)[0], loose)
    dataset = _read(rows, kinds, cache, fingerprint, _features(kinds))
    from mtcore.data.cache_entries import note_source

    note_source(dataset, what)  # what `mt cache` lists for the entry
    return dataset
