"""``mt predict --input`` in chunks says once how many words the file lost to ``max_length`` (each chunk
warned with its own counts: a line per 20,000 rows)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from mtcore.data.tokenize import CutWordsWarning
from mtcore.task import Task

WORDS = ["good", "bad", "movie", "very", "x"]
TAGS = Task(name="tags", kind="token_classification", labels=("O", "B", "I"), inputs={"tokens": "words"}, plugin="demo", max_length=8)


def test_cut_words_are_one_warning_with_the_file_s_totals(tiny_encoders, tmp_path: Path):
    from inference.support import make_model

    from mtcore.model import MultitaskModel
    from mtcore.predict.writing import predict_input

    model_dir = make_model(tiny_encoders["bert"], TAGS, seed=3).save_pretrained(tmp_path / "model")
    model = MultitaskModel.from_pretrained(model_dir)
    rows = [{"words": [WORDS[(i * j) % 5] for j in range(1 + i % 12)]} for i in range(25)]  # rows of 7+ words lose some
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    def cut_warnings(chunk_rows: int) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predict_input(model, "demo:tags", TAGS, str(path), batch_size=4, output=tmp_path / f"p{chunk_rows}.jsonl", chunk_rows=chunk_rows)
        return [str(w.message) for w in caught if issubclass(w.category, CutWordsWarning)]

    whole, chunked = cut_warnings(100), cut_warnings(4)
    assert len(whole) == 1 and chunked == whole, (whole, chunked)  # seven chunks, one line, the same counts
    assert " of 25 rows lose " in whole[0]
