"""``mt predict --input`` chunks are bounded by work, not rows alone: a token task's rows (a probability per tag
per word) and a QA task's (long contexts, several windows) made chunks of 20,000 rows that held 1.3-1.4 GB,
where 20,000 classification rows hold 0.55 GB. The output stays that of one pass: the same rows, labels and text, and the same scores up to float32 rounding (a
batch padded to another length may round the last bits differently on some CPUs' kernels)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from mtcore.task import Task

WORDS = ["good", "bad", "movie", "very", "x"]
QA = Task(name="qa", kind="extractive_qa", plugin="demo", max_length=24, stride=8)
TAGS = Task(name="tags", kind="token_classification", labels=("O", "B", "I"), inputs={"tokens": "words"}, plugin="demo", max_length=8)


@pytest.fixture(scope="module")
def model_dir(tiny_encoders, tmp_path_factory) -> Path:
    from inference.support import make_model

    return make_model(tiny_encoders["bert"], QA, TAGS, seed=7).save_pretrained(tmp_path_factory.mktemp("models") / "budget")


@pytest.fixture()
def chunk_sizes(monkeypatch):
    """The rows of each chunk the ``jsonl`` sink appended."""
    from mtcore.predict import writers

    sizes: list[int] = []
    add = writers.JsonlSink.add
    monkeypatch.setattr(writers.JsonlSink, "add", lambda self, rows: (sizes.append(len(rows)), add(self, rows))[1])
    return sizes


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")


def _same_but_rounding(chunked: str, whole: str) -> None:
    """The same text but for its decimal numbers, and those within 1e-6 of each other."""
    assert NUMBER.sub("#", chunked) == NUMBER.sub("#", whole)
    for a, b in zip(NUMBER.findall(chunked), NUMBER.findall(whole), strict=True):
        assert float(a) == pytest.approx(float(b), rel=1e-6, abs=1e-9), (a, b)


def _predict(cli, model_dir, task, path, *args) -> str:
    result = cli("predict", model_dir, "--task", task, "--input", path, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


QA_ROWS = [{"question": "which one", "context": " ".join(WORDS[(i + j) % 5] for j in range(3 + 4 * (i % 6)))} for i in range(25)]
TAG_ROWS = [{"words": [WORDS[(i * j) % 5] for j in range(1 + i % 12)]} for i in range(25)]


@pytest.mark.parametrize("task, rows", [("demo:tags", TAG_ROWS), ("demo:qa", QA_ROWS)])
@pytest.mark.parametrize("batch_size", ["1", "32"])
def test_chunks_end_at_the_work_budget_and_predict_as_one_pass(cli, model_dir, tmp_path, monkeypatch, chunk_sizes, task, rows,
                                                               batch_size):
    from mtcore.predict import chunks

    path = _jsonl(tmp_path / "in.jsonl", rows)
    monkeypatch.setattr(chunks, "CHUNK_UNITS", 10**9)
    whole = [_predict(cli, model_dir, task, path, "--batch-size", batch_size, "-f", fmt) for fmt in ("jsonl", "csv")]
    assert chunk_sizes == [25]
    chunk_sizes.clear()
    monkeypatch.setattr(chunks, "CHUNK_UNITS", 100)  # a few rows' words (and tags) per chunk; rows alone never end one here
    chunked = [_predict(cli, model_dir, task, path, "--batch-size", batch_size, "-f", fmt) for fmt in ("jsonl", "csv")]
    assert sum(chunk_sizes) == 25 and len(chunk_sizes) > 3, chunk_sizes
    for got, want in zip(chunked, whole, strict=True):  # JSON Lines and CSV
        _same_but_rounding(got, want)
    assert [row["idx"] for row in csv.DictReader(io.StringIO(chunked[1]))] == [str(i) for i in range(25)]
    assert [json.loads(line)["idx"] for line in chunked[0].splitlines()] == list(range(25))


def test_with_the_default_budget_long_sentences_make_smaller_chunks_than_short_reviews(cli, model_dir, bert_model_dir, tmp_path,
                                                                                         chunk_sizes):
    sentences = [{"words": [WORDS[(i + j) % 5] for j in range(200)]} for i in range(600)]  # 200 words, 3 tags: ~800 units a row
    _predict(cli, model_dir, "demo:tags", _jsonl(tmp_path / "tags.jsonl", sentences), "--batch-size", "64", "-o", tmp_path / "t.jsonl")
    assert len(chunk_sizes) == 2 and sum(chunk_sizes) == 600, chunk_sizes  # about 500 such rows a chunk
    chunk_sizes.clear()
    reviews = [{"review": " ".join(WORDS[(i + j) % 5] for j in range(1 + i % 9))} for i in range(600)]
    _predict(cli, bert_model_dir, "demo:sentiment", _jsonl(tmp_path / "reviews.jsonl", reviews), "-o", tmp_path / "r.jsonl")
    assert chunk_sizes == [600]


def test_ids_given_in_one_chunk_and_missing_in_a_later_one_are_refused_first(cli, model_dir, tmp_path, monkeypatch):
    from mtcore.predict import chunks

    monkeypatch.setattr(chunks, "CHUNK_UNITS", 100)  # chunks end by work: the check pass ends them alike
    rows = [{**row, "idx": f"s{i}"} if i < 20 else row for i, row in enumerate(TAG_ROWS)]
    path = _jsonl(tmp_path / "in.jsonl", rows)
    result = cli("predict", model_dir, "--task", "demo:tags", "--input", path, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: {path} row 21 has no idx while {path} row 1 has one; give every row an idx, or none "
                                     "(rows are then numbered from 0)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
