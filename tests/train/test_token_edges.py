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


def test_a_word_without_a_token_is_scored_in_its_place_so_entities_around_it_stay():
    """'john <zero-width> smith' tagged I-PER O I-PER (IOB1: two people) was scored as I-PER I-PER O (one person):
    the unseen word's tag went to the row's end. conlleval on the prediction file gives what mtcore now reports."""
    from mtcore.train.evaluation import with_cut_words
    from mtcore.task import Task

    task = Task(name="ner", kind="token_classification", labels=("O", "B-PER", "I-PER"))
    rows = [{"unseen_words": [1], "unseen_labels": [0], "cut_labels": [2]}, {"unseen_words": [], "unseen_labels": [], "cut_labels": []}]
    # row 0: [CLS] john smith ##s [SEP] -> first tokens of john, smith; one more word cut at the end
    results = [(0, [0, 2, 1, 1, 0], [-100, 2, 2, -100, -100]), (1, [0, 1, 0], [-100, 1, -100])]
    (_, pred0, ref0), (_, pred1, ref1) = with_cut_words(results, task, rows)
    assert ref0.tolist() == [2, 0, 2, 2] and pred0.tolist() == [2, 0, 1, 0]  # john, <zw>, smith, the cut word
    assert list(ref1) == [-100, 1, -100] and list(pred1) == [0, 1, 0]  # nothing left out: as it was
