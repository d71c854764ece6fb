"""With ``MT_LOAD_PLUGINS`` leaving out an installed plugin, ``mt evaluate RUN`` and ``mt predict RUN`` refuse that
plugin's tasks saying so (exit 2), not "not installed", and never print a partial aggregate. ``mt evaluate`` shows a
task defined in the run's config with its files' folder, not the current one."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def two_plugin_run(tmp_path_factory) -> Path:
    from mtcore.testing import smoke_train

    return smoke_train(["rsg:terra", "sentiment:mokoron"], output_dir=tmp_path_factory.mktemp("runs") / "run", steps=2,
                       batch_size=4).output_dir


def _refused(result, task: str) -> None:
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert task in line and "plugin 'sentiment'" in line and "installed but MT_LOAD_PLUGINS leaves it out" in line, line
    assert "aggregate" not in result.stdout and "install its plugin" not in result.stderr


@pytest.mark.parametrize("args", [[], ["--json"], ["--tasks", "sentiment:mokoron"]], ids=["all", "json", "named"])
def test_evaluate_refuses_a_left_out_plugins_task(two_plugin_run, cli, monkeypatch, args):
    monkeypatch.setenv("MT_LOAD_PLUGINS", "rsg")
    _refused(cli("evaluate", two_plugin_run, *args), "sentiment:mokoron")


def test_predict_refuses_a_left_out_plugins_task(two_plugin_run, cli, monkeypatch):
    monkeypatch.setenv("MT_LOAD_PLUGINS", "rsg")
    _refused(cli("predict", two_plugin_run, "--task", "sentiment:mokoron", "--split", "validation"), "sentiment:mokoron")
    kept = cli("evaluate", two_plugin_run, "--tasks", "rsg:terra")  # a task of a plugin it keeps: scored as before
    assert kept.exit_code == 0 and "rsg:terra" in kept.stdout, kept.output



def test_evaluate_shows_an_inline_tasks_files_folder_not_the_current_one(tmp_path, cli, monkeypatch):
    import json

    import yaml

    data = tmp_path / "own" / "data"
    data.mkdir(parents=True)
    rows = [{"review": f"{'bad' if i % 2 else 'good'} {i}", "stars": "negative" if i % 2 else "positive"} for i in range(40)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = tmp_path / "own" / "hold.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "batching": {"batch_size": 4},
                                      "checkpoint": {"every": None}, "logging": {"progress": "none", "plot": False},
                                      "tasks": [{"define": {"name": "reviews", "kind": "text_classification", "labels": ["negative", "positive"],
                                                            "inputs": {"text": "review", "label": "stars"}, "files": {"train": "data/train.jsonl"}},
                                                 "holdout": 0.2}]}))
    monkeypatch.chdir(tmp_path / "own")
    trained = cli("train", config, "-o", tmp_path / "run")
    assert trained.exit_code == 0, trained.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli("evaluate", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.output
    [shown] = [info["data_dir"] for info in json.loads(result.stdout)["tasks"].values()]
    assert shown == str(data)
    table = cli("evaluate", tmp_path / "run")
    assert table.exit_code == 0 and str(elsewhere) not in table.stdout, table.stdout


def test_data_dir_reads_an_inline_tasks_files_by_name_from_that_folder(tmp_path, cli, monkeypatch):
    """--data-dir D was ignored for a task defined in the run's config (its saved files are absolute paths), while the
    report named D as the data."""
    import json

    import yaml

    def write(folder, rows):
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("train.jsonl", "test.jsonl"):
            (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    rows = [{"review": f"{'bad' if i % 2 else 'good'} {i}", "stars": "negative" if i % 2 else "positive"} for i in range(40)]
    write(tmp_path / "own" / "data", rows)
    write(tmp_path / "other", rows[:6])
    config = tmp_path / "own" / "hold.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "batching": {"batch_size": 4},
                                      "checkpoint": {"every": None}, "logging": {"progress": "none", "plot": False},
                                      "tasks": [{"define": {"name": "reviews", "kind": "text_classification", "labels": ["negative", "positive"],
                                                            "inputs": {"text": "review", "label": "stars"},
                                                            "files": {"train": "data/train.jsonl", "test": "data/test.jsonl"}},
                                                 "holdout": 0.2}]}))
    monkeypatch.chdir(tmp_path / "own")
    assert cli("train", config, "-o", tmp_path / "run").exit_code == 0
    own = json.loads(cli("evaluate", tmp_path / "run", "--split", "test", "--json").stdout)["tasks"]["user:reviews"]
    other = cli("evaluate", tmp_path / "run", "--split", "test", "--data-dir", tmp_path / "other", "--json")
    assert other.exit_code == 0, other.output
    assert own["rows"] == 40 and json.loads(other.stdout)["tasks"]["user:reviews"]["rows"] == 6
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = cli("evaluate", tmp_path / "run", "--split", "test", "--data-dir", empty)
    assert missing.exit_code != 0 and "test.jsonl" in missing.output
