"""Tokenization per task kind with tiny BERT and RoBERTa encoders, and the tokenization cache."""

from __future__ import annotations

import time

import pytest
import torch

from mtcore.data import load_task_data
from mtcore.data import CutWordsWarning
from mtcore.data.tokenize import uses_token_type_ids
from mtcore.task import Source, Task

FILES = {"train": "train.jsonl", "validation": "val.jsonl"}


def local(**options):
    return {"local": Source.local("jsonl", FILES, **options)}


def load(task, encoder, tmp_path, cache_dir, **kwargs):
    tokenizer, config = encoder
    return load_task_data(task, tokenizer, source="local", data_dir=tmp_path, encoder_config=config, cache_dir=cache_dir, **kwargs)


PAIR = Task(name="pair", kind="pair_classification", labels=("no", "yes"), sources=local())
PAIR_ROWS = [{"text": "кот спит", "text_pair": "yes", "label": "yes", "idx": 0}, {"text": "кот", "text_pair": "no no", "label": "no", "idx": 1}]


def test_pairs_keep_segments_with_bert(bert, tmp_path, write, cache_dir):
    tokenizer, config = bert
    write.jsonl(tmp_path / "train.jsonl", PAIR_ROWS)
    write.jsonl(tmp_path / "val.jsonl", PAIR_ROWS[:1])
    data = load(PAIR, bert, tmp_path, cache_dir)
    row = data.splits["train"][0]
    assert row["input_ids"] == tokenizer("кот спит", "yes")["input_ids"]
    assert row["token_type_ids"] == [0, 0, 0, 0, 1, 1]  # [CLS] кот спит [SEP] | yes [SEP]
    assert row["length"] == len(row["input_ids"]) and row["labels"] == 1 and row["idx"] == 0
    assert data.lengths("train") == [6, 6] and data.uses_token_type_ids
    batch = data.collator([data.splits["train"][0], data.splits["train"][1]])
    assert batch["token_type_ids"].tolist()[0] == [0, 0, 0, 0, 1, 1]


def test_roberta_gets_no_token_type_ids(roberta, tmp_path, write, cache_dir):
    write.jsonl(tmp_path / "train.jsonl", PAIR_ROWS)
    write.jsonl(tmp_path / "val.jsonl", PAIR_ROWS[:1])
    assert not uses_token_type_ids(roberta[1])
    data = load(PAIR, roberta, tmp_path, cache_dir)
    assert "token_type_ids" not in data.splits["train"].column_names
    batch = data.collator(data.splits["train"][0:2])
    assert set(batch) == {"input_ids", "attention_mask", "labels"}


def test_max_length_override_and_pair_truncation_strategy(bert, tmp_path, write, cache_dir):
    long_rows = [{"text": "кот " * 10, "text_pair": "yes " * 10, "label": "yes"}]
    write.jsonl(tmp_path / "train.jsonl", long_rows)
    write.jsonl(tmp_path / "val.jsonl", long_rows)
    data = load(PAIR, bert, tmp_path, cache_dir, max_length=12)
    row = data.splits["train"][0]
    assert len(row["input_ids"]) == 12 and row["length"] == 12
    assert row["token_type_ids"].count(0) == 6  # longest_first: both sides cut to 5 words
    only_second = PAIR.replace(truncation="only_second")
    row = load(only_second, bert, tmp_path, cache_dir, max_length=16).splits["train"][0]
    assert row["token_type_ids"].count(0) == 12 and len(row["input_ids"]) == 16  # the first text kept whole


def test_multiple_choice_one_pair_per_choice(bert, tmp_path, write, cache_dir):
    tokenizer, _ = bert
    task = Task(name="parus", kind="multiple_choice", sources=local())
    rows = [{"text": "кот спит", "choices": ["yes", "no no"], "label": 1}, {"text": "", "choices": ["кот", "спит"], "label": 0}]
    write.jsonl(tmp_path / "train.jsonl", rows)
    write.jsonl(tmp_path / "val.jsonl", rows)
    data = load(task, bert, tmp_path, cache_dir)
    first, second = data.splits["train"][0], data.splits["train"][1]
    assert first["input_ids"] == [tokenizer("кот спит", "yes")["input_ids"], tokenizer("кот спит", "no no")["input_ids"]]
    assert second["input_ids"] == [tokenizer("кот")["input_ids"], tokenizer("спит")["input_ids"]]  # no context: the choice alone
    assert first["length"] == 6 + 7 and second["length"] == 3 + 3
    batch = data.collator([first, second])
    assert batch["input_ids"].shape == (2, 2, 7) and batch["attention_mask"].shape == (2, 2, 7)
    assert batch["token_type_ids"].shape == (2, 2, 7)
    assert batch["labels"].tolist() == [1, 0] and batch["labels"].dtype == torch.int64
    assert batch["attention_mask"][1, 0].tolist() == [1, 1, 1, 0, 0, 0, 0]


def test_token_classification_labels_on_first_sub_token(bert, roberta, tmp_path, write, cache_dir):
    tokenizer, _ = bert
    task = Task(name="ner", kind="token_classification", labels=("O", "PER"), sources=local())
    rows = [{"tokens": ["кот", "abc", "спит"], "label": ["O", "PER", "O"]}]
    write.jsonl(tmp_path / "train.jsonl", rows)
    write.jsonl(tmp_path / "val.jsonl", rows)
    row = load(task, bert, tmp_path, cache_dir).splits["train"][0]
    assert tokenizer.convert_ids_to_tokens(row["input_ids"]) == ["[CLS]", "кот", "a", "##b", "##c", "спит", "[SEP]"]
    assert row["labels"] == [-100, 0, 1, -100, -100, 0, -100]
    assert row["cut_labels"] == []
    with pytest.warns(CutWordsWarning, match=r"^task 'ner', (train|validation) split: 1 of 1 rows lose 1 word\(s\) past max_length 4 "):
        data = load(task, roberta, tmp_path, cache_dir, max_length=4)
    row = data.splits["train"][0]
    assert len(row["input_ids"]) == 4 and len(row["labels"]) == 4 and "token_type_ids" not in row
    assert row["labels"] == [-100, 0, 1, -100] and row["cut_labels"] == [0]  # [CLS] кот a(bc) [SEP]: спит (O) is cut
    batch = data.collator([row, data.splits["validation"][0]])
    assert batch["labels"].shape == batch["input_ids"].shape and batch["labels"].dtype == torch.int64


def test_a_word_that_is_no_token_is_scored_in_its_place(bert, tmp_path, write, cache_dir):
    """A soft hyphen or zero-width space alone is no token for BERT: its tag vanished from the scores (an oracle got F1 1.0),
    then was scored at the row's end (an entity around it changed)."""
    from mtcore.train.evaluation import words_left_out

    task = Task(name="ner", kind="token_classification", labels=("O", "PER"), sources=local())
    rows = [{"tokens": ["кот", "\u00ad", "спит", "\u200b"], "label": ["O", "PER", "O", "PER"]}]
    write.jsonl(tmp_path / "train.jsonl", rows)
    write.jsonl(tmp_path / "val.jsonl", rows)
    data = load(task, bert, tmp_path, cache_dir)
    row = data.splits["validation"][0]
    assert row["labels"] == [-100, 0, 0, -100] and row["cut_labels"] == [] and row["unseen_labels"] == [1, 1]
    assert row["unseen_words"] == [1, 3]
    assert words_left_out(data.splits["validation"]) == [([1, 3], [1, 1], [])]  # evaluation puts them back, predicted O


def test_token_rows_cut_at_the_encoder_limit_are_told_to_split(bert, tmp_path, write, cache_dir):
    """Past the most the encoder accepts, raising max_length cannot help: the warning says to split rows."""
    import copy

    tokenizer, config = bert
    limited = copy.deepcopy(tokenizer)
    limited.model_max_length = 6
    task = Task(name="ner", kind="token_classification", labels=("O", "PER"), sources=local(), max_length=64)
    rows = [{"tokens": ["кот", "спит"] * 4, "label": ["O", "PER"] * 4}, {"tokens": ["кот"], "label": ["PER"]}]
    write.jsonl(tmp_path / "train.jsonl", rows)
    write.jsonl(tmp_path / "val.jsonl", rows[1:])
    with pytest.warns(CutWordsWarning) as caught:
        data = load(task, (limited, config), tmp_path, cache_dir)
    assert [str(w.message) for w in caught] == [
        "task 'ner': max_length 64 is more than its tokenizer's model takes (6 tokens, model_max_length); sequences are cut at "
        "6 tokens, set max_length to 6 or less",  # said once, where it was cut silently
        "task 'ner', train split: 1 of 2 rows lose 4 word(s) past max_length 6 (the model never sees them; evaluation scores them "
        "as predicted 'O'): 6 is the most the encoder accepts: split long rows into shorter ones (e.g. one sentence a row)"]
    assert list(data.splits["train"]["cut_labels"]) == [[0, 1, 0, 1], []]


def test_multi_label_multi_hot_and_regression_float(bert, tmp_path, write, cache_dir):
    task = Task(name="topics", kind="multi_label", labels=("sport", "politics", "science"), sources=local())
    rows = [{"text": "кот", "label": ["sport", "science"]}, {"text": "спит", "label": []}, {"text": "yes", "label": "politics"}]
    write.jsonl(tmp_path / "train.jsonl", rows[:2])
    write.jsonl(tmp_path / "val.jsonl", rows[2:])
    data = load(task, bert, tmp_path, cache_dir)
    assert list(data.splits["train"]["labels"]) == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert list(data.splits["validation"]["labels"]) == [[0.0, 1.0, 0.0]]
    batch = data.collator(data.splits["train"][0:2])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (2, 3)
    regression = Task(name="sts", kind="regression", sources=local())
    write.jsonl(tmp_path / "train.jsonl", [{"text": "кот", "label": 0.5}, {"text": "спит", "label": 4}])
    write.jsonl(tmp_path / "val.jsonl", [{"text": "кот", "label": 1}])
    data = load(regression, bert, tmp_path, cache_dir)
    batch = data.collator(data.splits["train"][0:2])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [0.5, 4.0]


def test_second_load_reads_the_cache_and_does_not_tokenize(bert, tmp_path, write, cache_dir, monkeypatch):
    tokenizer, _ = bert
    rows = [{"text": f"кот спит {i}", "text_pair": "yes " * (i % 7), "label": ["no", "yes"][i % 2]} for i in range(400)]
    write.jsonl(tmp_path / "train.jsonl", rows)
    write.jsonl(tmp_path / "val.jsonl", rows[:50])
    started = time.perf_counter()
    first = load(PAIR, bert, tmp_path, cache_dir)
    first_seconds = time.perf_counter() - started

    calls = []
    original = type(tokenizer).__call__

    def counting_call(self, *args, **kwargs):
        calls.append(args[:1])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", counting_call)
    started = time.perf_counter()
    second = load(PAIR, bert, tmp_path, cache_dir)
    second_seconds = time.perf_counter() - started
    print(f"\nload_task_data 450 rows: first {first_seconds:.3f}s, second (cached) {second_seconds:.3f}s")
    assert calls == []
    for split in ("train", "validation"):
        assert second.splits[split].cache_files == first.splits[split].cache_files
        assert second.splits[split]["input_ids"][:5] == first.splits[split]["input_ids"][:5]
    other = load(PAIR, bert, tmp_path, cache_dir, max_length=8)  # other settings: tokenized again
    assert calls and max(other.lengths("train")) == 8


def test_unknown_truncation_strategy(bert, tmp_path, write, cache_dir):
    from mtcore.errors import ConfigError

    write.jsonl(tmp_path / "train.jsonl", PAIR_ROWS)
    write.jsonl(tmp_path / "val.jsonl", PAIR_ROWS)
    with pytest.raises(ConfigError, match=r"truncation 'only_last' is not one of longest_first, only_first, only_second"):
        load(PAIR.replace(truncation="only_last"), bert, tmp_path, cache_dir)


@pytest.mark.parametrize("damage", ["truncate", "empty", "delete"])
def test_a_damaged_cache_entry_is_rebuilt(bert, tmp_path, write, cache_dir, damage):
    """A run killed while writing, a full disk, a file removed by hand: read and tokenized again, not ArrowInvalid."""
    import os

    write.jsonl(tmp_path / "train.jsonl", PAIR_ROWS)
    write.jsonl(tmp_path / "val.jsonl", PAIR_ROWS[:1])
    expected = [dict(row) for row in load(PAIR, bert, tmp_path, cache_dir).splits["train"]]
    arrows = [os.path.join(folder, name) for folder, _, names in os.walk(cache_dir) for name in names if name.endswith(".arrow")]
    assert len(arrows) >= 3  # the rows, the prepared and the tokenized datasets
    for path in arrows:
        if damage == "delete":
            os.remove(path)
        else:
            size = os.path.getsize(path)
            with open(path, "r+b") as handle:
                handle.truncate(0 if damage == "empty" else size // 2)
    assert [dict(row) for row in load(PAIR, bert, tmp_path, cache_dir).splits["train"]] == expected


def test_long_texts_are_tokenized_in_smaller_batches_with_the_same_result(bert, tmp_path, write, cache_dir, monkeypatch):
    """A fast tokenizer encodes a whole text before truncating: 1,000-row batches of 100,000-character documents held
    ~17 GB (a scale audit: 300 such rows, mt train at 5.9 GB). Batches now hold about BATCH_CHARACTERS of text."""
    from datasets import Dataset

    from mtcore.data import map_batches
    from mtcore.data.map_batches import text_batch_size

    short = Dataset.from_list([{"text": "кот спит", "choices": ["a", "b"], "labels": 1}] * 50)
    assert text_batch_size(short) == 1000
    long = Dataset.from_list([{"text": "кот " * 50_000, "choices": ["a" * 1000, "b"], "labels": 1}] * 3)
    assert text_batch_size(long) == 2_000_000 // (200_000 + 1001)
    rows = [{"text": " ".join(["кот", "спит"] * (i + 1)), "text_pair": "yes " * (i % 3 + 1), "label": "yes", "idx": i} for i in range(12)]
    write.jsonl(tmp_path / "train.jsonl", rows)
    write.jsonl(tmp_path / "val.jsonl", rows[:2])
    whole = load(PAIR, bert, tmp_path, cache_dir).splits["train"]
    monkeypatch.setattr(map_batches, "BATCH_CHARACTERS", 60)  # a few rows a batch
    batches = []
    from mtcore.data import tokenize

    encode = tokenize._encode_batch
    monkeypatch.setattr(tokenize, "_encode_batch", lambda batch, *args: (batches.append(len(batch["text"])), encode(batch, *args))[1])
    small = load(PAIR, bert, tmp_path, tmp_path / "another-cache").splits["train"]
    assert max(batches) < 12 and sum(batches) >= 12
    assert small.to_list() == whole.to_list()
