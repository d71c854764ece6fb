"""Token classification: words past max_length are reported, and scored as predicted "O" (missed).

The references are computed here by hand, from the trained model's own logits on each row
(tokenized as the task is), over every word of a row: the words the model saw get its
prediction, the words max_length cut off get "O".
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mtcore.data import CutWordsWarning

TAGS = ["O", "B-C", "I-C"]
TASK_ID = "user:ner"
FILLER = "the a one some this that my your his her it is was has on in at".split()
COLORS, FRUIT = ["red", "blue", "green"], ["apple", "pear", "plum", "peach"]
SHORT = 8  # [CLS] + 6 words + [SEP]: rows of 7 words or more lose words


def _row(rng: random.Random, n_words: int, entity_at_end: bool) -> dict[str, Any]:
    tokens, tags = [], []
    while len(tokens) < n_words:
        if rng.random() < 0.3:  # an entity: a colour, sometimes followed by a fruit
            tokens.append(rng.choice(COLORS))
            tags.append("B-C")
            if rng.random() < 0.5:
                tokens.append(rng.choice(FRUIT))
                tags.append("I-C")
        else:
            tokens.append(rng.choice(FILLER))
            tags.append("O")
    tokens, tags = tokens[:n_words], tags[:n_words]
    if entity_at_end:  # a whole entity in the part max_length cuts off
        tokens[-3:], tags[-3:] = ["on", rng.choice(COLORS), rng.choice(FRUIT)], ["O", "B-C", "I-C"]
    return {"tokens": tokens, "label": tags}


@pytest.fixture(scope="module")
def ner_files(tmp_path_factory) -> dict[str, Any]:
    rng = random.Random(5)
    root = tmp_path_factory.mktemp("ner-data")
    train = [_row(rng, rng.randint(3, 12), i % 3 == 0) for i in range(64)]
    validation = [_row(rng, rng.randint(3, 5), False) for _ in range(6)] + [_row(rng, rng.randint(9, 13), True) for _ in range(6)]
    files = {}
    for split, rows in (("train", train), ("validation", validation)):
        path = root / f"ner_{split}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        files[split] = str(path)
    return {"files": files, "validation": validation}


def _config(encoder: Path, files: dict[str, str], max_length: int, steps: int = 40) -> dict[str, Any]:
    task = {"define": {"name": "ner", "kind": "token_classification", "labels": TAGS, "files": files,
                       "metrics": ["token_accuracy", "f1_macro", "f1_entity"]}, "max_length": max_length}
    return {"seed": 3, "cpu": True, "precision": "fp32", "encoder": {"path": str(encoder)}, "tasks": [task],
            "optimizer": {"lr": 5e-3}, "schedule": {"max_steps": steps, "warmup_steps": 1}, "batching": {"batch_size": 8},
            "evaluation": {"every": None, "at_end": True}, "checkpoint": {"every": None, "keep_best": False},
            "logging": {"every": 10, "progress": "none", "plot": False}}


def _train(config: dict[str, Any], output_dir: Path) -> tuple[Any, dict[str, Any], list[str]]:
    from mtcore import Trainer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(config, output_dir=output_dir)
        summary = trainer.train()
    return trainer, summary, [str(w.message) for w in caught if issubclass(w.category, CutWordsWarning)]


def _word_predictions(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> list[list[str | None]]:
    """Per row, per word: the model's tag on the word's first sub-token, None for a word max_length cut off."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for row in rows:
            encoded = tokenizer(row["tokens"], is_split_into_words=True, truncation=True, max_length=max_length, return_tensors="pt")
            logits = model(TASK_ID, input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits[0]
            first: dict[int, str] = {}
            for position, word in enumerate(encoded.word_ids(0)):
                if word is not None:
                    first.setdefault(word, TAGS[int(logits[position].argmax())])
            out.append([first.get(word) for word in range(len(row["tokens"]))])
    return out


def _spans(tags: list[str]) -> set[tuple[int, int]]:
    """Entities of one type in BIO tags, conlleval's way (an I after O starts one)."""
    spans, start = set(), None
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and tag != "I-C":
            spans.add((start, i - 1))
            start = None
        if tag == "B-C" or (tag == "I-C" and start is None):
            start = i
    return spans


def by_hand(predicted: list[list[str | None]], rows: list[dict[str, Any]], cut_as_outside: bool = True) -> dict[str, float]:
    """token_accuracy, f1_macro, f1_entity over every word (cut words predicted "O"), or, with
    ``cut_as_outside=False``, over the words the model saw only (what was scored before)."""
    from sklearn.metrics import f1_score

    golds, preds = [], []
    for words, row in zip(predicted, rows):
        keep = [i for i, tag in enumerate(words) if tag is not None or cut_as_outside]
        golds.append([row["label"][i] for i in keep])
        preds.append([words[i] or "O" for i in keep])
    flat_gold, flat_pred = sum(golds, []), sum(preds, [])
    found = sum(len(_spans(p)) for p in preds)
    gold = sum(len(_spans(g)) for g in golds)
    right = sum(len(_spans(p) & _spans(g)) for p, g in zip(preds, golds))
    return {"token_accuracy": float(np.mean([g == p for g, p in zip(flat_gold, flat_pred)])),
            "f1_macro": float(f1_score(flat_gold, flat_pred, average="macro", zero_division=0)),
            "f1_entity": 2 * right / (found + gold) if found + gold else 0.0}


def _check_metrics(metrics: dict[str, float], expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=1e-9), name


@pytest.fixture(scope="module")
def short_run(small_encoder, ner_files, tmp_path_factory) -> dict[str, Any]:
    """A run of the token task at max_length 8, which cuts words off its long rows."""
    output = tmp_path_factory.mktemp("runs") / "short"
    trainer, summary, cut = _train(_config(small_encoder, ner_files["files"], SHORT), output)
    from transformers import AutoTokenizer

    predicted = _word_predictions(trainer.model, AutoTokenizer.from_pretrained(small_encoder), ner_files["validation"], SHORT)
    return {"trainer": trainer, "summary": summary, "warnings": cut, "predicted": predicted, "output": output}


def test_cut_words_warn_once_per_split_and_count_as_predicted_outside(short_run, ner_files):
    validation = ner_files["validation"]
    cut_rows = [row for row in validation if len(row["tokens"]) > SHORT - 2]
    cut_count = sum(len(row["tokens"]) - (SHORT - 2) for row in cut_rows)
    messages = short_run["warnings"]
    assert len(messages) == 2 and messages[0].startswith(f"task '{TASK_ID}', train split: ")
    assert messages[1] == (f"task '{TASK_ID}', validation split: {len(cut_rows)} of {len(validation)} rows lose {cut_count} word(s) "
                           f"past max_length {SHORT} (the model never sees them; evaluation scores them as predicted 'O'): raise "
                           "the task's max_length (config: tasks.<i>.max_length=N; Python: Task(max_length=N))")
    expected = by_hand(short_run["predicted"], validation)
    seen_only = by_hand(short_run["predicted"], validation, cut_as_outside=False)
    assert all(expected[name] != pytest.approx(seen_only[name]) for name in expected)  # the cut words change every metric
    assert expected["f1_entity"] > 0  # the model finds entities: the missed ones in the cut part weigh
    _check_metrics(short_run["summary"]["tasks"][TASK_ID]["final"], expected)


def test_a_second_run_reads_the_tokenization_cache_and_still_warns(short_run, small_encoder, ner_files, tmp_path, monkeypatch):
    from mtcore.data import tokenize

    def no_tokenizing(*args, **kwargs):
        raise AssertionError("tokenized again: the cache was not used")

    monkeypatch.setattr(tokenize._Encoder, "words", no_tokenizing)
    _, summary, messages = _train(_config(small_encoder, ner_files["files"], SHORT, steps=1), tmp_path / "again")
    assert len(messages) == 2 and messages == short_run["warnings"]
    assert set(summary["tasks"][TASK_ID]["final"]) >= {"token_accuracy", "f1_macro", "f1_entity"}


def test_mt_evaluate_scores_cut_words_as_the_run_did_and_warns(short_run, ner_files):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    result = CliRunner().invoke(app, ["evaluate", str(short_run["output"]), "--json"])
    assert result.exit_code == 0, result.output
    assert f"warning: {short_run['warnings'][1]}" in result.stderr.splitlines()
    metrics = json.loads(result.stdout)["tasks"][TASK_ID]["metrics"]
    _check_metrics(metrics, by_hand(short_run["predicted"], ner_files["validation"]))


def test_a_max_length_that_fits_warns_nothing_and_scores_uncut_rows_as_before(small_encoder, ner_files, tmp_path):
    """No warning and the old numbers where nothing is cut; the same model at max_length 8 scores the
    rows that still fit exactly as at 64, and the long rows with their cut words predicted "O"."""
    from transformers import AutoTokenizer

    from mtcore.data import load_task_data
    from mtcore.plugins import get_component
    from mtcore.predict.evaluate import SingleProcess
    from mtcore.task import Source, Task
    from mtcore.train.evaluation import evaluate

    trainer, summary, messages = _train(_config(small_encoder, ner_files["files"], 64), tmp_path / "long")
    assert messages == []
    tokenizer = AutoTokenizer.from_pretrained(small_encoder)
    validation = ner_files["validation"]
    predicted = _word_predictions(trainer.model, tokenizer, validation, 64)
    assert all(tag is not None for words in predicted for tag in words)
    _check_metrics(summary["tasks"][TASK_ID]["final"], by_hand(predicted, validation))

    fits = [row for row in validation if len(row["tokens"]) <= SHORT - 2]
    (tmp_path / "fits.jsonl").write_text("".join(json.dumps(row) + "\n" for row in fits), encoding="utf-8")
    (tmp_path / "all.jsonl").write_text("".join(json.dumps(row) + "\n" for row in validation), encoding="utf-8")

    def score(name: str, max_length: int) -> tuple[dict[str, float], list[str]]:
        task = Task(name="ner", kind="token_classification", labels=tuple(TAGS), plugin="user", max_length=max_length,
                    metrics=("token_accuracy", "f1_macro", "f1_entity"), sources={"local": Source.local("jsonl", {"validation": name})})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = load_task_data(task, tokenizer, source="local", data_dir=tmp_path, splits=("validation",))
            metrics = evaluate(trainer.model, {TASK_ID: data}, {TASK_ID: task}, SingleProcess(trainer.model.device),
                               split="validation", batch_size=4, metric_fn=lambda metric: get_component("metric", metric))
        prefix = f"{TASK_ID}/"
        return ({k[len(prefix):]: v for k, v in metrics.items()},
                [str(w.message) for w in caught if issubclass(w.category, CutWordsWarning)])

    at_64, none = score("fits.jsonl", 64)
    at_8, also_none = score("fits.jsonl", SHORT)
    assert none == also_none == [] and at_8 == pytest.approx(at_64)
    cut, messages = score("all.jsonl", SHORT)
    assert len(messages) == 1 and f"lose {sum(len(r['tokens']) - (SHORT - 2) for r in validation if r not in fits)} word(s)" in messages[0]
    _check_metrics(cut, by_hand(_word_predictions(trainer.model, tokenizer, validation, SHORT), validation))


def test_a_task_without_an_o_label_scores_cut_words_as_wrong(short_run, small_encoder, ner_files, tmp_path):
    """No "O" to predict: a cut word is never right (token metrics) and finds no entity (f1_entity)."""
    from transformers import AutoTokenizer

    from mtcore.data import load_task_data
    from mtcore.plugins import get_component
    from mtcore.predict.evaluate import SingleProcess
    from mtcore.task import Source, Task
    from mtcore.train.evaluation import evaluate
    from mtcore.train.metrics import entity_spans

    names = ("none", "B-C", "I-C")  # the same head, its first class renamed
    validation = [{"tokens": row["tokens"], "label": [names[TAGS.index(t)] for t in row["label"]]} for row in ner_files["validation"]]
    (tmp_path / "val.jsonl").write_text("".join(json.dumps(row) + "\n" for row in validation), encoding="utf-8")
    task = Task(name="ner", kind="token_classification", labels=names, plugin="user", max_length=SHORT,
                metrics=("token_accuracy", "f1_macro", "f1_entity"), sources={"local": Source.local("jsonl", {"validation": "val.jsonl"})})
    model = short_run["trainer"].model
    with pytest.warns(CutWordsWarning, match=r"validation split: .* evaluation scores them as wrong\): raise"):
        data = load_task_data(task, AutoTokenizer.from_pretrained(small_encoder), source="local", data_dir=tmp_path,
                              splits=("validation",))
    metrics = evaluate(model, {TASK_ID: data}, {TASK_ID: task}, SingleProcess(model.device), split="validation", batch_size=4,
                       metric_fn=lambda metric: get_component("metric", metric))

    from sklearn.metrics import f1_score

    gold = [tag for row in validation for tag in row["label"]]
    pred = [names[TAGS.index(tag)] if tag else "<cut>" for words in short_run["predicted"] for tag in words]
    assert "<cut>" in pred
    assert metrics[f"{TASK_ID}/token_accuracy"] == pytest.approx(np.mean([g == p for g, p in zip(gold, pred)]), abs=1e-9)
    classes = sorted(set(gold) | set(pred) - {"<cut>"})  # a cut word's prediction is no class
    assert metrics[f"{TASK_ID}/f1_macro"] == pytest.approx(f1_score(gold, pred, labels=classes, average="macro", zero_division=0), abs=1e-9)
    found = gold_spans = right = 0
    for words, row in zip(short_run["predicted"], validation):
        predicted = entity_spans(names[TAGS.index(tag)] if tag else "O" for tag in words)
        expected = entity_spans(row["label"])
        found, gold_spans, right = found + len(predicted), gold_spans + len(expected), right + len(predicted & expected)
    assert metrics[f"{TASK_ID}/f1_entity"] == pytest.approx(2 * right / (found + gold_spans), abs=1e-9)


def test_mt_predict_warns_about_cut_words_and_writes_null_for_them(short_run, ner_files, tmp_path):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    rows = [{"idx": i, "tokens": row["tokens"]} for i, row in enumerate(ner_files["validation"])]  # unlabelled, as predicted
    inputs = tmp_path / "rows.jsonl"
    inputs.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(short_run["output"] / "model"), "--input", str(inputs)])
    assert result.exit_code == 0, result.output
    cut_rows = [row for row in rows if len(row["tokens"]) > SHORT - 2]
    cut_count = sum(len(row["tokens"]) - (SHORT - 2) for row in cut_rows)
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: task '{TASK_ID}', {inputs}: {len(cut_rows)} of {len(rows)} rows lose {cut_count} word(s) past max_length "
        f"{SHORT} (the model never sees them; their predicted label is null): raise the task's max_length (config: "
        "tasks.<i>.max_length=N; Python: Task(max_length=N))"]
    written = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [label.count(None) for label in (r["label"] for r in written)] == [max(0, len(r["tokens"]) - (SHORT - 2)) for r in rows]


def test_mt_evaluate_input_names_the_file_whose_rows_lose_words(short_run, ner_files, tmp_path):
    """The warning said "test split", a split the run does not have, where the rows were the --input file's."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    inputs = tmp_path / "labelled.jsonl"
    inputs.write_text(Path(ner_files["files"]["validation"]).read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(short_run["output"]), "--input", str(inputs), "--json"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if "past max_length" in line]
    assert line.startswith(f"warning: task '{TASK_ID}', test split (--input {inputs}): "), line
