"""A CoNLL file given to ``mt predict -i`` is read with the task's own reading options: its ``columns`` (the
words were taken from the first column whatever the task said) and its name for the words (a task whose words
field is not ``tokens`` could not predict from a CoNLL file at all); a file may hold the words alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtcore.task import Task

SENTENCES = [["good", "movie", "x"], ["bad", "bad"], ["very", "good", "movie", "very", "bad", "x", "x"]]
SOURCES = {"local": {"kind": "local", "format": "conll", "files": {"train": "train.conll"}, "sep": "\t",
                     "columns": [None, "words", "pos", "label"]}}  # an id column first, as CoNLL-U has
DEFINED = Task.from_dict({"name": "conll_words", "kind": "token_classification", "labels": ["O", "B", "I"],
                          "inputs": {"tokens": "words"}, "max_length": 16, "sources": SOURCES}, plugin="user")
BARE = Task(name="bare_words", kind="token_classification", labels=("O", "B", "I"), inputs={"tokens": "words"}, plugin="user",
            max_length=16)  # no sources: a CoNLL file's first column is its words


@pytest.fixture(scope="module")
def model_dir(tiny_encoders, tmp_path_factory) -> Path:
    from inference.support import make_model
    from mtcore.plugins import register_task

    register_task(DEFINED)  # the model's manifest keeps no sources: the registered task's apply
    return make_model(tiny_encoders["bert"], DEFINED, BARE, seed=5).save_pretrained(tmp_path_factory.mktemp("models") / "conll")


def _conll(path: Path, columns) -> Path:
    """The sentences, a line per word: ``columns(i, word)`` gives the line's fields (tab-separated)."""
    lines = []
    for sentence in SENTENCES:
        lines += ["\t".join(columns(i, word)) for i, word in enumerate(sentence)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _from_jsonl(cli, model_dir, task, tmp_path) -> list[dict]:
    """What the same sentences predict as JSON Lines rows of the task's raw field."""
    path = tmp_path / "words.jsonl"
    path.write_text("".join(json.dumps({"words": words}) + "\n" for words in SENTENCES), encoding="utf-8")
    result = cli("predict", model_dir, "-t", task, "-i", path)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("layout", ["every column", "words alone", "columns up to the words"])
def test_the_tasks_columns_and_words_field_apply(cli, model_dir, tmp_path, layout):
    columns = {"every column": lambda i, w: [str(i + 1), w, "NN", "O"],  # gold tags: dropped
               "words alone": lambda i, w: [w],
               "columns up to the words": lambda i, w: [str(i + 1), w]}[layout]
    path = _conll(tmp_path / "new.conll", columns)
    result = cli("predict", model_dir, "-t", "user:conll_words", "-i", path)
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["tokens"] for row in printed] == SENTENCES  # the words, not the ids of the first column
    assert printed == _from_jsonl(cli, model_dir, "user:conll_words", tmp_path)


def test_the_python_function_reads_a_conll_file_as_the_task_does(model_dir, tmp_path):
    from mtcore.model import MultitaskModel
    from mtcore.predict import predict

    model = MultitaskModel.from_pretrained(model_dir)
    path = _conll(tmp_path / "new.conll", lambda i, w: [str(i + 1), w, "NN", "O"])
    from_file = predict(model, DEFINED, str(path))
    from_rows = predict(model, DEFINED, [{"words": words} for words in SENTENCES])
    assert from_file.labels == from_rows.labels and [e["tokens"] for e in from_file.extras] == SENTENCES


def test_a_task_without_sources_takes_the_first_column_as_its_words_field(cli, model_dir, tmp_path):
    path = _conll(tmp_path / "new.conll", lambda i, w: [w, "O"])
    result = cli("predict", model_dir, "-t", "user:bare_words", "-i", path, "-o", tmp_path / "tagged.conll", "-f", "conll")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tagged.conll").read_text(encoding="utf-8").split("\n\n")[0].split("\n")[0].split("\t")[0] == "good"
    expected = _from_jsonl(cli, model_dir, "user:bare_words", tmp_path)
    result = cli("predict", model_dir, "-t", "user:bare_words", "-i", path)
    assert [json.loads(line) for line in result.stdout.splitlines()] == expected


def test_a_file_in_another_layout_is_one_line(cli, model_dir, tmp_path):
    path = _conll(tmp_path / "new.conll", lambda i, w: [str(i + 1), w, "NN", "B-NP", "O"])  # a column more than the task's
    result = cli("predict", model_dir, "-t", "user:conll_words", "-i", path, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {path}: its lines have 5 columns, and the task reads CoNLL files of 4 (null, words, pos, label); "
                     "give the words alone (one per line), its first 2 columns (null, words), or every column"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.conll"]


def test_predicting_a_token_task_tokenizes_its_rows_once(model_dir, tmp_path, monkeypatch):
    """The words' first sub-tokens come with the tokenized (and cached) split: predict used to tokenize every row a
    second time for them, cache hit or not (a cpuperf audit: 22% of predict's time on 8000 sentences)."""
    from mtcore.model import MultitaskModel
    from mtcore.predict import predict

    model = MultitaskModel.from_pretrained(model_dir)
    path = _conll(tmp_path / "new.conll", lambda i, w: [str(i + 1), w, "NN", "O"])
    before = predict(model, DEFINED, str(path))
    calls = []
    original = type(model.tokenizer).__call__
    monkeypatch.setattr(type(model.tokenizer), "__call__", lambda self, *a, **k: calls.append(a[:1]) or original(self, *a, **k))
    again = predict(model, DEFINED, str(path))
    assert len(calls) <= 1 and again.labels == before.labels and again.probabilities == before.probabilities
    assert [len(labels) for labels in again.labels] == [len(words) for words in SENTENCES]
    assert all(label in ("O", "B", "I") for labels in again.labels for label in labels)


def test_a_csv_of_token_predictions_takes_a_sentence_without_words(cli, model_dir, tmp_path):
    """Its empty probabilities made the CSV writer take the task for one with a probability per class, and the other rows'
    per-word lists then ended in "unexpected TypeError: float() argument ... not 'list'"."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"words": ["good", "movie"]}\n{"words": []}\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    result = cli("predict", model_dir, "--task", "user:conll_words", "--input", rows, "-o", out)
    assert result.exit_code == 0, result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].split(",")[:2] == ["idx", "label"] and not any(c.startswith("p_") for c in lines[0].split(",")) and len(lines) == 3
