"""``inputs: {spans: F}``: character spans checked when rows are prepared and turned into each span's first and last
token when they are tokenized (what ``pooling: spans`` pools)."""

from __future__ import annotations

import warnings

import pytest

from mtcore.data import load_task_data
from mtcore.data.spans import CutSpansWarning
from mtcore.errors import ConfigError, DataError
from mtcore.task import Source, Task

TEXT = "кот спит yes кот"  # кот 0-3, спит 4-8, yes 9-12, кот 13-16


def _task(files, kind="text_classification", spans_head=True, **fields):
    options = {"pooling": "spans"} if spans_head else {}
    return Task(name="wic", kind=kind, labels=("no", "yes"), inputs={"spans": "targets", **fields.pop("inputs", {})},
                sources={"local": Source.local("jsonl", files=files)}, head_options=options, **fields)


def _load(task, bert, cache_dir, **kwargs):
    tokenizer, config = bert
    return load_task_data(task, tokenizer, source="local", data_dir=cache_dir.parent, encoder_config=config, cache_dir=cache_dir, **kwargs)


def test_spans_become_the_first_and_last_token_of_their_words_in_either_text(bert, cache_dir, write, tmp_path):
    rows = [{"text": TEXT, "pair": "no кот", "targets": [[4, 12], [3, 6, 1]], "label": "yes"},  # "спит yes"; "кот" of the pair
            {"text": TEXT, "pair": "кот", "targets": [[13, 16], [0, 0, 1]], "label": "no"},  # an empty span: no token
            {"text": TEXT, "pair": "кот", "targets": [[5, 6], [0, 3, 1]], "label": "no"}]  # inside a word: that word
    files = {"train": str(write.jsonl(tmp_path / "t.jsonl", rows)), "validation": str(tmp_path / "t.jsonl")}
    task = _task(files, kind="pair_classification", inputs={"text_pair": "pair"})
    split = _load(task, bert, cache_dir).splits["train"]
    tokenizer = bert[0]
    words = [tokenizer.convert_ids_to_tokens(row["input_ids"]) for row in split]
    first, second, third = split["span_tokens"]
    assert [words[0][first[0][0]], words[0][first[0][1]]] == ["спит", "yes"] and first[0][1] - first[0][0] == 1
    assert words[0][first[1][0]] == "кот" and first[1][0] == first[1][1] and row_segment(split[0], first[1][0]) == 1
    assert words[1][second[0][0]] == "кот" and second[0][0] == 4 and second[1] == [-1, -1]
    assert words[2][third[0][0]] == "спит" and third[1][0] == third[1][1]
    batch = _load(task, bert, cache_dir).collator([split[0], split[1]])
    assert tuple(batch["span_tokens"].shape) == (2, 2, 2)


def row_segment(row, position):
    return row["token_type_ids"][position]


def test_a_span_cut_off_by_max_length_is_told_once_and_pools_as_zeros(bert, cache_dir, write, tmp_path):
    rows = [{"text": TEXT + " спит" * 20, "targets": [[0, 3], [len(TEXT) + 1, len(TEXT) + 5]], "label": "yes"},
            {"text": TEXT + " спит" * 20, "targets": [[0, 3], [len(TEXT) + 1 + 5 * 19, len(TEXT) + 5 * 20]], "label": "no"}]
    files = {"train": str(write.jsonl(tmp_path / "t.jsonl", rows)), "validation": str(tmp_path / "t.jsonl")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = _load(_task(files, max_length=12), bert, cache_dir).splits["train"]
    assert split["span_tokens"][0][1][0] == 5 and split["span_tokens"][1][1] == [-2, -2]
    cut = [str(w.message) for w in caught if issubclass(w.category, CutSpansWarning)]
    assert len(cut) == 2 and "1 span(s) of 1 of 2 rows have no token" in cut[0] and "max_length 12" in cut[0]  # train, validation


@pytest.mark.parametrize(("targets", "expected"), [
    ("[[3, 1]]", "span [3, 1] is not [start, end] with 0 <= start <= end"),
    ("[[0, 99]]", "span [0, 99] ends past the 16 characters of text"),
    ("[[0, 3, 1]]", "is in text_pair, and the task has none"),
    ("[[0, 3, 2]]", "its third number must be 0 (text) or 1 (text_pair)"),
    ('[[0, "3"]]', "expected a list of [start, end] character spans"),
    ("7", "expected a list of [start, end] character spans"),
    ("[[0, 3]", "not a JSON list of [start, end] spans"),
])
def test_a_bad_span_names_its_file_row_and_field(bert, cache_dir, write, tmp_path, targets, expected):
    cell = '"' + targets.replace('"', '""') + '"'
    path = write.text(tmp_path / "t.csv", f'text,targets,label\n{TEXT},"[[0, 3], [4, 8]]",no\n{TEXT},{cell},yes\n')
    task = _task({"train": str(path), "validation": str(path)}, spans_head=False).replace(
        sources={"local": Source.local("csv", files={"train": str(path), "validation": str(path)})})
    with pytest.raises(DataError) as error:
        _load(task, bert, cache_dir)
    assert "t.csv row 3" in str(error.value) and "field 'targets' (spans)" in str(error.value) and expected in str(error.value)


def test_rows_with_other_numbers_of_spans_than_the_head_pools_are_refused_before_training(bert, cache_dir, write, tmp_path):
    rows = [{"text": TEXT, "targets": [[0, 3], [4, 8]], "label": "no"}, {"text": TEXT, "targets": [[0, 3]], "label": "yes"}]
    path = write.jsonl(tmp_path / "t.jsonl", rows)
    for head in (True, False):  # also when the head does not pool them (RUSSE's default): the batches would not collate
        with pytest.raises(DataError, match=r"task 'wic', train split: row 2 has 1 span\(s\) and row 1 2; every row needs the same number"):
            _load(_task({"train": str(path), "validation": str(path)}, spans_head=head), bert, cache_dir)
    write.jsonl(path, [rows[0], rows[0]])
    task = _task({"train": str(path), "validation": str(path)}).replace(head_options={"pooling": "spans", "num_spans": 3})
    with pytest.raises(DataError, match=r"rows have 2 span\(s\) and the head pools 3 \(head option num_spans\); give each row 3 \(write "
                                        r"\[0, 0\] for a span a row lacks\), or \(before training\) set head_options: \{num_spans: 2\}"):
        _load(task, bert, cache_dir)
    write.jsonl(path, [{**rows[0], "targets": []}] * 2)
    with pytest.raises(DataError, match=r"rows have 0 span\(s\) and the head pools 2 \(head option num_spans, default 2\); give each "
                                        r"row 2 \(write \[0, 0\] for a span a row lacks\)$"):
        _load(_task({"train": str(path), "validation": str(path)}), bert, cache_dir)


def test_spans_are_for_one_vector_kinds_and_a_spans_head_needs_them():
    with pytest.raises(ConfigError, match="inputs maps 'spans'.*remove it from a multiple_choice task"):
        Task(name="mc", kind="multiple_choice", inputs={"spans": "s"})
    with pytest.raises(ConfigError, match="head option pooling 'spans' is for text_classification, .* and this is a multiple_choice task"):
        Task(name="mc", kind="multiple_choice", head_options={"pooling": "spans"})
    with pytest.raises(ConfigError, match=r"head option pooling 'spans' pools each row's spans, and the task maps none; add "
                                          r"inputs: \{spans: <field>\}"):
        Task(name="t", kind="text_classification", labels=("a", "b"), head_options={"pooling": "spans"})
    Task(name="t", kind="regression", inputs={"spans": "s"}, head_options={"pooling": "spans"})  # regression pools spans too


def test_a_span_no_token_covers_is_told_apart_from_one_cut_off_and_whole_floats_are_numbers(bert, cache_dir, write, tmp_path):
    rows = [{"text": TEXT + " \u200b", "targets": [[17, 18], [3, 4]], "label": "yes"},  # a zero-width end, the space after "кот"
            {"text": TEXT, "targets": [[0.0, 3.0], [4.0, 8.0]], "label": "no"}]  # floats that are whole numbers (pandas, NaNs)
    files = {"train": str(write.jsonl(tmp_path / "t.jsonl", rows)), "validation": str(tmp_path / "t.jsonl")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = _load(_task(files), bert, cache_dir).splits["train"]
    assert split["span_tokens"][0] == [[-3, -3], [-3, -3]] and split["span_tokens"][1] == [[1, 1], [2, 2]]
    told = [str(w.message) for w in caught if issubclass(w.category, CutSpansWarning)]
    assert told and all("cover no token (only spaces, or characters the tokenizer drops; the first in row 1)" in m for m in told)
    assert not any("max_length" in m for m in told)


def test_a_slow_tokenizer_goes_without_spans_unless_the_head_pools_them(bert, cache_dir, write, tmp_path):
    rows = [{"text": TEXT, "targets": [[0, 3], [4, 8]], "label": "yes"}] * 2
    files = {"train": str(write.jsonl(tmp_path / "t.jsonl", rows)), "validation": str(tmp_path / "t.jsonl")}
    tokenizer, config = bert

    class Slow(type(tokenizer)):
        @property
        def is_fast(self):
            return False

    slow = Slow.from_pretrained(tokenizer.name_or_path)
    kept = load_task_data(_task(files, spans_head=False), slow, source="local", data_dir=tmp_path, encoder_config=config,
                          cache_dir=cache_dir)
    assert "span_tokens" not in kept.splits["train"].column_names
    with pytest.raises(ConfigError, match=r"task 'wic': its head pools spans .* needs a fast tokenizer"):
        load_task_data(_task(files), slow, source="local", data_dir=tmp_path, encoder_config=config, cache_dir=cache_dir)
