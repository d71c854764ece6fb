"""The seed port keeps the seed's meaning where a notebook relies on it: the owner of a plain heads
dict, rows dropped by a step that returns None, the samplers' ``datasets=``, and saved models that
prepare rows by themselves."""

from __future__ import annotations

import pytest

from mtcore.errors import ConfigError, DataError
from mtcore.testing import build_tiny_encoder

WORDS = "the a cat dog sat on mat is not yes no river city big small red blue question passage good bad".split()


def _terra(n: int = 12):
    from datasets import Dataset, DatasetDict

    def rows(k):
        return [{"premise": f"the dog is {WORDS[i % 19]}", "hypothesis": f"a dog is {WORDS[(i + 1) % 19]}",
                 "label": ["entailment", "not_entailment"][i % 2], "idx": i} for i in range(k)]
    return DatasetDict({"train": Dataset.from_list(rows(n)), "validation": Dataset.from_list(rows(4))})


def _danetqa(n: int = 12):
    from datasets import Dataset, DatasetDict

    def rows(k):
        return [{"question": f"is the cat {WORDS[i % 19]}", "passage": f"the cat sat on the mat {WORDS[i * 3 % 19]}",
                 "label": bool(i % 2), "idx": i} for i in range(k)]
    return DatasetDict({"train": Dataset.from_list(rows(n)), "validation": Dataset.from_list(rows(4))})


def _blanks():
    """Rows 3, 6, 9, ... are blank, with a label of their own that a filter is meant to remove."""
    from datasets import Dataset, DatasetDict

    def rows(k):
        return [{"text": f"good cat {i}" if i % 3 else "   ", "label": ["bad", "good"][i % 2] if i % 3 else "junk"}
                for i in range(1, k + 1)]
    return DatasetDict({"train": Dataset.from_list(rows(30)), "validation": Dataset.from_list(rows(9))})


def drop_blank(row):
    """A seed-style filter step: None drops the row."""
    return None if not row["text"].strip() else row


def to_seed_input(row):
    """A seed-style step: a new row in the seed's shape, or None to drop the row."""
    return {"input": row["text"], "label": row["label"]} if row["text"].strip() else None


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return str(build_tiny_encoder(tmp_path_factory.mktemp("enc") / "encoder", "bert", words=WORDS))


@pytest.fixture(scope="module")
def other_encoder(tmp_path_factory):
    return str(build_tiny_encoder(tmp_path_factory.mktemp("enc-other") / "encoder", "bert", words=WORDS[:12]))


def _terra_tasks(encoder, cache):
    from mtcore.seed import NLIPreprocess, Preprocessor, SequenceClassificationTask, Tasks

    return Tasks([SequenceClassificationTask("terra", _terra(), Preprocessor([NLIPreprocess()]))], encoder, cache_dir=str(cache))


# ---- 1. a plain heads dict belongs to the Tasks of the model's encoder ------------------------------
def test_a_plain_heads_dict_belongs_to_the_tasks_of_the_model_s_encoder(encoder, other_encoder, tmp_path):
    import torch.nn as nn

    from mtcore.seed import MultitaskModel

    mine = _terra_tasks(encoder, tmp_path / "a")
    other = _terra_tasks(other_encoder, tmp_path / "b")  # the same task names, another encoder, built last
    model = MultitaskModel(encoder, {**mine.heads, "terra": nn.Linear(32, 2)})
    assert mine.model is model and other._model is None
    assert model.tokenizer is mine.tokenizer
    theirs = MultitaskModel(other_encoder, {**other.heads})
    assert other.model is theirs and theirs.tokenizer is other.tokenizer and mine.model is model


def test_a_plain_heads_dict_matching_two_tasks_of_one_encoder_is_refused_and_the_fix_works(encoder, tmp_path):
    import torch.nn as nn

    from mtcore.seed import MultitaskModel

    first = _terra_tasks(encoder, tmp_path / "a")
    second = _terra_tasks(encoder, tmp_path / "b")
    with pytest.raises(ConfigError, match=r"2 Tasks objects .*tasks\.heads \| \{'terra': my_head\}"):
        MultitaskModel(encoder, {**first.heads, "terra": nn.Linear(32, 2)})
    heads = first.heads | {"terra": nn.Linear(32, 2)}
    assert isinstance(heads["terra"], nn.Linear)
    model = MultitaskModel(encoder, heads)
    assert first.model is model and second._model is None and model.tokenizer is first.tokenizer


# ---- 2. the seed's Preprocessor: None drops the row; the seed's keywords -----------------------------
def test_a_step_returning_none_drops_the_row_as_in_the_seed(encoder, tmp_path):
    from mtcore.seed import Preprocessor, SequenceClassificationTask, Tasks

    task = SequenceClassificationTask("f", _blanks(), Preprocessor([drop_blank]))
    tasks = Tasks([task], encoder, cache_dir=str(tmp_path))
    assert tasks.data["f"].num_rows("train") == 20 and tasks.data["f"].num_rows("validation") == 6
    assert tasks.heads["f"].labels == ("bad", "good")  # the dropped rows' label is not one of the task's
    assert Preprocessor([drop_blank])({"text": "  ", "label": "junk"}) is None
    with pytest.raises(ConfigError, match="runs on one row at a time"):
        Preprocessor([drop_blank])(_blanks())  # the seed's preprocessor(dataset_dict)


def test_a_seed_shaped_step_may_drop_rows(encoder, tmp_path):
    from mtcore.seed import MultitaskBatchSampler, Preprocessor, SequenceClassificationTask, Tasks

    tasks = Tasks([SequenceClassificationTask("g", _blanks(), Preprocessor([to_seed_input]))], encoder, cache_dir=str(tmp_path))
    assert tasks.data["g"].num_rows("train") == 20
    assert sum(len(batch.data["labels"]) for batch in MultitaskBatchSampler(tasks.data, "train", batch_size=8)) == 20


def test_preprocessor_takes_the_seed_keywords():
    from mtcore.seed import Preprocessor

    for seed_call in (Preprocessor([drop_blank], parallel=False), Preprocessor([drop_blank], True, 4, True),
                      Preprocessor(actions=[drop_blank], num_proc=2, verbose=False)):
        assert seed_call.steps == (drop_blank,) and seed_call({"text": "good"}) == {"text": "good"}


def test_a_step_returning_several_rows_or_dropping_every_row_is_refused(encoder, tmp_path):
    from mtcore.seed import SequenceClassificationTask, Tasks

    def two_rows(row):
        return [row, row]

    with pytest.raises(DataError, match=r"task 'm', train row 1: preprocessing step .*two_rows returned 2 rows .*expand the rows"):
        Tasks([SequenceClassificationTask("m", _blanks(), [two_rows])], encoder, cache_dir=str(tmp_path))
    with pytest.raises(DataError, match="task 'n': preprocessing dropped every train row"):
        Tasks([SequenceClassificationTask("n", _blanks(), [lambda row: None])], encoder, cache_dir=str(tmp_path))


# ---- 6. the samplers take the seed's datasets= -------------------------------------------------------
def test_samplers_take_the_seed_s_datasets_keyword(encoder, tmp_path):
    from mtcore.seed import MetabatchSampler, MultitaskBatchSampler

    tasks = _terra_tasks(encoder, tmp_path)
    sampler = MultitaskBatchSampler(datasets=tasks.data, part="train", batch_size=8)
    assert len(sampler) == 2 and sum(len(batch.idx) for batch in sampler) == 12
    metabatches = list(MetabatchSampler(datasets=tasks.data, part="train", batch_size=8))
    assert len(metabatches) == 2 and all(set(step) == {"terra"} for step in metabatches)
    with pytest.raises(ConfigError, match=r"^MetabatchSampler needs tasks\.data .*got an empty dict"):
        MetabatchSampler(datasets={}, part="train", batch_size=8)
    with pytest.raises(ConfigError, match="MultitaskBatchSampler got data and datasets"):
        MultitaskBatchSampler(tasks.data, datasets={"terra": tasks.data["terra"]}, batch_size=8)


# ---- 8. a saved seed model prepares rows by itself ---------------------------------------------------
def test_a_saved_seed_model_predicts_by_task_name(encoder, tmp_path):
    from mtcore.model import MultitaskModel as CoreModel
    from mtcore.seed import MultitaskModel, NLIPreprocess, Preprocessor, SequenceClassificationTask, Tasks
    from mtcore.seed.ru import preprocess_danetqa

    tasks = Tasks([SequenceClassificationTask("danetqa", _danetqa(), Preprocessor([preprocess_danetqa])),
                   SequenceClassificationTask("terra", _terra(), Preprocessor([NLIPreprocess()])),
                   SequenceClassificationTask("f", _blanks(), Preprocessor([drop_blank]))], encoder, cache_dir=str(tmp_path / "tok"))
    MultitaskModel(encoder, tasks.heads).save_pretrained(tmp_path / "model")
    loaded = CoreModel.from_pretrained(tmp_path / "model")
    (terra,) = loaded.predict("terra", [{"premise": "the dog is big", "hypothesis": "a dog is small"}]).rows()
    assert terra["label"] in ("entailment", "not_entailment")
    (danetqa,) = loaded.predict("danetqa", [{"question": "is the cat big", "passage": "the cat sat on the mat"}]).rows()
    assert danetqa["label"] in (False, True)
    (row,) = loaded.predict("f", [{"text": "good cat"}]).rows()
    assert row["label"] in ("bad", "good")
