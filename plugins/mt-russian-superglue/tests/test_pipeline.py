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


def test_russe_and_rwsd_rows_carry_their_targets_as_spans_a_spans_head_pools(registry, tiny_encoder, tmp_path):
    from transformers import AutoTokenizer

    from mt_russian_superglue.preprocess import preprocess_russe, preprocess_rwsd

    russe = preprocess_russe({"word": "лист", "sentence1": "Упал жёлтый лист.", "start1": 12, "end1": 16,
                              "sentence2": "Лист бумаги.", "start2": 0, "end2": 4, "label": True})
    assert [russe["text"][s:e] for s, e in [russe["spans"][0]]] == ["лист"]
    assert russe["text"] == "лист: Упал жёлтый *лист*." and russe["spans"][1] == [1, 5, 1]
    assert russe["text_pair"][1:5] == "Лист"
    rwsd = preprocess_rwsd({"text": "Кот  не догнал мышь, потому что он устал.", "label": True,
                            "target": {"span1_text": "Кот", "span1_index": 0, "span2_text": "он", "span2_index": 6}})
    assert [rwsd["text"][s:e] for s, e in rwsd["spans"]] == ["Кот", "он"]
    assert rwsd["text"] == "[Кот] не догнал мышь, потому что *он* устал."
    unmarked = preprocess_russe({"word": "лист", "sentence1": "Упал.", "start1": 40, "end1": 44,
                                 "sentence2": "Лист.", "start2": 0, "end2": 4, "label": -1})
    assert unmarked["spans"][0] == [0, 0]  # a test row whose offsets mark no word: an empty span, pooled as zeros

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    for task_id in ("rsg:russe", "rsg:rwsd"):
        task = registry.task(task_id).replace(head="mlp", head_options={"pooling": "spans"})
        rows = load_task_data(task, tokenizer, cache_dir=tmp_path, splits=("train",)).splits["train"]
        for row in rows.select(range(min(8, rows.num_rows))):
            assert len(row["span_tokens"]) == 2 and all(0 < first <= last for first, last in row["span_tokens"])
    result = smoke_train(["rsg:russe", "rsg:rwsd"], encoder=tiny_encoder, output_dir=tmp_path / "run", steps=3,
                         overrides=["tasks.0.head=mlp", "tasks.0.head_options.pooling=spans",
                                    "tasks.1.head_options.pooling=spans"])
    assert result.steps == 3 and all(math.isfinite(loss) for loss in result.losses)
