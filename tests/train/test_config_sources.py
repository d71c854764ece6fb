"""Config entries can change a registered task's sources and fields (the generic ``nli:nli`` task)."""

from __future__ import annotations

import json
from pathlib import Path

from mtcore.train.config_io import load_config
from mtcore.train.validate import plan_run

LABELS = ["entailment", "neutral", "contradiction"]


def _write(path: Path, n: int) -> None:
    rows = [{"p": f"the cat is {'red' if i % 3 == 0 else 'blue'}", "h": "a cat", "gold": LABELS[i % 3], "pairID": i} for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


def _config(tmp_path: Path) -> dict:
    data = tmp_path / "my-nli"
    data.mkdir()
    _write(data / "my_train.jsonl", 24)
    _write(data / "my_dev.jsonl", 9)
    return {
        "encoder": {"tiny": "bert"},
        "tasks": [{
            "id": "nli:nli", "source": "local", "data_dir": str(data),
            "inputs": {"text": "p", "text_pair": "h", "label": "gold"},
            "sources": {"local": {"files": {"train": "my_train.jsonl", "validation": "my_dev.jsonl"}, "format": "jsonl"}},
        }],
        "schedule": {"max_steps": 3},
        "batching": {"batch_size": 4},
    }


def test_sources_override_merges_into_the_registered_source(tmp_path: Path):
    raw = _config(tmp_path)
    plan = plan_run(load_config(raw))
    task = plan.tasks[0].task
    local = task.sources["local"]
    assert local.options["files"] == {"train": "my_train.jsonl", "validation": "my_dev.jsonl"}
    assert local.options["format"] == "jsonl"
    assert local.loader  # the registered loader is kept, only its options change
    assert task.input_map["text"] == "p" and task.input_map["label"] == "gold"


def test_generic_task_trains_on_renamed_files_and_fields(tmp_path: Path):
    from mtcore.train.trainer import Trainer

    raw = _config(tmp_path)
    raw["tasks"][0]["inputs"] = {"text": "p", "text_pair": "h", "label": "gold"}  # these files call it "gold"
    summary = Trainer(raw, output_dir=tmp_path / "run").train()
    assert summary["steps"] == 3
    assert "nli:nli/accuracy" in summary["final"]["metrics"]


def test_run_with_relative_inline_files_is_evaluated_from_another_folder(tmp_path, small_encoder, monkeypatch):
    """The run's saved config holds absolute paths: `mt evaluate RUN` works wherever it is started."""
    import shutil

    import yaml

    from mtcore import Trainer
    from mtcore.predict.evaluate import evaluate_path

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    rows = [{"text": f"w{i % 7} w{i % 5} good" if i % 2 else f"w{i % 3} bad", "label": "pos" if i % 2 else "neg"} for i in range(24)]
    for split in ("train", "val"):
        (project / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = {"seed": 0, "cpu": True, "precision": "fp32", "encoder": {"path": str(small_encoder)},
              "tasks": [{"define": {"name": "reviews", "kind": "text_classification", "labels": ["neg", "pos"],
                                    "files": {"train": "data/train.jsonl", "validation": "data/val.jsonl"}}}],
              "schedule": {"max_steps": 2}, "batching": {"batch_size": 8}, "checkpoint": {"every": None},
              "logging": {"progress": "none", "plot": False}}
    (project / "run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # neither the config's folder nor the data's
    summary = Trainer(project / "run.yaml", output_dir=tmp_path / "run").train()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text(encoding="utf-8"))
    assert saved["tasks"][0]["define"]["files"]["train"] == str(project / "data" / "train.jsonl")
    moved = tmp_path / "moved-run"
    shutil.move(str(tmp_path / "run"), moved)
    monkeypatch.chdir(tmp_path)
    report = evaluate_path(moved)
    assert report.metrics["user:reviews/accuracy"] == summary["final"]["metrics"]["user:reviews/accuracy"]


def test_paths_in_a_config_file_start_at_its_folder_and_overrides_at_the_current_one(tmp_path, monkeypatch, make_config, small_encoder):
    """Run from the parent of the config's folder: data_dir, encoder.path and define files in the file
    resolve from the file; a path given as an override resolves from where the command runs."""
    import shutil

    import yaml

    from mtcore.train.trainer import Trainer

    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    shutil.copytree(small_encoder, project / "encoder")
    config = make_config()
    sent = config["tasks"][0]["define"]
    (project / "data").mkdir()
    for split in ("train", "validation"):
        shutil.copy(sent["files"][split], project / "data" / f"{split}.jsonl")
    config["encoder"] = {"path": "../encoder"}
    config["tasks"] = [{"define": {**sent, "files": {"train": "../data/train.jsonl", "validation": "../data/validation.jsonl"}}},
                       {"id": "rsg:terra", "source": "local", "data_dir": "../rsg"}]
    (project / "rsg" / "TERRa").mkdir(parents=True)
    path = project / "conf" / "run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    trainer = Trainer(path, tmp_path / "out", overrides=["tasks.0.define.files.validation=project/data/validation.jsonl"])
    assert trainer.config.encoder.path == str(project / "encoder")
    assert trainer.config.tasks[1].data_dir == str(project / "rsg")
    files = trainer.config.tasks[0].define["files"]
    assert files["train"] == str(project / "data" / "train.jsonl")  # from the file: its folder
    assert files["validation"] == str(tmp_path / "project" / "data" / "validation.jsonl")  # an override: the current folder
