"""The tasks run through mtcore's whole pipeline: tokenized data, batches, a smoke training."""

from __future__ import annotations

import math

from mtcore.data import load_task_data
from mtcore.testing.smoke import smoke_train

TASKS = ["sentiment:mokoron", "sentiment:rusentiment", "sentiment:sentiment"]


def test_mokoron_tokenizes_single_texts(registry, tiny_encoder, tmp_path):
    from transformers import AutoTokenizer

    data = load_task_data(registry.task("sentiment:mokoron"), AutoTokenizer.from_pretrained(tiny_encoder),
                          splits=("train", "validation", "test"), cache_dir=tmp_path)
    assert {split: data.num_rows(split) for split in data.splits} == {"train": 150, "validation": 50, "test": 50}
    assert data.is_labelled("test")  # our own split of a labelled corpus: its test split keeps labels
    batch = data.collator([data.splits["train"][i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 4 and set(batch["labels"].tolist()) <= {0, 1}


def test_smoke_training_on_the_samples(tiny_encoder, tmp_path):
    result = smoke_train(TASKS, encoder=tiny_encoder, output_dir=tmp_path / "run", steps=4)
    assert result.steps == 4 and result.losses and all(math.isfinite(loss) for loss in result.losses)
    for task_id in TASKS:
        assert 0.0 <= result.metrics[task_id]["accuracy"] <= 1.0
