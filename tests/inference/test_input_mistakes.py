"""Mistakes in ``--input``: a misspelt file name gets "did you mean", and stdin that is not JSON Lines says how it was read."""

from __future__ import annotations


def test_a_misspelt_input_file_gets_did_you_mean(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["predict", bert_model_dir, "-t", "sentiment"], ["evaluate", bert_model_dir, "--tasks", "sentiment"]):
        result = cli(*args, "-i", "reveiws.jsonl")
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
        assert "reveiws.jsonl" in result.stderr and "(did you mean 'reviews.jsonl'?)" in result.stderr, result.stderr


def test_stdin_that_is_not_json_lines_says_it_was_read_as_csv(cli, bert_model_dir):
    """One line of text on stdin was "<stdin>: the input has no rows": read as CSV, the line was the header."""
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", "-", input="not json\n")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert ("<stdin>: the input has no rows: it does not start with '{', so it was read as CSV and its first line is the "
            "header; pipe one JSON object per line, or a CSV header and rows") in result.stderr
