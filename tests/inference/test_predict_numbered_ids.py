"""Rows without an ``idx`` given to a submission writer (a plugin's, such as ``rsg``, which writes the ids as
the official ones) are numbered 0..N-1 as before, but no longer silently: one warning line says so and how
to give ids. mtcore's own writers (``jsonl``, ``csv``) and a writer registered with ``needs_ids=False`` stay quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROWS = [{"review": text} for text in ("good movie", "bad movie", "so so", "great", "awful")]


def _write_ids(task, rows, output_path):
    Path(output_path).write_text("".join(f"{row['idx']}\t{row['label']}\n" for row in rows))
    return [Path(output_path)]


@pytest.fixture(scope="module", autouse=True)
def writers():
    from mtcore.plugins import register_component

    register_component("writer", "ids_test", _write_ids, "submission-like: one id and label per line")
    register_component("writer", "report_test", _write_ids, "needs no ids", needs_ids=False)


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_numbered_rows_for_a_submission_writer_are_one_warning(cli, bert_model_dir, tmp_path, monkeypatch):
    from mtcore.predict import chunks

    monkeypatch.setattr(chunks, "CHUNK_ROWS", 2)  # numbered across chunks, counted once
    path = _jsonl(tmp_path / "in.jsonl", ROWS)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", path, "-f", "ids_test", "-o", tmp_path / "sub.tsv")
    assert result.exit_code == 0, result.output
    assert _warnings(result) == [f"warning: {path}: none of its 5 rows has an 'idx': they were numbered 0..4 in file order, and "
                                 "the user:ids_test writer writes those numbers as their ids; give each row its own id in an 'idx' "
                                 'field (e.g. {"idx": 17, ...}) for a submission']
    assert [line.split("\t")[0] for line in (tmp_path / "sub.tsv").read_text().splitlines()] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("case", ["ids given", "jsonl", "csv", "writer needs no ids"])
def test_no_warning_where_ids_are_given_or_not_needed(cli, bert_model_dir, tmp_path, case):
    rows = [{**row, "idx": f"q{i}"} for i, row in enumerate(ROWS)] if case == "ids given" else ROWS
    path = _jsonl(tmp_path / "in.jsonl", rows)
    writer = {"ids given": "ids_test", "jsonl": "jsonl", "csv": "csv", "writer needs no ids": "report_test"}[case]
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", path, "-f", writer, "-o", tmp_path / "out.txt")
    assert result.exit_code == 0, result.output
    assert _warnings(result) == []
