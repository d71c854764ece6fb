"""Rows with and without an ``idx`` in one chunk of ``mt predict --input`` are named by file and row
(they were "inputs row 1 ... row 6": positions in the chunk, no file)."""

from __future__ import annotations

import json


def test_mixed_ids_in_one_chunk_name_the_file_and_rows(bert_model_dir, tmp_path, cli):
    path = tmp_path / "some_ids.jsonl"
    rows = [{"review": "good movie"}] * 5 + [{"review": "bad movie", "idx": 77}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = cli("predict", bert_model_dir, "--task", "demo:sentiment", "-i", path)
    assert result.exit_code == 1, result.output
    assert f"{path} row 1 has no idx while {path} row 6 has 77" in result.stderr, result.stderr
