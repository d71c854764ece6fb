"""``mt evaluate``: the numbers the training run recorded, for the same checkpoint."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from mtcore.predict.evaluate import evaluate_path


def _recorded(run):
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    last_eval = [e for e in events if e.get("event") == "eval"][-1]
    assert last_eval["step"] == summary["steps"]  # the final model is the one evaluated last
    assert last_eval["metrics"] == summary["final"]["metrics"]
    return summary["final"]


def test_mt_evaluate_json_equals_the_run_record(cli, trained_run):
    recorded = _recorded(trained_run)
    result = cli("evaluate", trained_run, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["metrics"]) == set(recorded["metrics"])
    for key, value in recorded["metrics"].items():
        assert math.isclose(report["metrics"][key], value, rel_tol=1e-9, abs_tol=1e-9), key
    assert math.isclose(report["aggregate"], recorded["aggregate"], rel_tol=1e-9)
    assert report["tasks"]["rsg:parus"]["main_metric"] == "accuracy" and report["tasks"]["rsg:terra"]["rows"] > 0


def test_run_model_dir_and_task_subset(trained_run):
    recorded = _recorded(trained_run)["metrics"]
    report = evaluate_path(trained_run / "model", tasks=["terra"])
    assert report.run_dir == str(trained_run)
    assert report.metrics == {k: v for k, v in recorded.items() if k.startswith("rsg:terra/")}
    assert report.aggregate == recorded["rsg:terra/accuracy"]


def test_standalone_model_dir_uses_plugin_samples(trained_run, tmp_path):
    recorded = _recorded(trained_run)["metrics"]
    copy = shutil.copytree(trained_run / "model", tmp_path / "model-copy")
    report = evaluate_path(copy, batch_size=3)
    assert report.run_dir is None
    for key, value in recorded.items():  # another batch size: same predictions, loss equal up to padding noise
        assert math.isclose(report.metrics[key], value, abs_tol=1e-5), key


def test_table_output_and_evaluate_only_task(cli, trained_run):
    result = cli("evaluate", trained_run)
    assert result.exit_code == 0, result.output
    assert "rsg:terra" in result.stdout and "rsg:parus" in result.stdout and "aggregate" in result.stdout
    lidirus = evaluate_path(trained_run, tasks=["rsg:lidirus"], split="test")
    assert set(lidirus.metrics) == {"rsg:lidirus/mcc", "rsg:lidirus/loss"}
    assert lidirus.tasks["rsg:lidirus"]["head"] == "rsg:terra"


def test_unlabelled_split_is_reported_not_scored(cli, trained_run):
    result = cli("evaluate", trained_run, "--split", "test", "--tasks", "terra")
    assert result.exit_code == 0, result.output
    assert "no labelled rows" in result.stderr and "no labels" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--tasks", "terrra"], 2, "did you mean 'rsg:terra'"),
        (["--split", "dev"], 2, "unknown split 'dev'"),
        (["--source", "local"], 1, "needs data_dir"),
        (["--precision", "fp64"], 2, "unknown precision 'fp64'"),
    ],
)
def test_bad_arguments(cli, trained_run, args, code, message):
    result = cli("evaluate", trained_run, *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_wrong_directories(cli, trained_run, tmp_path):
    result = cli("evaluate", tmp_path)
    assert result.exit_code == 2 and "is neither a run directory" in result.stderr
    half_run = tmp_path / "run"
    half_run.mkdir()
    shutil.copy(trained_run / "config.yaml", half_run / "config.yaml")
    result = cli("evaluate", half_run)
    assert result.exit_code == 2 and "has no model/ yet" in result.stderr


def test_checkpoints_are_evaluated_with_their_runs_config(tmp_path, make_small_run):
    """`mt evaluate RUN/checkpoints/step-N` rebuilds the model from the run's config, even before model/ exists."""
    run = make_small_run(tmp_path / "run")
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    by_step = {e["step"]: e["metrics"] for e in events if e.get("event") == "eval"}
    shutil.rmtree(run / "model")  # as while the run is still training
    for step in (2, 4):
        report = evaluate_path(run / "checkpoints" / f"step-{step:06d}")
        assert report.run_dir == str(run)
        recorded = by_step[step]
        assert set(report.metrics) == set(recorded)
        for key, value in recorded.items():
            assert math.isclose(report.metrics[key], value, rel_tol=1e-6, abs_tol=1e-6), (step, key)
    assert by_step[2] != by_step[4]  # two different checkpoints, two different sets of numbers


def test_a_run_without_model_points_to_its_checkpoints(cli, tmp_path, make_small_run):
    run = make_small_run(tmp_path / "run")
    shutil.rmtree(run / "model")
    result = cli("evaluate", run)
    assert result.exit_code == 2
    assert "has no model/ yet" in result.stderr and "step-000004" in result.stderr
    loose = tmp_path / "loose"
    shutil.copytree(run / "checkpoints" / "step-000004", loose)
    result = cli("evaluate", loose)
    assert result.exit_code == 2 and "pass it inside its run directory" in result.stderr


def test_a_run_that_stopped_on_an_error_is_said_so_not_to_wait_for_it(cli, tmp_path, make_small_run):
    """A failed run was told "wait for the run to finish or resume it", with nothing training and no checkpoint."""
    run = make_small_run(tmp_path / "run")
    shutil.rmtree(run / "model")
    (run / "summary.json").unlink(missing_ok=True)
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps({"event": "error", "step": 4, "message": "loss of task 'x' became nan at step 4; lower optimizer.lr"}) + "\n")
    for command in (["evaluate", run], ["predict", run, "--split", "validation"], ["export", run, tmp_path / "out"]):
        result = cli(*command)
        assert result.exit_code == 2, result.output
        line = result.stderr.strip()
        assert "the run stopped on an error at step 4: loss of task 'x' became nan at step 4" in line and "train it again" in line
        assert "wait for" not in line and "\n" not in line


def test_input_with_split_or_input_format_without_input_is_a_usage_error(cli, trained_run, tmp_path):
    """`--split` with --input only relabelled the report; `--input-format` without --input was ignored, any value."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"premise": "a", "hypothesis": "b", "label": "entailment"}\n', encoding="utf-8")
    result = cli("evaluate", trained_run, "--input", rows, "--split", "train")
    assert result.exit_code == 2 and "with --input, the file is the data" in result.stderr
    for command in (["evaluate", trained_run], ["predict", trained_run, "--split", "validation"]):
        result = cli(*command, "--input-format", "xml")
        assert result.exit_code == 2 and "--input-format xml is the format of --input, which is not given" in result.stderr


def test_precision_fp16_without_a_gpu_names_the_option(cli, trained_run):
    """It blamed "config key 'precision'" and a grad scaler evaluation does not use."""
    result = cli("evaluate", trained_run, "--precision", "fp16", "--device", "cpu")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --precision fp16 needs a CUDA GPU and the device is cpu; use fp32, bf16 or auto"


def test_a_data_dir_that_is_no_folder_names_the_option_before_the_model_loads(cli, trained_run, tmp_path, monkeypatch):
    """It loaded the model, then said "task 'rsg:terra': data_dir 'nothere' is not a folder", exit 1."""
    import mtcore.predict.locate as locate

    monkeypatch.setattr(locate, "load_model", lambda *args, **kwargs: pytest.fail("the model was loaded"))
    for command in (["evaluate", trained_run], ["predict", trained_run, "--split", "test"]):
        result = cli(*command, "--data-dir", tmp_path / "nothere")
        assert result.exit_code == 2
        assert result.stderr.strip() == f"error: --data-dir {tmp_path / 'nothere'}: no such folder; give the folder holding the task's downloaded files"


def test_the_aggregate_line_says_a_lower_is_better_main_metric_counts_negated(cli, tmp_path):
    """'mean of main metrics' printed -0.98 for mse 2.28 and accuracy 0.33: the reader computed 1.30."""
    from mtcore import Trainer

    rows = "".join(json.dumps({"text": f"слово {i}", "score": i / 10}, ensure_ascii=False) + "\n" for i in range(12))
    (tmp_path / "train.jsonl").write_text(rows, encoding="utf-8")
    config = {"encoder": {"tiny": "bert"}, "cpu": True, "schedule": {"max_steps": 2}, "checkpoint": {"every": None},
              "logging": {"progress": "none", "plot": False},
              "tasks": [{"define": {"name": "score", "kind": "regression", "inputs": {"text": "text", "label": "score"}, "metrics": ["mse", "pearson"],
                                    "files": {"train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "train.jsonl")}}}]}
    Trainer(config, output_dir=tmp_path / "run").train()
    result = cli("evaluate", tmp_path / "run")
    assert result.exit_code == 0, result.output
    mse = float(next(line for line in result.stdout.splitlines() if "mse *" in line).split("│")[3])
    assert f"aggregate (mean of main metrics *, lower-is-better ones negated): {-mse:.4f}" in result.stdout
    scored = json.loads(cli("evaluate", tmp_path / "run", "--json").stdout)
    assert scored["tasks"]["user:score"]["lower_is_better"] is True


def test_data_dir_means_the_local_source_for_a_run_and_its_model(cli, trained_run):
    """`--data-dir D` without --source reads your files (the run trained on the plugin's sample)."""
    from importlib import resources

    sample = str(resources.files("mt_russian_superglue") / "sample")  # the official layout
    for target in (trained_run, trained_run / "model"):
        result = cli("evaluate", target, "--tasks", "terra", "--data-dir", sample)
        assert result.exit_code == 0, result.stderr
        assert f"local {sample}" in result.stdout


def test_the_default_split_is_the_one_the_run_evaluated_on(cli, tmp_path):
    from mtcore.testing import smoke_train

    run = smoke_train(["rsg:terra"], output_dir=tmp_path / "run", steps=2, batch_size=4, overrides=["evaluation.split=train"]).output_dir
    recorded = _recorded(run)
    result = cli("evaluate", run, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"] == "train" and report["tasks"]["rsg:terra"]["rows"] == _sample_rows(run, "train")
    assert report["metrics"] == pytest.approx(recorded["metrics"], rel=1e-9, abs=1e-9)
    assert json.loads(cli("evaluate", run, "--json", "--split", "validation").stdout)["split"] == "validation"


def _sample_rows(run, split):
    from mtcore.data import load_raw
    from mtcore.plugins import load_registry

    return load_raw(load_registry().task("rsg:terra"), "sample", splits=(split,))[split].num_rows


def test_a_head_scores_and_predicts_a_task_it_was_not_trained_on(cli, tmp_path):
    """Zero-shot transfer: the XNLI head on the generic nli task (same kind and labels) was "unknown task"."""
    from mtcore.testing import smoke_train

    run = smoke_train(["nli:xnli-ru"], output_dir=tmp_path / "run", steps=2, evaluate=False).output_dir
    unknown = cli("evaluate", run, "--tasks", "nli:nli")
    assert unknown.exit_code == 2 and unknown.stderr.strip() == ("error: this model has no head for task 'nli:nli' (its heads: "
                                                                 "nli:xnli-ru); to use one of the same kind and labels, add --head ID")
    scored = cli("evaluate", run, "--tasks", "nli:nli", "--head", "xnli-ru", "--json")
    assert scored.exit_code == 0, scored.output
    report = json.loads(scored.stdout)
    assert report["tasks"]["nli:nli"]["head"] == "nli:xnli-ru" and report["tasks"]["nli:nli"]["rows"] > 0
    assert "nli:nli/accuracy" in report["metrics"] and report["tasks"]["nli:nli"]["source"] == "sample"
    table = cli("evaluate", run, "--tasks", "nli:nli", "--head", "xnli-ru")
    assert table.exit_code == 0 and "nli:nli (head nli:xnli-ru)" in " ".join(table.stdout.split()), table.stdout
    out = tmp_path / "p.jsonl"
    predicted = cli("predict", run, "--task", "nli:nli", "--head", "nli:xnli-ru", "--split", "validation", "-o", out)
    assert predicted.exit_code == 0, predicted.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == report["tasks"]["nli:nli"]["rows"] and {r["label"] for r in rows} <= {"entailment", "neutral", "contradiction"}
    for args, message in [(["evaluate", run, "--tasks", "sentiment:mokoron", "--head", "nli:xnli-ru"],
                           "task 'sentiment:mokoron' is text_classification, but the head 'nli:xnli-ru' predicts pair_classification"),
                          (["evaluate", run, "--head", "nli:xnli-ru"], "--head scores tasks with another task's head: name them with --tasks"),
                          (["predict", run, "--task", "nli:nli", "--head", "nli:xnli", "--split", "test"],
                           "unknown head 'nli:xnli' (did you mean 'nli:xnli-ru'?)"),
                          (["predict", run, "--split", "test", "--head", "nli:xnli-ru", "-o", out],
                           "--head predicts tasks with another task's head: name them with --task")]:
        refused = cli(*args)
        assert refused.exit_code == 2 and message in refused.stderr, refused.stderr


def test_a_labelled_file_is_scored_as_the_tasks_split_would_be(cli, trained_run, tmp_path):
    """Scoring a file of one's own needed the official folder layout rebuilt around it."""
    import mt_russian_superglue
    from pathlib import Path

    val = Path(mt_russian_superglue.__file__).parent / "sample" / "TERRa" / "val.jsonl"
    mine = tmp_path / "my-terra.jsonl"
    shutil.copy(val, mine)
    split = json.loads(cli("evaluate", trained_run, "--tasks", "rsg:terra", "--split", "validation", "--json").stdout)
    scored = cli("evaluate", trained_run, "--tasks", "terra", "--input", mine, "--json")
    assert scored.exit_code == 0, scored.output
    report = json.loads(scored.stdout)
    assert report["metrics"] == split["metrics"] and report["tasks"]["rsg:terra"]["rows"] == split["tasks"]["rsg:terra"]["rows"]
    as_csv = tmp_path / "terra.txt"
    rows = [json.loads(line) for line in val.read_text(encoding="utf-8").splitlines()]
    as_csv.write_text("premise,hypothesis,label,idx\n" + "".join(f'"{r["premise"]}","{r["hypothesis"]}",{r["label"]},{r["idx"]}\n' for r in rows),
                      encoding="utf-8")
    from_csv = json.loads(cli("evaluate", trained_run, "-t", "terra", "-i", as_csv, "--input-format", "csv", "--json").stdout)
    assert from_csv["metrics"] == split["metrics"]
    odd = tmp_path / "odd"  # a name glob would read as a pattern: only that file is scored, not val1.jsonl beside it
    odd.mkdir()
    (odd / "val[1].jsonl").write_text(val.read_text(encoding="utf-8").splitlines(keepends=True)[0] + json.dumps(
        {**rows[1], "label": None}) + "\n", encoding="utf-8")  # and a row without a label: left out, as in a test split
    shutil.copy(val, odd / "val1.jsonl")
    partly = json.loads(cli("evaluate", trained_run, "-t", "terra", "-i", odd / "val[1].jsonl", "--json").stdout)
    assert partly["tasks"]["rsg:terra"]["rows"] == 2 and partly["input"].endswith("val[1].jsonl"), partly
    two = cli("evaluate", trained_run, "-t", "terra,parus", "-i", mine)
    assert two.exit_code == 2 and two.stderr.strip() == ("error: --input scores one task's file, and --tasks names 2 (rsg:terra, "
                                                         "rsg:parus): name one"), two.stderr
    for args, code, message in [(["--input", mine], 2, "--input scores one task's file, and this model has several"),
                                (["-t", "terra", "-i", as_csv], 2, "cannot tell its format from the name"),
                                (["-t", "terra", "-i", mine, "--input-format", "jsnl"], 2, "did you mean 'jsonl'"),
                                (["-t", "terra", "-i", tmp_path / "none.jsonl"], 2, "no such input file"),
                                (["-t", "terra", "-i", mine, "--data-dir", tmp_path], 2, "with --input, the file is the data")]:
        refused = cli("evaluate", trained_run, *args)
        assert refused.exit_code == code and message in refused.stderr, (args, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1


def test_a_model_whose_tasks_no_installed_plugin_registers_says_so_in_one_line(cli, tiny_encoders, tmp_path):
    """It ended in "no task of MODEL has a 'validation' split ()", after one warning per task advising the run directory."""
    from mtcore.model import MultitaskModel
    from mtcore.task import Task

    ghosts = [Task(name=name, kind="text_classification", labels=("a", "b"), plugin="ghost") for name in ("one", "two")]
    from transformers import AutoTokenizer

    model = MultitaskModel(tiny_encoders["bert"], ghosts)
    model.save_pretrained(tmp_path / "model", tokenizer=AutoTokenizer.from_pretrained(tiny_encoders["bert"]))
    result = cli("evaluate", tmp_path / "model")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("error: no task of the model can be scored here: nothing installed reads the data of "
                                     "ghost:one, ghost:two; install its plugin (ghost), or give the rows of one task in a file "
                                     "with --tasks ID --input FILE")
    mine = [Task(name="mine", kind="text_classification", labels=("a", "b"), plugin="user")]
    MultitaskModel(tiny_encoders["bert"], mine).save_pretrained(tmp_path / "own", tokenizer=AutoTokenizer.from_pretrained(tiny_encoders["bert"]))
    own = cli("evaluate", tmp_path / "own")
    assert "evaluate the run directory, whose config defines its user: tasks" in own.stderr and "plugin (user)" not in own.stderr


def test_paths_with_brackets_are_shown_as_they_are(cli, trained_run, tmp_path):
    """rich read them as markup: '[final]' vanished from the table, '[/b]' ended the command with 'unexpected
    MarkupError' after the whole evaluation."""
    run = tmp_path / "r[/b] [final]"
    shutil.copytree(trained_run, run)
    result = cli("evaluate", run, "--tasks", "rsg:terra")
    assert result.exit_code == 0, result.output
    assert "r[/b] [final]" in " ".join(result.stdout.split())


def test_an_input_file_without_labels_is_an_error_naming_the_field(cli, trained_run, tmp_path):
    """A file whose label field has another name exited 0 with a note about "the test split" (there was none)."""
    rows = tmp_path / "gold.jsonl"
    rows.write_text("".join(json.dumps({"premise": "a.", "hypothesis": "b.", "gold": "entailment"}) + "\n" for _ in range(3)),
                    encoding="utf-8")
    result = cli("evaluate", trained_run, "--tasks", "rsg:terra", "--input", rows)
    assert result.exit_code == 1 and result.stderr.strip() == (
        f"error: {rows}: no row has a label for task 'rsg:terra' (field 'label'); mt evaluate scores labelled rows: name the "
        "field with the task's inputs, or use mt predict for rows without labels"), result.stderr


def test_an_empty_tasks_list_is_refused_not_read_as_all(cli, trained_run):
    """--tasks "" (an empty shell variable) scored every task, exit 0."""
    for given in ("", " , "):
        result = cli("evaluate", trained_run, "--tasks", given)
        assert result.exit_code == 2 and "--tasks is empty" in result.stderr, result.stderr
