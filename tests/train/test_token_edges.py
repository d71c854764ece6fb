"""Token classification on sentences whose words give no token (an edges audit): a batch of only such sentences trains
on nothing instead of stopping the run, and a word without a token is scored at its own place in the sentence."""

from __future__ import annotations

import json
import random


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _config(make_config, tmp_path, train, dev, **sections):
    _write(tmp_path / "train.jsonl", train)
    _write(tmp_path / "dev.jsonl", dev)
    task = {"define": {"name": "ner", "kind": "token_classification", "labels": ["O", "B-PER", "I-PER"], "inputs": {"label": "tags"},
                       "files": {"train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "dev.jsonl")}}}
    return make_config(tasks=[task], **sections)


def test_a_batch_of_sentences_without_tokens_trains_on_nothing(make_config, tmp_path):
    """'unexpected AttributeError: NoneType has no attribute detach': the batch lost its labels, the head its loss."""
    from mtcore import Trainer

    rows = [{"tokens": ["john", "went", "home"], "tags": ["B-PER", "O", "O"]}] * 24 + [{"tokens": [], "tags": []}] * 8
    rows += [{"tokens": ["\u200b", "\u00ad"], "tags": ["O", "O"]}] * 8
    random.Random(0).shuffle(rows)
    config = _config(make_config, tmp_path, rows, rows[:8], batching={"batch_size": 8, "group_by_length": True},
                     schedule={"epochs": 1, "warmup_steps": 0}, checkpoint={"every": None, "at_end": False})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["steps"] >= 5 and summary["final"]["metrics"]["user:ner/token_accuracy"] >= 0
