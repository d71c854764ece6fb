"""``mt evaluate --input`` read a CSV with the comma while ``mt predict --input`` used the task's reader options (the
RuTweetCorp files' ``;`` and no header); both now read it as the task's files are, and an official file, whose label
its plugin's loader derives, gets the way that reads it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.testing.smoke import smoke_train

SAMPLE = Path(__file__).resolve().parents[1] / "mt_sentiment" / "sample"


def test_evaluate_and_predict_read_an_input_csv_alike_and_name_the_loader_for_an_official_file(tiny_encoder, tmp_path):
    run = smoke_train(["sentiment:mokoron"], encoder=tiny_encoder, output_dir=tmp_path / "run", steps=1, evaluate=False).output_dir
    official = SAMPLE / "mokoron" / "negative.csv"
    lines = []
    for command in (["predict", str(run), "--task", "sentiment:mokoron"], ["evaluate", str(run), "--tasks", "sentiment:mokoron"]):
        result = CliRunner().invoke(app, [*command, "--input", str(official)])
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
        lines.append(result.stderr.strip())
    for line in lines:  # read with ';' and no header (columns 0..11), not as one comma field
        assert "no field 'ttext'" in line and "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11" in line and "sep=" not in line, line
        assert "is read by its plugin's loader (mt_sentiment.loaders:load_mokoron), not as plain rows" in line
        assert "--source local --data-dir FOLDER" in line
