"""``holdout``: a task whose data has no validation split gets one, carved from train the same way everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.data.files import NoFileFound
from mtcore.data.splits import holdout_indices
from mtcore.data.task_data import MissingSplit, load_raw
from mtcore.errors import ConfigError, DataError
from mtcore.task import Source, Task

WORDS = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "sad"]}


def reviews(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        label = "pos" if i % 3 else "neg"  # 2:1 classes
        rows.append({"id": i, "text": f"{WORDS[label][i % 4]} movie {i % 7}", "label": label})
    return rows


def write_train(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in reviews(n)), encoding="utf-8")
    return path


def task(*splits: str) -> Task:
    files = {split: f"{split}.jsonl" for split in splits or ("train", "validation")}
    return Task(name="reviews", kind="text_classification", labels=("neg", "pos"), id_field="id",
                sources={"local": Source.local("jsonl", files)})


def test_holdout_indices_are_stratified_complete_and_seed_free():
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    kept, held = holdout_indices(labels, 0.1)
    assert sorted(kept + held) == list(range(100)) and not set(kept) & set(held)
    assert [labels[i] for i in held].count("a") == 6 and [labels[i] for i in held].count("c") == 1
    assert holdout_indices(labels, 0.1) == (kept, held) and kept == sorted(kept)
    assert holdout_indices([None] * 10, 0.2)[1] and holdout_indices([[1], [2]] * 10, 0.5)[1]  # no label / unhashable
    scores = [i / 7 for i in range(40)]  # a regression task's labels: all different
    assert len(holdout_indices(scores, 0.2, stratify=False)[1]) == 8  # a share of the rows, not of each "class"
    many = [c for c in range(20) for _ in range(10)]  # 20 classes of 10 rows at 0.15: 1.5 each, rounding spread
    held = holdout_indices(many, 0.15)[1]
    assert len(held) == 30 and {sum(1 for i in held if many[i] == c) for c in range(20)} == {1, 2}
    with pytest.raises(ConfigError, match="holdout must be a share between 0 and 1"):
        holdout_indices(labels, 1.5)


def test_load_raw_carves_validation_only_when_the_source_has_none(tmp_path):
    data = tmp_path / "data"
    write_train(data, 90)
    with pytest.raises(MissingSplit, match="set the task's holdout"):  # a source without the split
        load_raw(task("train"), "local", data_dir=data, splits=("train", "validation"), cache_dir=tmp_path / "c")
    with pytest.raises(NoFileFound, match="no file matches 'validation.jsonl'"):  # a declared file missing, no holdout
        load_raw(task(), "local", data_dir=data, splits=("train", "validation"), cache_dir=tmp_path / "c")
    assert load_raw(task("train"), "local", data_dir=data, splits=("validation",), cache_dir=tmp_path / "c", holdout=0.2).held_out == 18
    raw = load_raw(task(), "local", data_dir=data, splits=("train", "validation"), cache_dir=tmp_path / "c", holdout=0.2)
    assert (raw["train"].num_rows, raw["validation"].num_rows, raw.held_out) == (72, 18, 18)
    assert set(raw["train"]["id"]).isdisjoint(raw["validation"]["id"])
    assert raw["validation"]["label"].count("neg") == 6  # a third of the held rows, as in train
    alone = load_raw(task(), "local", data_dir=data, splits=("validation",), cache_dir=tmp_path / "c", holdout=0.2)
    assert list(alone) == ["validation"] and alone["validation"]["id"] == raw["validation"]["id"]  # evaluation reads the same rows
    only_train = load_raw(task(), "local", data_dir=data, splits=("train",), cache_dir=tmp_path / "c", holdout=0.2)
    assert only_train["train"]["id"] == raw["train"]["id"]  # evaluating on test: train still leaves the held rows out
    assert "no file matches 'validation.jsonl'" in raw.held_out_because  # why the holdout applied: said in the run's note
    (data / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviews(5)), encoding="utf-8")
    own = load_raw(task(), "local", data_dir=data, splits=("train", "validation"), cache_dir=tmp_path / "c", holdout=0.2)
    assert (own["train"].num_rows, own["validation"].num_rows, own.held_out) == (90, 5, None)  # the source's own split wins


def test_a_holdout_too_small_to_hold_a_row_says_so(tmp_path):
    write_train(tmp_path / "data", 6)
    with pytest.raises(ConfigError, match="holdout 0.05 of its 6 train rows leaves no validation row; raise holdout"):
        load_raw(task(), "local", data_dir=tmp_path / "data", splits=("train", "validation"), cache_dir=tmp_path / "c", holdout=0.05)
    with pytest.raises(ConfigError, match="holdout 0.99 of its 6 train rows leaves no train row; lower holdout"):  # a config value: exit 2
        load_raw(task(), "local", data_dir=tmp_path / "data", splits=("train", "validation"), cache_dir=tmp_path / "c", holdout=0.99)
    write_train(tmp_path / "one", 1)  # no share helps one row: raising and lowering holdout both failed
    for share in (0.5, 0.99):
        with pytest.raises(ConfigError, match=r"a holdout needs at least 2 train rows \(one to train on, one to evaluate\) and it has 1"):
            load_raw(task(), "local", data_dir=tmp_path / "one", splits=("train", "validation"), cache_dir=tmp_path / "c", holdout=share)


def test_a_run_evaluates_on_the_held_out_rows_and_mt_evaluate_and_predict_read_the_same(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_train(tmp_path / "data", 60)
    config = {"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 4}, "evaluation": {"every": 100},
              "tasks": [{"define": {"name": "reviews", "kind": "text_classification", "labels": ["neg", "pos"], "id_field": "id",
                                    "files": {"train": "data/train.jsonl"}}, "holdout": 0.25}]}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "run.yaml", "--output-dir", "run"])
    assert trained.exit_code == 0, trained.output
    assert "validation = 0.25 of train held out (15 rows" in trained.output
    final = json.loads((tmp_path / "run" / "summary.json").read_text())["final"]["metrics"]
    evaluated = runner.invoke(app, ["evaluate", "run", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["metrics"]["user:reviews/accuracy"] == pytest.approx(final["user:reviews/accuracy"])
    predicted = runner.invoke(app, ["predict", "run", "--split", "validation"])
    assert predicted.exit_code == 0, predicted.output
    ids = [json.loads(line)["idx"] for line in predicted.stdout.splitlines() if line.strip()]
    assert len(ids) == 15 and ids == sorted(ids)
    without = dict(config, tasks=[{k: v for k, v in config["tasks"][0].items() if k != "holdout"}])
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(without), encoding="utf-8")
    plain = runner.invoke(app, ["check", "plain.yaml"])
    assert plain.exit_code == 0 and "set its holdout, e.g. 0.1" in plain.output


def test_a_plugin_task_without_its_validation_file_holds_out_train(tmp_path):
    from mtcore.plugins import load_registry

    terra = load_registry(warn=False).task("rsg:terra")
    rows = [{"premise": f"П {i}.", "hypothesis": f"Г {i}.", "idx": i, "label": "entailment" if i % 2 else "not_entailment"} for i in range(20)]
    folder = tmp_path / "TERRa"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    raw = load_raw(terra, "local", data_dir=tmp_path, splits=("train", "validation"), cache_dir=tmp_path / "c", holdout=0.2)
    assert (raw["train"].num_rows, raw["validation"].num_rows) == (16, 4) and raw["validation"]["label"].count("entailment") == 2


def test_an_empty_validation_file_points_to_holdout_and_holdout_replaces_it(tmp_path):
    """An empty validation file was "the validation split has no rows", with no word of holdout, and holdout: 0.1 did not
    help (only a missing file let it carve)."""
    from mtcore.data.files import EmptySplit

    data = tmp_path / "data"
    write_train(data, 30)
    (data / "validation.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(EmptySplit) as info:
        load_raw(task(), "local", data_dir=data)
    assert str(info.value) == (f"task 'reviews', {data / 'validation.jsonl'}: the validation split has no rows; fill it, or hold out train rows "
                               "instead: the task's holdout, e.g. holdout: 0.1 (that share of train becomes validation)")
    raw = load_raw(task(), "local", data_dir=data, holdout=0.1)
    assert raw["validation"].num_rows == 3 and raw["train"].num_rows == 27
    assert raw.held_out_because == f"its file holds no rows: task 'reviews', {data / 'validation.jsonl'}: the validation split has no rows"
    (data / "test.jsonl").write_text("", encoding="utf-8")  # another split's empty file: no holdout hint
    with pytest.raises(EmptySplit) as info:
        load_raw(task("train", "test"), "local", data_dir=data, splits=("train", "test"))
    assert str(info.value) == f"task 'reviews', {data / 'test.jsonl'}: the test split has no rows"
