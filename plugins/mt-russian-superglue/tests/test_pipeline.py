"""The tasks run through mtcore's whole pipeline: tokenized data, batches, a smoke training."""

from __future__ import annotations

import math

from mtcore.data import load_task_data
from mtcore.testing.smoke import smoke_train


def test_pairs_keep_their_segments(registry, tiny_encoder, tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    data = load_task_data(registry.task("rsg:terra"), tokenizer, encoder_config=AutoConfig.from_pretrained(tiny_encoder),
                          splits=("train", "test"), cache_dir=tmp_path)
    row = data.splits["train"][0]
    assert 1 in row["token_type_ids"] and 0 in row["token_type_ids"]  # premise = segment 0, hypothesis = segment 1
    assert not data.is_labelled("test") and data.is_labelled("train")


def test_parus_batches_hold_two_choices(registry, tiny_encoder, tmp_path):
    from transformers import AutoTokenizer

    data = load_task_data(registry.task("rsg:parus"), AutoTokenizer.from_pretrained(tiny_encoder), cache_dir=tmp_path)
    batch = data.collator([data.splits["train"][i] for i in range(4)])
    assert tuple(batch["input_ids"].shape[:2]) == (4, 2)
    assert batch["labels"].tolist() == list(data.splits["train"]["labels"][:4])


def test_smoke_training_on_the_samples(tiny_encoder, tmp_path):
    tasks = ["rsg:danetqa", "rsg:terra", "rsg:parus", "rsg:rcb"]
    result = smoke_train(tasks, encoder=tiny_encoder, output_dir=tmp_path / "run", steps=4)
    assert result.steps == 4 and result.losses and all(math.isfinite(loss) for loss in result.losses)
    for task_id in tasks:
        assert 0.0 <= result.metrics[task_id]["accuracy"] <= 1.0
