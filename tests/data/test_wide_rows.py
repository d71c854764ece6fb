"""Rows whose fields the task does not read vary from row to row (a key per row; an object keyed by ids): they are
kept as JSON text, not as a column or struct field per key, null in every other row (a scale audit: an 879 KB
file took 47 s, 5.5 GB and a 1.35 GB cache)."""

from __future__ import annotations

import json

import pytest

from mtcore.data.prepare import prepare_split
from mtcore.data.rows import MAX_LOOSE_COLUMNS, MAX_STRUCT_FIELDS, OTHER_COLUMN
from mtcore.data.task_data import load_raw
from mtcore.errors import DataError
from mtcore.task import Source, Task

ROWS = 3 * MAX_LOOSE_COLUMNS


def _task(**fields) -> Task:
    return Task(name="wide", kind="text_classification", labels=("a", "b"), plugin="demo",
                sources={"local": Source.local("jsonl", {"train": "train.jsonl"})}, **fields)


def _write(folder, rows) -> None:
    (folder / "train.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def test_a_field_per_row_is_kept_as_one_json_text_column(tmp_path, cache_dir):
    _write(tmp_path, [{"text": f"t{i}", "label": "ab"[i % 2], f"note_{i}": i, "shared": "x"} for i in range(ROWS)])
    raw = load_raw(_task(), "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)["train"]
    assert len(raw.column_names) < 10 and OTHER_COLUMN in raw.column_names
    assert json.loads(raw[7][OTHER_COLUMN]) == {"note_7": 7, "shared": "x"}
    train = prepare_split(raw, _task(), "train", origin="local train")
    assert list(train["text"])[:3] == ["t0", "t1", "t2"] and list(train["labels"])[:3] == [0, 1, 0]


def test_a_misnamed_field_among_them_is_still_suggested(tmp_path, cache_dir):
    _write(tmp_path, [{"txt": f"t{i}", "label": "ab"[i % 2], f"note_{i}": i} for i in range(ROWS)])
    raw = load_raw(_task(), "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)["train"]
    with pytest.raises(DataError, match=r"no field 'text' for text \(the row has: label, txt, note_0\) \(did you mean 'txt'\?\)"):
        prepare_split(raw, _task(), "train", origin="local train")


def test_an_unread_object_keyed_by_ids_is_kept_as_json_text(tmp_path, cache_dir):
    _write(tmp_path, [{"text": f"t{i}", "label": "ab"[i % 2], "meta": {f"k{i}": i}} for i in range(3 * MAX_STRUCT_FIELDS)])
    raw = load_raw(_task(), "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)["train"]
    assert raw.features["meta"].dtype == "string" and json.loads(raw[5]["meta"]) == {"k5": 5}
    _write(tmp_path, [{"text": f"t{i}", "label": "ab"[i % 2], "meta": {f"k{i % 3}": i}} for i in range(30)])  # a few keys: a struct
    raw = load_raw(_task(), "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)["train"]
    assert set(raw.features["meta"]) == {"k0", "k1", "k2"} and raw[4]["meta"] == {"k0": None, "k1": 4, "k2": None}


def _body_as_text(row):
    return {**row, "text": row["body"]}


def test_with_preprocessing_every_field_stays_a_column_of_its_own(tmp_path, cache_dir):
    """A step may read any field: nothing is folded (an inputs rename alone leaves the others unread: folded)."""
    _write(tmp_path, [{"body": f"t{i}", "label": "ab"[i % 2], f"note_{i}": i} for i in range(ROWS)])
    renamed = load_raw(_task(inputs={"text": "body"}), "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)["train"]
    assert OTHER_COLUMN in renamed.column_names
    stepped = _task(preprocess=(_body_as_text,))
    raw = load_raw(stepped, "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)["train"]
    assert OTHER_COLUMN not in raw.column_names and "note_5" in raw.column_names
    assert list(prepare_split(raw, stepped, "train", origin="local train")["text"])[:2] == ["t0", "t1"]
