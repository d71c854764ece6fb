"""A run's checkpoints used like its model: evaluated, predicted and exported from any spelling of the path.

* a fine-tuning run (``encoder.path=<a model mtcore saved>``, ``encoder.load_heads=true``, the
  recipe "train on many tasks, then fine-tune on one") rebuilds its checkpoints from the saved
  model's ``encoder/`` folder, as the run itself loaded it;
* the final checkpoint holds the final model's weights, so every writer gives the same file;
* ``mt evaluate .`` inside a checkpoint or a run's ``model/`` is that checkpoint / that run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from mtcore.predict.evaluate import evaluate_path


def _evals(run: Path) -> dict[int, dict[str, float]]:
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return {e["step"]: e["metrics"] for e in events if e.get("event") == "eval"}


@pytest.fixture(scope="module")
def fine_tuned(trained_run, tmp_path_factory) -> Path:
    """TERRa + PARus fine-tuned from ``trained_run``'s model with its heads, checkpointed at steps 2 and 4."""
    from mtcore.testing import smoke_train

    overrides = ["encoder.load_heads=true", "evaluation.every=2", "checkpoint.every=2", "checkpoint.keep_last=3", "optimizer.lr=5e-3"]
    result = smoke_train(["rsg:terra", "rsg:parus"], output_dir=tmp_path_factory.mktemp("ft") / "run", encoder=trained_run / "model",
                         steps=4, batch_size=4, overrides=overrides)
    return result.output_dir


def test_checkpoints_of_a_fine_tuning_run_score_what_the_run_recorded(fine_tuned):
    recorded = _evals(fine_tuned)
    for step in (2, 4):
        report = evaluate_path(fine_tuned / "checkpoints" / f"step-{step:06d}")
        assert report.run_dir == str(fine_tuned) and set(report.metrics) == set(recorded[step])
        for key, value in recorded[step].items():
            assert math.isclose(report.metrics[key], value, rel_tol=1e-6, abs_tol=1e-6), (step, key)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "rsg"])
def test_the_final_checkpoint_predicts_what_the_final_model_predicts(cli, fine_tuned, tmp_path, fmt):
    written = {}
    for name, target in (("model", fine_tuned / "model"), ("run", fine_tuned), ("checkpoint", fine_tuned / "checkpoints" / "step-000004")):
        for task in ("parus", "terra"):  # rsg: <Task>.jsonl files in the folder
            out = tmp_path / name if fmt == "rsg" else tmp_path / name / f"{task}.{fmt}"
            result = cli("predict", target, "--task", task, "--split", "validation", "--format", fmt, "--output", out)
            assert result.exit_code == 0, result.stderr
        written[name] = {p.relative_to(tmp_path / name).as_posix(): p.read_text(encoding="utf-8") for p in sorted((tmp_path / name).rglob("*")) if p.is_file()}
    assert len(written["model"]) == 2 and all(text.strip() for text in written["model"].values())
    assert written["model"] == written["run"] == written["checkpoint"]


def test_evaluate_dot_inside_a_checkpoint_or_a_runs_model_folder(fine_tuned, monkeypatch):
    recorded = _evals(fine_tuned)
    monkeypatch.chdir(fine_tuned / "checkpoints" / "step-000002")
    report = evaluate_path(".")
    assert Path(report.run_dir) == fine_tuned and report.metrics == pytest.approx(recorded[2], rel=1e-6, abs=1e-6)
    monkeypatch.chdir(fine_tuned / "model")
    for spelled in (".", os.path.join("..", "model")):
        report = evaluate_path(spelled)
        assert Path(report.run_dir) == fine_tuned  # the run's data and settings, not the plugins' samples
        assert report.metrics == pytest.approx(recorded[4], rel=1e-6, abs=1e-6)


def test_a_checkpoint_deleted_while_it_is_loaded_is_still_read(fine_tuned, tmp_path, monkeypatch):
    """`mt evaluate RUN/checkpoints/step-N` beside a run that is training: the run's keep_last deletes the checkpoint
    while the model is built from the config. It was "checkpoint weights ... are missing"."""
    import shutil

    import mtcore.train.build as build

    run = tmp_path / "run"
    shutil.copytree(fine_tuned, run)
    checkpoint = run / "checkpoints" / "step-000002"
    kept = evaluate_path(checkpoint).metrics
    build_model = build.build_model

    def pruned_meanwhile(*args, **kwargs):
        shutil.rmtree(checkpoint)  # what Checkpoints.prune does in the live run
        return build_model(*args, **kwargs)

    monkeypatch.setattr(build, "build_model", pruned_meanwhile)
    assert evaluate_path(checkpoint).metrics == kept and not checkpoint.exists()


def test_a_checkpoint_deleted_before_it_is_read_names_the_latest(fine_tuned, tmp_path):
    import shutil

    from mtcore.errors import ModelPathError
    from mtcore.predict.locate import load_model, locate

    run = tmp_path / "run"
    shutil.copytree(fine_tuned, run)
    location = locate(run / "checkpoints" / "step-000002")
    shutil.rmtree(run / "checkpoints" / "step-000002")
    with pytest.raises(ModelPathError) as info:
        load_model(location)
    assert str(info.value) == (f"{run / 'checkpoints' / 'step-000002'}: this checkpoint was deleted as it was about to be read (a run "
                               f"that is training keeps only its last checkpoint.keep_last checkpoints); its latest is now "
                               f"{run / 'checkpoints' / 'step-000004'}")
