"""An official XNLI file given to ``mt predict --input`` / ``mt evaluate --input``: its plugin's loader reads it (renaming
sentence1 -> premise and keeping the ``ru`` rows), so as plain rows it lacks the fields. The line said to map the task's
inputs (which would score every language); it now names the loader and the way that reads the file."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.testing.smoke import smoke_train

SAMPLE = Path(__file__).resolve().parents[1] / "mt_nli" / "sample"


def test_an_official_xnli_file_as_input_names_the_way_that_reads_it(tiny_encoder, tmp_path):
    run = smoke_train(["nli:xnli-ru"], encoder=tiny_encoder, output_dir=tmp_path / "run", steps=1, evaluate=False).output_dir
    official = SAMPLE / "XNLI-1.0" / "xnli.test.tsv"
    way = ("an official file of nli:xnli-ru is read by its plugin's loader (mt_nli.loaders:load_xnli_official), not as plain "
           f"rows: give the folder holding it instead of --input, with --split test --source local --data-dir {SAMPLE}")
    predicted = CliRunner().invoke(app, ["predict", str(run), "--task", "nli:xnli-ru", "--input", str(official), "-o", str(tmp_path / "p.jsonl")])
    assert predicted.exit_code == 1 and len(predicted.stderr.strip().splitlines()) == 1, predicted.output
    assert "no field 'premise' (text)" in predicted.stderr and predicted.stderr.strip().endswith(way)
    assert not (tmp_path / "p.jsonl").exists()
    scored = CliRunner().invoke(app, ["evaluate", str(run), "--tasks", "nli:xnli-ru", "--input", str(official)])
    assert scored.exit_code == 1 and len(scored.stderr.strip().splitlines()) == 1, scored.output
    assert "no field 'premise' for text" in scored.stderr and scored.stderr.strip().endswith(way)  # the file's split, not the run's
    assert "map it in the task's inputs" not in scored.stderr  # a trained task's inputs are its plugin's

    # the way the line gives, as it gives it: the folder above the file, read by the loader (Russian rows only, pairID as idx)
    given = shlex.split(predicted.stderr.strip().rsplit(" with ", 1)[1])
    routed = CliRunner().invoke(app, ["predict", str(run), "--task", "nli:xnli-ru", *given])
    assert routed.exit_code == 0, routed.output
    russian = [line.split("\t") for line in official.read_text(encoding="utf-8").splitlines()[1:]]
    header = official.read_text(encoding="utf-8").splitlines()[0].split("\t")
    expected = [int(row[header.index("pairID")]) for row in russian if row[header.index("language")] == "ru"]
    assert [json.loads(line)["idx"] for line in routed.stdout.splitlines()] == expected and expected

    # a file of another name (your own rows missing a field): the field is the whole story, no loader to point to
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"hypothesis": "b"}\n', encoding="utf-8")
    for command in (["evaluate", str(run), "--tasks", "nli:xnli-ru"], ["predict", str(run), "--task", "nli:xnli-ru"]):
        refused = CliRunner().invoke(app, [*command, "--input", str(mine)])
        assert refused.exit_code == 1 and "no field 'premise'" in refused.stderr, refused.output
        assert "plugin's loader" not in refused.stderr and "--data-dir" not in refused.stderr, refused.stderr


def test_a_data_dir_one_level_too_deep_names_the_folder_above(tmp_path):
    """data_dir: .../ru/simple (the folder of the files) for the layout ru/simple/train.jsonl said "did you mean
    'train.jsonl'?", and renaming could not help; XNLI-1.0 for the folder holding XNLI-1.0/ and XNLI-MT-1.0/ listed files."""
    import yaml

    for task, deep in (("nli:headline-cause-simple", SAMPLE / "ru" / "simple"), ("nli:xnli-ru", SAMPLE / "XNLI-1.0")):
        config = tmp_path / "run.yaml"
        entry = {"id": task, "source": "local", "data_dir": str(deep)}
        config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [entry], "schedule": {"max_steps": 2}}))
        result = CliRunner().invoke(app, ["check", str(config)])
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
        assert f"data_dir points inside the data's layout; give the folder above, data_dir: {SAMPLE}" in result.stderr
        assert "did you mean" not in result.stderr
        entry["data_dir"] = str(SAMPLE)  # what the line says
        config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [entry], "schedule": {"max_steps": 2}}))
        assert CliRunner().invoke(app, ["check", str(config)]).exit_code == 0
