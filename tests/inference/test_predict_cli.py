"""``mt predict``: same results as ``predict()``, writers, stdin, one-line errors with exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from inference.support import PAIRS, REVIEWS

from mtcore.model import MultitaskModel
from mtcore.predict.predictor import predict


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_mt_predict_equals_model_predict(cli, bert_model_dir, reviews_file):
    result = cli("predict", bert_model_dir, "--task", "demo:sentiment", "--input", reviews_file, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    printed = _jsonl(result.stdout)
    model = MultitaskModel.from_pretrained(bert_model_dir)
    expected = model.predict("demo:sentiment", REVIEWS) if hasattr(model, "predict") else predict(model, "demo:sentiment", REVIEWS)
    assert [row["label"] for row in printed] == expected.labels
    assert [row["idx"] for row in printed] == expected.idx
    np.testing.assert_allclose([row["probabilities"] for row in printed], expected.probabilities, atol=1e-5)


def test_csv_output_file_and_stdin_input(cli, bert_model_dir, tmp_path):
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in PAIRS)
    out = tmp_path / "preds" / "nli.csv"
    result = cli("predict", bert_model_dir, "-t", "nli", "--input", "-", "--format", "csv", "--output", out, input=lines)
    assert result.exit_code == 0, result.output
    assert f"wrote {len(PAIRS)} predictions" in result.stderr and result.stdout == ""
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = predict(MultitaskModel.from_pretrained(bert_model_dir), "demo:nli", PAIRS)
    assert [r["label"] for r in rows] == expected.labels
    assert list(rows[0]) == ["idx", "label", "p_entailment", "p_neutral", "p_contradiction"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary files left
    with_bom = cli("predict", bert_model_dir, "-t", "nli", "--input", "-", input="\ufeff" + lines)  # as the official RSG files start
    assert with_bom.exit_code == 0, with_bom.output
    assert [json.loads(line)["label"] for line in with_bom.stdout.splitlines()] == expected.labels


def test_csv_input_file(cli, bert_model_dir, tmp_path):
    path = tmp_path / "pairs.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["premise", "hypothesis"])
        writer.writeheader()
        writer.writerows(PAIRS)
    result = cli("predict", bert_model_dir, "--task", "nli", "--input", path)
    assert result.exit_code == 0, result.output
    assert len(_jsonl(result.stdout)) == len(PAIRS)


def test_split_and_rsg_submission_files(cli, trained_run, tmp_path):
    out = tmp_path / "submission"
    for task in ("parus", "terra", "rsg:lidirus"):
        result = cli("predict", trained_run, "--task", task, "--split", "test", "--format", "rsg", "--output", out)
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["LiDiRus.jsonl", "PARus.jsonl", "TERRa.jsonl"]
    parus = _jsonl((out / "PARus.jsonl").read_text(encoding="utf-8"))
    terra = _jsonl((out / "TERRa.jsonl").read_text(encoding="utf-8"))
    assert parus and all(set(r) == {"idx", "label"} and r["label"] in (0, 1) for r in parus)
    assert terra and all(r["label"] in ("entailment", "not_entailment") for r in terra)


def test_all_tasks_of_a_run_in_one_command(cli, trained_run, tmp_path):
    """--task all: every head, and the registered tasks another head serves (LiDiRus with the TERRa head)."""
    out = tmp_path / "all"
    result = cli("predict", trained_run, "--task", "all", "--split", "test", "--format", "rsg", "--output", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["LiDiRus.jsonl", "PARus.jsonl", "TERRa.jsonl"]
    separate = tmp_path / "separate"
    cli("predict", trained_run, "--task", "rsg:lidirus", "--split", "test", "--format", "rsg", "--output", separate)
    assert (out / "LiDiRus.jsonl").read_text() == (separate / "LiDiRus.jsonl").read_text()
    folder = tmp_path / "jsonl"
    listed = cli("predict", trained_run, "--task", "terra,parus", "--split", "validation", "--output", folder)
    assert listed.exit_code == 0, listed.output
    assert sorted(p.name for p in folder.iterdir()) == ["rsg_parus.jsonl", "rsg_terra.jsonl"]
    assert all(_jsonl(p.read_text(encoding="utf-8")) for p in folder.iterdir())
    skipping = cli("predict", trained_run, "--task", "all", "--split", "validation", "--output", tmp_path / "val")
    assert skipping.exit_code == 0 and "note: skipped rsg:lidirus: its sample source has no 'validation' split" in skipping.stderr
    assert sorted(p.name for p in (tmp_path / "val").iterdir()) == ["rsg_parus.jsonl", "rsg_terra.jsonl"]
    as_file = cli("predict", trained_run, "--task", "rsg:terra", "--split", "test", "--format", "rsg", "--output", tmp_path / "sub.jsonl")
    assert as_file.exit_code == 2 and "the rsg:rsg writer writes a folder of files, and --output" in as_file.stderr, as_file.stderr
    assert not (tmp_path / "sub.jsonl").exists()  # it made a folder named sub.jsonl
    twice = cli("predict", trained_run, "--task", "terra, terra,", "--split", "test", "--output", tmp_path / "once.jsonl")
    assert twice.exit_code == 0 and twice.stderr.count("wrote") == 1  # one name, once: a file, not a folder
    for args, message in [(["--task", "all", "--split", "test"], "several tasks write one file each: pass --output <folder>"),
                          (["--task", "terra,parus", "--input", "x.jsonl", "-o", str(folder)], "use --split, not --input"),
                          (["--task", "all", "--split", "test", "-o", str(tmp_path / "p.csv")], "--output names a folder, not"),
                          (["--task", "all", "--split", "test", "--format", "conll", "-o", str(tmp_path / "p.conll")],
                           "--output names a folder, not"),  # a folder named p.conll was made
                          (["--task", "all", "--split", "test", "-o", str(tmp_path / "nbest"), "--n-best", "3"],  # was ignored
                           "--n-best lists answers of extractive QA tasks, and none of rsg:terra, rsg:parus")]:
        refused = cli("predict", trained_run, *args)
        assert refused.exit_code == 2 and message in refused.stderr, refused.stderr


def test_a_split_of_a_model_of_several_tasks_without_task_names_the_ways_to_choose(cli, trained_run):
    """With --split several tasks predict at once (--task all, the README's example), which the message now says."""
    result = cli("predict", trained_run, "--split", "test")
    assert result.exit_code == 2 and "choose one with --task, or several: --task all, or --task A,B" in result.stderr


def test_a_task_served_by_another_head_reads_the_runs_files_not_the_sample(cli, trained_run, tmp_path):
    """rsg:lidirus (never trained; predicted by the rsg:terra head) came from the plugin's 50-row sample while TERRa
    came from the run's official files: a submission folder with a synthetic LiDiRus.jsonl, and no word said."""
    import shutil

    from mtcore.testing import smoke_train

    sample = Path(__import__("mt_russian_superglue").__file__).parent / "sample"
    root = tmp_path / "RSG"
    for name in ("TERRa", "LiDiRus"):
        shutil.copytree(sample / name, root / name)
    lidirus = root / "LiDiRus" / "LiDiRus.jsonl"
    lidirus.write_text("".join(lidirus.read_text(encoding="utf-8").splitlines(keepends=True)[:7]), encoding="utf-8")
    run = smoke_train(["rsg:terra"], output_dir=tmp_path / "run", steps=2, source="local", overrides=[f"tasks.0.data_dir={root}"],
                      evaluate=False).output_dir
    out = tmp_path / "submission"
    result = cli("predict", run, "--task", "all", "--split", "test", "--format", "rsg", "--output", out)
    assert result.exit_code == 0, result.output
    assert len((out / "LiDiRus.jsonl").read_text(encoding="utf-8").splitlines()) == 7
    assert "wrote 7 predictions of rsg:lidirus (head rsg:terra; local test split)" in result.stderr
    assert "warning" not in result.stderr
    shutil.rmtree(root / "LiDiRus")  # a folder with the run's own tasks only: LiDiRus is left out, not the whole submission
    partial = cli("predict", run, "--task", "all", "--split", "test", "--format", "rsg", "--output", tmp_path / "partial")
    assert partial.exit_code == 0, partial.output
    assert sorted(p.name for p in (tmp_path / "partial").iterdir()) == ["TERRa.jsonl"]
    assert "warning: left out rsg:lidirus (predicted with the rsg:terra head): " in partial.stderr
    sampled = cli("predict", trained_run, "--task", "all", "--split", "test", "--format", "rsg", "--output", tmp_path / "from-sample")
    assert sampled.exit_code == 0, sampled.output
    assert ("warning: rsg:terra, rsg:parus, rsg:lidirus: the 'test' split of the plugin's shipped sample, not your files; for a "
            "submission pass --source local --data-dir FOLDER") in sampled.stderr


def test_a_writer_that_refuses_a_task_says_so_before_anything_is_written(cli, tmp_path):
    from mtcore.testing import smoke_train

    run = smoke_train(["rsg:terra", "sentiment:mokoron"], output_dir=tmp_path / "run", steps=2, batch_size=4).output_dir
    out = tmp_path / "sub"
    result = cli("predict", run, "--task", "rsg:terra,sentiment:mokoron", "--split", "test", "--format", "rsg", "--output", out)
    assert result.exit_code == 2 and "the 'rsg' writer only writes Russian SuperGLUE tasks" in result.stderr
    assert not out.exists()  # TERRa.jsonl was not written before the refusal


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--task", "sentimnt"], 2, "unknown task 'sentimnt' (did you mean 'demo:sentiment'?)"),
        (["--task", "nli"], 1, "row 1: no field 'premise' (text)"),
        (["--task", "sentiment", "--format", "jsnl"], 2, "unknown writer 'jsnl' (did you mean 'jsonl'?)"),
        (["--task", "sentiment", "--format", "rsg"], 2, "--format rsg writes files: pass --output"),
        ([], 2, "several tasks (demo:sentiment, demo:nli); choose one with --task"),
    ],
)
def test_bad_arguments(cli, bert_model_dir, reviews_file, args, code, message):
    result = cli("predict", bert_model_dir, "--input", reviews_file, *args)
    assert result.exit_code == code
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_inputs_and_model_dirs(cli, bert_model_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    cases = [
        (["predict", bert_model_dir, "-t", "sentiment", "--input", empty], 1, "has no rows"),
        (["predict", tmp_path, "-t", "sentiment", "--input", empty], 2, "is neither a run directory"),
        (["predict", tmp_path / "nope", "-t", "sentiment", "--input", empty], 2, "no such directory"),
        (["predict", str(bert_model_dir) + "x", "-t", "sentiment", "--input", empty], 2,
         f"no such directory (did you mean {str(bert_model_dir)!r}?)"),  # a typo of a folder beside it
        (["predict", bert_model_dir, "-t", "sentiment"], 2, "give exactly one of --input"),
        (["predict", bert_model_dir, "-t", "sentiment", "--input", tmp_path / "x.jsonl"], 2, "no such input file"),
        (["predict", bert_model_dir, "-t", "sentiment", "--split", "test"], 2, "not registered by an installed plugin"),
    ]
    for args, code, message in cases:
        result = cli(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_out_of_memory_in_mt_predict_is_one_line(cli, bert_model_dir, reviews_file, monkeypatch):
    import torch

    from mtcore.model.multitask_model import MultitaskModel

    def boom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB. GPU 0 has a total capacity of 79.1 GiB")

    monkeypatch.setattr(MultitaskModel, "forward", boom)
    result = cli("predict", bert_model_dir, "--task", "demo:sentiment", "--input", reviews_file, "--batch-size", "2")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: CUDA out of memory; lower --batch-size, or use a smaller max_length"]


STORED = {  # task name -> the labels' stored form in the dataset (a JSON bool, int, string or float)
    "yesno": (False, True), "stars": (1, 2), "codes": ("0", "1"), "grade": (0.5, 1.5),
}


def test_every_writer_keeps_the_labels_stored_form(cli, tiny_encoders, tmp_path):
    """A label stored as a JSON bool, int, string or float is written back as the same JSON value
    (csv: its text), decided by the probabilities written beside it; rsg writes DaNetQA's bool."""
    from inference.support import make_model

    from mtcore.plugins import get_task
    from mtcore.task import Task

    tasks = [Task(name=name, kind="text_classification", labels=("no", "yes"), label_values=values, plugin="demo")
             for name, values in STORED.items()]
    model_dir = make_model(tiny_encoders["bert"], *tasks, get_task("rsg:danetqa"), seed=2).save_pretrained(tmp_path / "model")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"idx": i, "text": t, "question": t, "passage": "good movie"}) + "\n"
                            for i, t in enumerate(["good", "bad movie", "x", "good bad good"])), encoding="utf-8")
    for name, values in STORED.items():
        result = cli("predict", model_dir, "--task", name, "--input", rows)
        assert result.exit_code == 0, result.stderr
        printed = _jsonl(result.stdout)
        for row in printed:
            expected = values[int(np.argmax(row["probabilities"]))]
            assert row["label"] == expected and type(row["label"]) is type(expected), (name, row)
        result = cli("predict", model_dir, "--task", name, "--input", rows, "--format", "csv")
        assert result.exit_code == 0, result.stderr
        assert [r["label"] for r in csv.DictReader(result.stdout.splitlines())] == [str(row["label"]) for row in printed]
    result = cli("predict", model_dir, "--task", "danetqa", "--input", rows, "--format", "rsg", "--output", tmp_path / "sub")
    assert result.exit_code == 0, result.stderr
    submitted = _jsonl((tmp_path / "sub" / "DaNetQA.jsonl").read_text(encoding="utf-8"))
    assert [r["idx"] for r in submitted] == [0, 1, 2, 3] and all(type(r["label"]) is bool for r in submitted)


def test_an_output_named_csv_gets_csv_without_format(cli, bert_model_dir, reviews_file, tmp_path):
    """``-o preds.csv`` wrote JSON Lines into a file named .csv."""
    result = cli("predict", bert_model_dir, "--task", "demo:sentiment", "--input", reviews_file, "-o", tmp_path / "preds.csv")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "preds.csv").read_text(encoding="utf-8").splitlines()[0].startswith("idx,label,p_")
    result = cli("predict", bert_model_dir, "--task", "demo:sentiment", "--input", reviews_file, "-o", tmp_path / "preds.out")
    assert result.exit_code == 0, result.output
    assert "label" in json.loads((tmp_path / "preds.out").read_text(encoding="utf-8").splitlines()[0])  # anything else: JSON Lines


def test_an_output_that_is_the_input_file_is_refused_and_the_rows_stay(cli, bert_model_dir, reviews_file, tmp_path):
    """It wrote the predictions over the user's rows (exit 0); a link to the input counts too."""
    import shutil

    mine = Path(shutil.copy(reviews_file, tmp_path / "mine.jsonl"))
    link = tmp_path / "link.jsonl"
    link.symlink_to(mine)
    before = mine.read_bytes()
    for output in (mine, link):
        result = cli("predict", bert_model_dir, "--task", "sentiment", "--input", mine, "-o", output)
        assert result.exit_code == 2 and f"--output {output} is the --input file" in result.stderr, result.stderr
        assert mine.read_bytes() == before


def test_a_model_folder_without_its_manifest_is_named_as_incomplete(cli, trained_run, tmp_path):
    """A finished run whose model/mtcore.json went missing was "a run with no model/ yet ... still running", with --resume."""
    import shutil

    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "model" / "mtcore.json").unlink()
    for path in (run, run / "model"):
        result = cli("evaluate", path)
        assert result.exit_code == 1 and result.stderr.strip() == (
            f"error: {run / 'model' / 'mtcore.json'}: missing; the model directory is incomplete (copy or save it again)"), result.stderr
