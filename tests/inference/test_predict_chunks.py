"""``mt predict --input FILE`` predicts the file chunk by chunk; the output is what one pass gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtcore.model import MultitaskModel
from mtcore.predict.predictor import predict

ROWS = [{"review": text} for text in ("good movie", "bad movie", "хороший фильм", "so so", "great", "awful, just awful", "fine")]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_chunks_give_the_predictions_of_one_pass(cli, bert_model_dir, tmp_path, monkeypatch):
    from mtcore.predict import chunks

    monkeypatch.setattr(chunks, "CHUNK_ROWS", 3)  # 7 rows: chunks of 3, 3 and 1
    result = cli("predict", bert_model_dir, "--task", "demo:sentiment", "--input", _jsonl(tmp_path / "in.jsonl", ROWS))
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    expected = predict(MultitaskModel.from_pretrained(bert_model_dir), "demo:sentiment", ROWS)
    assert [row["idx"] for row in printed] == list(range(7)) == expected.idx  # numbered across chunks
    assert [row["label"] for row in printed] == expected.labels
    for row, probabilities in zip(printed, expected.probabilities):
        assert row["probabilities"] == pytest.approx(probabilities, abs=1e-5)


def test_ids_given_in_one_chunk_and_missing_in_another_are_refused(cli, bert_model_dir, tmp_path, monkeypatch):
    from mtcore.predict import chunks

    monkeypatch.setattr(chunks, "CHUNK_ROWS", 3)
    rows = [{**row, "idx": i} if i < 3 else row for i, row in enumerate(ROWS)]
    path = _jsonl(tmp_path / "in.jsonl", rows)
    result = cli("predict", bert_model_dir, "--task", "demo:sentiment", "--input", path)
    assert result.exit_code == 1  # a data error
    assert result.stderr.strip() == (f"error: {path} row 4 has no idx while {path} row 1 has one; give every row an idx, or none "
                                     "(rows are then numbered from 0)")


def test_ids_mixed_over_chunks_are_refused_for_a_task_with_preprocessing_too(cli, trained_run, tmp_path, monkeypatch):
    """PARus builds its rows by a preprocessing step, yet keeps the raw idx: later rows without one were numbered
    0, 1, ... again, repeating the ids of the first chunk's rows (exit 0)."""
    from mtcore.predict import chunks

    monkeypatch.setattr(chunks, "CHUNK_ROWS", 2)
    sample = Path(__file__).resolve().parents[2] / "plugins/mt-russian-superglue/mt_russian_superglue/sample/PARus/test.jsonl"
    rows = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines()[:4]]
    rows = [row if i < 2 else {k: v for k, v in row.items() if k != "idx"} for i, row in enumerate(rows)]
    path = _jsonl(tmp_path / "parus.jsonl", rows)
    result = cli("predict", trained_run, "--task", "rsg:parus", "--input", path)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (f"error: {path} row 3 has no idx while {path} row 1 has one; give every row an idx, or none "
                                     "(rows are then numbered from 0)")
