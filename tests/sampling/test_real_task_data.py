"""MultitaskBatchSampler over real ``load_task_data`` output (shipped RSG samples, tiny tokenizer)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny BERT's tokenizer and config, and a datasets cache folder."""
    import datasets
    from transformers import AutoConfig, AutoTokenizer

    from mtcore.testing import build_tiny_encoder

    datasets.disable_progress_bars()
    path = build_tiny_encoder(tmp_path_factory.mktemp("enc") / "bert", "bert")
    return AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path), tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def rsg(tiny):
    """TaskData of three RSG tasks (pair, pair with long passages, multiple choice), train split."""
    from mtcore.data import load_task_data
    from mtcore.plugins import get_task

    tokenizer, config, cache = tiny
    return {task_id: load_task_data(get_task(task_id), tokenizer, splits=("train",), encoder_config=config, cache_dir=cache)
            for task_id in ("rsg:danetqa", "rsg:terra", "rsg:parus")}


@pytest.fixture(scope="module")
def mixed_choices(tiny, tmp_path_factory):
    """TaskData of a multiple-choice task whose rows have 2 to 5 choices of 1 to 6 words (one token each)."""
    import json
    import random

    from mtcore.data import load_task_data
    from mtcore.yaml_tasks import task_from_definition

    tokenizer, config, cache = tiny
    rng, words = random.Random(3), list("abcdefgh")
    rows = []
    for i in range(240):
        choices = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(2, 5))]
        rows.append({"idx": i, "text": " ".join(rng.choice(words) for _ in range(rng.randint(1, 3))), "choices": choices,
                     "label": rng.randrange(len(choices))})
    root = tmp_path_factory.mktemp("mixed")
    (root / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    task = task_from_definition({"name": "mixed", "kind": "multiple_choice", "files": {"train": "train.jsonl"}}, base_dir=root)
    return load_task_data(task, tokenizer, splits=("train",), encoder_config=config, cache_dir=cache)


def _check(batch, rsg):
    from mtcore.data.batch import Batch, BatchData

    assert isinstance(batch, Batch) and isinstance(batch.data, BatchData)
    assert batch.name in rsg
    ids = batch.data["input_ids"]
    assert ids.shape[0] == batch.size == len(batch.idx)
    assert int(batch.data["attention_mask"].sum()) == batch.num_tokens  # lengths count real tokens
    assert "labels" in batch.data and batch.data["labels"].shape[0] == batch.size
    if batch.name == "rsg:parus":
        assert ids.dim() == 3 and ids.shape[1] == 2


def test_single_mode_yields_collated_batches_and_resumes_exactly(rsg):
    from mtcore.sampling import MultitaskBatchSampler

    sampler = MultitaskBatchSampler(rsg, "train", batch_size=4, seed=1)
    total = len(sampler)
    full = list(sampler)
    assert len(full) == total and {b.name for b in full} == set(rsg)
    for batch in full:
        _check(batch, rsg)
    for task_id, data in rsg.items():  # every example of every task was seen (stop="largest")
        seen = {i for b in full if b.name == task_id for i in b.idx}
        assert seen == set(data.splits["train"]["idx"])

    first = MultitaskBatchSampler(rsg, "train", batch_size=4, seed=1)
    iterator = iter(first)
    head = [next(iterator) for _ in range(total // 2)]
    fresh = MultitaskBatchSampler(rsg, "train", batch_size=4)
    fresh.load_state_dict(first.state_dict())
    rest = list(fresh)
    assert len(head) + len(rest) == total
    for a, b in zip(head + rest, full):
        assert a.name == b.name and a.idx == b.idx and torch.equal(a.data["input_ids"], b.data["input_ids"])


def test_all_mode_with_token_budget_yields_one_batch_per_task(rsg):
    from mtcore.sampling import MultitaskBatchSampler

    sampler = MultitaskBatchSampler(rsg, "train", mode="all", token_budget=512, stop="smallest")
    steps = list(sampler)
    assert steps and all([b.name for b in step] == list(rsg) for step in steps)
    for step in steps:
        for batch in step:
            _check(batch, rsg)
            # multiple-choice rows count choices x longest choice, so the budget holds for PARus too
            assert batch.data["input_ids"].numel() <= 512 or batch.size == 1
            batch.data.to("cpu")


def test_token_budget_holds_for_multiple_choice_with_pad_to_multiple_of(rsg):
    """Choices are each padded up to the multiple: the budget counts choices x the rounded longest choice."""
    import copy

    from mtcore.sampling import MultitaskBatchSampler

    parus = copy.copy(rsg["rsg:parus"])
    parus.collator = copy.copy(parus.collator)
    parus.collator.pad_to_multiple_of = 8
    budget = 160
    sampler = MultitaskBatchSampler({"rsg:parus": parus}, "train", token_budget=budget, seed=0)
    batches = list(sampler)
    assert batches and max(b.size for b in batches) > 1
    for batch in batches:
        assert batch.data["input_ids"].shape[-1] % 8 == 0
        assert batch.data["input_ids"].numel() <= budget, (batch.size, tuple(batch.data["input_ids"].shape))
    lengths = parus.batching_lengths("train")
    assert all(n % 16 == 0 for n in lengths)  # 2 choices x a multiple of 8



def test_padding_free_collators_make_token_budgets_count_real_tokens(rsg):
    """A packed batch of PARus (multiple choice) holds at most the budget in real tokens, summed over choices."""
    import copy

    from mtcore.sampling import MultitaskBatchSampler

    budget = 160
    padded = MultitaskBatchSampler({"rsg:parus": rsg["rsg:parus"]}, "train", token_budget=budget, seed=0, group_by_length=False)
    parus = copy.copy(rsg["rsg:parus"])
    parus.collator = copy.copy(parus.collator)
    parus.collator.padding_free = True
    packed = MultitaskBatchSampler({"rsg:parus": parus}, "train", token_budget=budget, seed=0, group_by_length=False)
    batches = list(packed)
    assert sum(b.size for b in batches) == parus.num_rows("train")
    for batch in batches:
        assert batch.num_tokens == int(batch.data["token_index"].numel())  # the tokens the encoder computes
        assert batch.num_tokens <= budget or batch.size == 1
    assert len(batches) < len(list(padded))  # no slots spent on padding: fewer, fuller batches
    # max_rows caps the rows of these budget batches (short sequences would fill them by the hundred)
    capped = list(MultitaskBatchSampler({"rsg:parus": parus}, "train", token_budget=budget, max_rows=1, seed=0, group_by_length=False))
    assert max(b.size for b in batches) > 1 and max(b.size for b in capped) == 1
    assert sum(b.size for b in capped) == parus.num_rows("train") and all(b.num_tokens <= budget for b in capped)


def test_padding_free_batches_of_fixed_size_are_the_padded_runs_batches(rsg):
    """Without a token budget, grouping sorts padding-free rows as padded ones: the same rows per batch."""
    import copy

    from mtcore.sampling import MultitaskBatchSampler

    parus = copy.copy(rsg["rsg:parus"])
    parus.collator = copy.copy(parus.collator)
    parus.collator.padding_free = True
    padded = [b.idx for b in MultitaskBatchSampler({"rsg:parus": rsg["rsg:parus"]}, "train", batch_size=5, seed=42)]
    packed = [b.idx for b in MultitaskBatchSampler({"rsg:parus": parus}, "train", batch_size=5, seed=42)]
    assert packed == padded and len(padded) > 1


@pytest.mark.parametrize("pad", [None, 8])
def test_token_budget_holds_for_rows_with_different_numbers_of_choices(mixed_choices, pad):
    """Rows are padded to the batch's most choices: the collated tensor stays within the budget."""
    import copy

    from mtcore.sampling import MultitaskBatchSampler

    data = copy.copy(mixed_choices)
    data.collator = copy.copy(data.collator)
    data.collator.pad_to_multiple_of = pad
    budget = 300
    for grouped in (True, False):
        batches = list(MultitaskBatchSampler({"mixed": data}, "train", token_budget=budget, group_by_length=grouped, seed=0))
        assert sorted(i for b in batches for i in b.idx) == list(range(240)) and max(b.size for b in batches) > 1
        assert grouped or any("choice_mask" in b.data for b in batches)  # random order mixes choice counts
        for batch in batches:
            assert batch.data["input_ids"].numel() <= budget, tuple(batch.data["input_ids"].shape)
            assert int(batch.data["attention_mask"].sum()) >= batch.num_tokens  # + one token per stand-in choice
    counts = data.choice_counts("train")  # read from the Arrow list lengths, as numpy
    assert counts.tolist() == [len(ids) for ids in data.splits["train"]["input_ids"]] and set(counts.tolist()) == {2, 3, 4, 5}


def test_padding_free_budget_counts_the_stand_in_choices(mixed_choices):
    """Padding-free: the encoder computes the real tokens and one token per stand-in choice; the budget counts both."""
    import copy

    from mtcore.sampling import MultitaskBatchSampler

    data = copy.copy(mixed_choices)
    data.collator = copy.copy(data.collator)
    data.collator.padding_free = True
    budget = 200
    batches = list(MultitaskBatchSampler({"mixed": data}, "train", token_budget=budget, group_by_length=False, seed=0))
    assert sorted(i for b in batches for i in b.idx) == list(range(240))
    assert any("choice_mask" in b.data for b in batches)
    for batch in batches:
        computed = int(batch.data["token_index"].numel())
        stand_ins = int((~batch.data["choice_mask"]).sum()) if "choice_mask" in batch.data else 0
        assert computed == batch.num_tokens + stand_ins  # num_tokens: real tokens only
        assert computed <= budget
