"""Mistakes in ``--input``: a misspelt file name gets "did you mean" (a usage error, exit 2, as a misspelt RUN or config
is; it was exit 1, said after the model had loaded), and stdin that is not JSON Lines says how it was read."""

from __future__ import annotations


def test_a_misspelt_input_file_gets_did_you_mean(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["predict", bert_model_dir, "-t", "sentiment"], ["evaluate", bert_model_dir, "--tasks", "sentiment"]):
        result = cli(*args, "-i", "reveiws.jsonl")
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
        assert "reveiws.jsonl" in result.stderr and "(did you mean 'reviews.jsonl'?)" in result.stderr, result.stderr
        assert result.stderr.startswith("error: --input "), result.stderr
        folder = cli(*args, "-i", str(tmp_path))
        assert folder.exit_code == 2 and f"--input {tmp_path}: is a folder; pass one input file" in folder.stderr, folder.output


def test_a_missing_input_is_said_before_the_model_loads(cli, tmp_path):
    """A model folder that cannot load (its weights damaged) is not reached: the input named on the command line is
    checked first, as the RUN's own path is."""
    run = tmp_path / "model"
    run.mkdir()
    (run / "mtcore.json").write_text("{damaged", encoding="utf-8")
    for args in (["predict", str(run), "-t", "sentiment"], ["evaluate", str(run), "--tasks", "sentiment"]):
        result = cli(*args, "-i", str(tmp_path / "rows.jsonl"))
        assert result.exit_code == 2 and "--input" in result.stderr and "no such input file" in result.stderr, result.output
        assert "mtcore.json" not in result.stderr


def test_stdin_that_is_not_json_lines_says_it_was_read_as_csv(cli, bert_model_dir):
    """One line of text on stdin was "<stdin>: the input has no rows": read as CSV, the line was the header."""
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", "-", input="not json\n")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert ("<stdin>: the input has no rows: it does not start with '{', so it was read as CSV and its first line is the "
            "header; pipe one JSON object per line, or a CSV header and rows") in result.stderr


def test_an_empty_input_file_is_said_as_such_by_evaluate_and_predict(cli, trained_run, tmp_path):
    """mt evaluate -i empty.jsonl said 'the test split has no rows'."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for command in (["evaluate", trained_run, "--tasks", "rsg:terra"], ["predict", trained_run, "--task", "rsg:terra"]):
        result = cli(*command, "-i", empty)
        assert result.exit_code == 2
        assert result.stderr.strip() == f"error: --input {empty}: the input file is empty; give one JSON object per line (jsonl) or a CSV header and rows"


def test_evaluating_a_run_does_not_repeat_what_its_training_was_warned_about(cli, tmp_path):
    """An unused sampler (loss strategy 'sum' trains every task each step) was warned about on every mt evaluate."""
    from mtcore.testing import smoke_train

    run = smoke_train(["rsg:terra", "rsg:parus"], output_dir=tmp_path / "run", steps=2, batch_size=4,
                      overrides=["loss.strategy=sum", "sampler.name=temperature"]).output_dir
    result = cli("evaluate", run, "--tasks", "rsg:terra")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr, result.stderr
