"""The rows cache is written as Arrow tables of ``CHUNK_ROWS`` rows, not one example at a time:
what it holds, how it is reused and what an interrupted write leaves must not depend on that."""

from __future__ import annotations

import datetime
import errno
import json
import os
import re

import pytest

from mtcore.data import rows as rows_module
from mtcore.data.rows import FILE_COLUMN, MISSING_COLUMN, ROW_COLUMN, dataset_from_rows
from mtcore.errors import DataError

ANSWERS = {"text": ["кот", "спит"], "answer_start": [0, 4]}
#: Mixed ints and floats, nulls, rows lacking fields, nested dicts of lists (SQuAD answers), lists of
#: dicts whose keys differ, bytes, dates, and a loose column whose values disagree (stored as text).
RAW = [
    {"text": "a", "score": 1, "answers": ANSWERS, "tags": ["x"], "spans": [{"start": 1}], "blob": b"\x00\xff",
     "day": datetime.date(2024, 2, 29), "when": datetime.datetime(2024, 1, 1, 12, 30), "extra": 1},
    {"text": "b", "score": 2.5, "answers": {"text": [], "answer_start": []}, "tags": [], "spans": [{"end": "z"}], "extra": "two"},
    {"text": None, "score": None, "answers": None, "tags": [None, "y"], "spans": [], "blob": None, "extra": [1, {"k": "v"}]},
    {"score": 7},  # lacks every other field
    {"text": "e", "answers": {"text": ["x"]}, "tags": ("t", "u"), "extra": {"k": [1]}, "late": True},  # a tuple; answer_start missing
]


COLUMNS = ("text", "score", "answers", "tags", "spans", "blob", "day", "when", "extra", "late")  # in order of first appearance


def _rows(raw=RAW, repeat=3, calls=None, fail_at=None, error=KeyboardInterrupt):
    """A rows factory over ``raw * repeat`` in two files; ``fail_at``: raise ``error`` at that row of the second call (the write)."""
    def rows():
        if calls is not None:
            calls.append(1)
        for index, row in enumerate(raw * repeat):
            if fail_at is not None and calls is not None and len(calls) == 2 and index == fail_at:
                raise error("stopped")
            yield f"f{index % 2}.jsonl", index + 1, row
    return rows


def _load(rows, cache_dir):
    return dataset_from_rows(rows, fingerprint="fp", what="test rows", cache_dir=cache_dir, loose=lambda column: column == "extra")


def _as_text(value):
    """What a loose column whose values disagree stores: text as is, lists and dicts as JSON, the rest through str()."""
    return value if value is None or isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _expected(row, number):
    answers = row.get("answers")
    spans = row.get("spans")
    return {
        "text": row.get("text"), "score": None if row.get("score") is None else float(row["score"]),
        "answers": None if answers is None else {"text": answers["text"], "answer_start": answers.get("answer_start")},
        "tags": None if "tags" not in row else list(row["tags"]),
        "spans": None if spans is None else [{"start": s.get("start"), "end": s.get("end")} for s in spans],
        "blob": row.get("blob"), "day": row.get("day"), "when": row.get("when"),
        "extra": _as_text(row.get("extra")),
        "late": row.get("late"),
        FILE_COLUMN: f"f{(number - 1) % 2}.jsonl", ROW_COLUMN: number,
        MISSING_COLUMN: [column for column in COLUMNS if column not in row],
    }


@pytest.mark.parametrize("chunk", [2, 3, 10_000])
def test_the_cached_rows_are_the_rows_with_their_types_whatever_the_chunk_size(cache_dir, monkeypatch, chunk):
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", chunk)
    data = _load(_rows(), cache_dir)
    assert data.column_names == [*COLUMNS, FILE_COLUMN, ROW_COLUMN, MISSING_COLUMN]
    types = {field.name: str(field.type) for field in data.data.table.schema}
    assert types == {"text": "string", "score": "double", "answers": "struct<text: list<item: string>, answer_start: list<item: int64>>",
                     "tags": "list<item: string>", "spans": "list<item: struct<start: int64, end: string>>", "blob": "binary",
                     "day": "date32[day]", "when": "timestamp[us]", "extra": "string", "late": "bool", FILE_COLUMN: "string",
                     ROW_COLUMN: "int64", MISSING_COLUMN: "list<item: string>"}
    assert data.data.table.to_pylist() == [_expected(row, number) for number, row in enumerate(RAW * 3, 1)]
    assert data.info.splits["train"].num_examples == len(RAW) * 3


def test_the_tables_equal_what_datasets_own_per_example_encoding_makes(cache_dir, monkeypatch):
    """The same Arrow table (types, nulls, nested values) as ``Dataset.from_list`` of the same rows under the same features."""
    from datasets import Dataset

    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 4)
    data = _load(_rows(), cache_dir)
    kinds, _ = rows_module.scan_kinds(_rows(), what="x", loose=lambda column: column == "extra")
    reference = Dataset.from_list(list(rows_module._generate(_rows(), kinds)), features=data.features)
    assert data.data.table.schema.remove_metadata().equals(reference.data.table.schema.remove_metadata())
    assert data.data.table.equals(reference.data.table)


def test_more_rows_than_a_chunk_keep_their_order(cache_dir, monkeypatch):
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 7)
    raw = [{"n": i, "half": None if i % 2 else f"r{i}"} for i in range(50)]
    data = _load(_rows(raw, repeat=1), cache_dir)
    assert list(data["n"]) == list(range(50)) and list(data[ROW_COLUMN]) == list(range(1, 51))
    assert list(data["half"]) == [None if i % 2 else f"r{i}" for i in range(50)]


def test_a_second_load_reads_the_cache_not_the_rows(cache_dir, monkeypatch):
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 2)
    calls: list[int] = []
    first = _load(_rows(calls=calls), cache_dir)
    assert len(calls) == 2  # the type scan, then the write

    def unread():
        raise AssertionError("a cache hit read the rows")
        yield

    second = _load(_rows(calls=calls), cache_dir)
    assert len(calls) == 2
    assert second.cache_files == first.cache_files and second._fingerprint == first._fingerprint
    assert second.data.table.equals(first.data.table)
    assert first.cache_files[0]["filename"].endswith(os.path.join("generator", "default-fingerprint=" + first._fingerprint, "0.0.0",
                                                                  "generator-train.arrow"))
    # the code of ``rows`` is part of the key: another factory is not served these rows
    with pytest.raises(AssertionError, match="a cache hit read the rows"):
        _load(unread, cache_dir)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_a_write_stopped_half_way_leaves_no_cache_for_the_next_run(cache_dir, monkeypatch, error):
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 2)
    calls: list[int] = []
    with pytest.raises((error, Exception)) as raised:
        _load(_rows(calls=calls, fail_at=7, error=error), cache_dir)
    assert "stopped" in repr(raised.value) + repr(raised.value.__cause__)
    leftovers = [os.path.join(folder, name) for folder, names, files in os.walk(cache_dir) for name in names + files]
    assert not any(name.endswith((".incomplete", ".arrow", "dataset_info.json")) for name in leftovers), leftovers
    calls.clear()
    data = _load(_rows(calls=calls), cache_dir)
    assert len(calls) == 2 and len(data) == len(RAW) * 3


def test_a_damaged_rows_file_is_written_again(cache_dir, monkeypatch):
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 2)
    raw = [{"n": i, "text": "слово " * 20} for i in range(300)]
    expected = _load(_rows(raw, repeat=1), cache_dir).data.table.to_pylist()  # not the memory-mapped file truncated below
    path = [os.path.join(folder, name) for folder, _, files in os.walk(cache_dir) for name in files if name.endswith(".arrow")][0]
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    calls: list[int] = []
    assert _load(_rows(raw, repeat=1, calls=calls), cache_dir).data.table.to_pylist() == expected and len(calls) == 2


def test_a_type_conflict_past_the_first_chunk_names_its_file_and_row(cache_dir, monkeypatch):
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 2)
    raw = [{"label": True}] * 5 + [{"label": "maybe"}]
    with pytest.raises(DataError) as raised:
        _load(_rows(raw, repeat=1), cache_dir)
    assert str(raised.value) == ("f1.jsonl row 6: field 'label' holds 'maybe' (text) but row 1 holds True (bool); "
                                 "a field must hold one type in every row")
    assert not [name for _, _, files in os.walk(cache_dir) for name in files if name.endswith(".arrow")]


def test_a_full_disk_while_writing_a_table_is_one_line_naming_the_cache(cache_dir, monkeypatch):
    from datasets.arrow_writer import ArrowWriter

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(ArrowWriter, "_write_table", full)
    with pytest.raises(DataError, match=rf"^the data cache {re.escape(str(cache_dir))} cannot be written: No space left on device; make it"):
        _load(_rows(), cache_dir)
