"""Label and length edge cases an edges audit found: an infinite regression target, a regression test split whose
scores include -1, multi-label labels in a CSV cell, a max_length that leaves no room for the text."""

from __future__ import annotations

import pytest

from mtcore.data import load_task_data
from mtcore.errors import ConfigError, DataError
from mtcore.task import Source, Task


def _task(kind, files, fmt="jsonl", **fields):
    return Task(name="t", kind=kind, sources={"local": Source.local(fmt, files)}, **fields)


def _load(task, encoder, tmp_path, cache_dir, splits=("train", "validation"), **kwargs):
    tokenizer, config = encoder
    return load_task_data(task, tokenizer, source="local", data_dir=tmp_path, encoder_config=config, cache_dir=cache_dir,
                          splits=splits, **kwargs)


def test_an_infinite_regression_target_is_refused_by_file_and_row(bert, tmp_path, write, cache_dir):
    """It passed mt check, then stopped training as 'the weights diverged; lower optimizer.lr'."""
    write.jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 0.5}, {"text": "b", "label": float("inf")}])
    write.jsonl(tmp_path / "val.jsonl", [{"text": "a", "label": 0.5}])
    task = _task("regression", {"train": "train.jsonl", "validation": "val.jsonl"})
    with pytest.raises(DataError, match=r"train.jsonl row 2: label inf is infinite; a regression target must be a finite number"):
        _load(task, bert, tmp_path, cache_dir)


def test_minus_one_is_a_score_in_a_test_split_whose_other_rows_have_scores(bert, tmp_path, write, cache_dir):
    """Sentiment in [-1, 1]: the -1 rows of a test split were left out of the scores (the hub marks hidden test labels with
    -1, but then every row has it)."""
    rows = [{"text": "a", "label": -1.0}, {"text": "b", "label": 1.0}, {"text": "c", "label": 0.5}]
    write.jsonl(tmp_path / "train.jsonl", rows)
    write.jsonl(tmp_path / "test.jsonl", rows)
    write.jsonl(tmp_path / "hidden.jsonl", [{"text": "a", "label": -1}, {"text": "b", "label": -1}])
    task = _task("regression", {"train": "train.jsonl", "test": "test.jsonl"})
    data = _load(task, bert, tmp_path, cache_dir, splits=("test",))
    assert data.splits["test"]["labels"] == [-1.0, 1.0, 0.5]
    hidden = _task("regression", {"train": "train.jsonl", "test": "hidden.jsonl"})
    data = _load(hidden, bert, tmp_path, cache_dir, splits=("test",))
    assert not data.is_labelled("test")
    (tmp_path / "hidden.csv").write_text("text,label\na,-1\nb,-1.0\n", encoding="utf-8")  # pandas writes -1.0
    csv = Task(name="t", kind="regression", sources={"local": Source.local("csv", {"train": "train.jsonl", "test": "hidden.csv"})})
    assert not _load(csv, bert, tmp_path, cache_dir, splits=("test",)).is_labelled("test")


def test_multi_label_labels_from_a_csv_cell_are_read_as_the_json_list_predict_writes(bert, tmp_path, write, cache_dir):
    (tmp_path / "train.csv").write_text('text,label\nx,"[""a"",""b""]"\ny,[]\nz,a\n', encoding="utf-8")
    task = _task("multi_label", {"train": "train.csv", "validation": "train.csv"}, fmt="csv", labels=("a", "b"))
    data = _load(task, bert, tmp_path, cache_dir)
    assert data.splits["train"]["labels"] == [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    (tmp_path / "bad.csv").write_text('text,label\nx,"[a, b]"\n', encoding="utf-8")
    bad = _task("multi_label", {"train": "bad.csv", "validation": "bad.csv"}, fmt="csv", labels=("a", "b"))
    with pytest.raises(DataError, match=r"bad.csv row 2: label '\[a, b\]' is not a JSON list of labels"):
        _load(bad, bert, tmp_path, cache_dir)


def test_a_max_length_that_leaves_no_room_for_a_pair_is_refused(bert, tmp_path, write, cache_dir):
    """A task's own max_length of 2 passed the checks; the tokenizer then cut nothing and the run ended in
    'unexpected RuntimeError: The size of tensor a (2703) must match ...'."""
    rows = [{"text": "кот спит", "text_pair": "да", "label": "yes"}]
    write.jsonl(tmp_path / "train.jsonl", rows)
    task = _task("pair_classification", {"train": "train.jsonl", "validation": "train.jsonl"}, labels=("no", "yes"), max_length=4)
    with pytest.raises(ConfigError, match=r"max_length 4 leaves no room for text: the tokenizer adds 3 special tokens to a pair "
                                          r"of texts; use at least 8"):
        _load(task, bert, tmp_path, cache_dir)
    assert _load(task.replace(max_length=5), bert, tmp_path, cache_dir).splits["train"]["length"] == [5]
