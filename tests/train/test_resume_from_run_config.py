"""A run's own ``config.yaml`` names the run folder as its ``output_dir``, so ``mt train RUN/config.yaml --resume``
continues that run (also after the folder moved), never a new run in the original config's ``output_dir``.

The bug: the config.yaml of a run trained with ``-o runs/x`` kept the original config's ``output_dir``, and
``mt train runs/x/config.yaml --resume`` started a new run there."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


def _written(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def crashed(tmp_path: Path, make_config, monkeypatch) -> Path:
    """``mt train config.yaml -o runs/x`` (relative, from tmp_path) whose config says ``output_dir: elsewhere``,
    stopped by a NaN loss at step 5 after the checkpoint of step 4 (the NaN comes from the environment, so the
    run's config.yaml does not carry it)."""
    monkeypatch.chdir(tmp_path)
    config = make_config(schedule={"max_steps": 6, "warmup_steps": 1}, checkpoint={"every": 2, "keep_last": 2},
                         logging={"every": 2, "progress": "none", "plot": False}, output_dir="elsewhere")
    Path("config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "config.yaml", "-o", "runs/x"], env={"MT_INJECT_NAN_AT_STEP": "5"})
    assert result.exit_code == 1 and "became NaN or infinite at step 5" in result.stderr, result.output
    run = tmp_path / "runs" / "x"
    assert _written(run)["output_dir"] == str(Path("runs/x").absolute())  # the real folder, not 'elsewhere'
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    return run


def _assert_resumed(helpers, run: Path, root: Path) -> None:
    events = helpers.read_events(run)
    starts = [e for e in events if e["event"] == "start"]
    assert [s["step"] for s in starts] == [0, 4] and any("resumed from" in n and "step-000004" in n for n in starts[1]["notes"]), starts
    trained = [(e["step"], e["task"]) for e in events if e["event"] == "train"]
    assert sorted({step for step, _ in trained}) == [2, 4, 6] and len(trained) == len(set(trained))  # each logged once
    assert not [e for e in events if e["event"] == "error"]  # the crash's event, after step 4, was dropped
    assert (run / "summary.json").is_file() and (run / "model").is_dir()
    assert not (root / "elsewhere").exists()  # no new run in the original config's output_dir


def test_resuming_from_the_run_folders_own_config_continues_that_run(crashed, helpers, tmp_path):
    result = CliRunner().invoke(app, ["train", "runs/x/config.yaml", "--resume"])
    assert result.exit_code == 0, result.output
    assert "run directory runs/x" in result.stdout and "warning" not in result.stderr
    _assert_resumed(helpers, crashed, tmp_path)
    assert sorted(os.listdir(tmp_path / "runs")) == ["x"]
    assert _written(crashed)["output_dir"] == str(crashed.absolute())


@pytest.mark.parametrize("explicit", [False, True], ids=["its-config", "with-output-dir"])
def test_a_moved_run_folder_resumes_where_it_is_now(crashed, helpers, tmp_path, monkeypatch, explicit):
    moved = tmp_path / "moved" / "y"
    moved.parent.mkdir()
    shutil.move(str(crashed), str(moved))
    elsewhere = tmp_path / "another-folder"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # from another folder, the moved run's config.yaml by its absolute path
    args = ["train", str(moved / "config.yaml"), *(["-o", str(moved)] if explicit else []), "--resume"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"was started in {str(crashed.absolute())!r} (moved or copied since): it continues here" in result.stderr, result.stderr
    _assert_resumed(helpers, moved, tmp_path)
    assert not crashed.exists() and os.listdir(elsewhere) == []
    assert _written(moved)["output_dir"] == str(moved)  # rewritten for the folder it is in now


@pytest.mark.parametrize("how", [["--seeds", "2"], ["--grid", "optimizer.lr=0.001,0.002"]], ids=["seeds", "grid"])
def test_every_sub_run_of_seeds_or_a_grid_names_its_own_folder(tmp_path, make_config, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    config = make_config(schedule={"max_steps": 2, "warmup_steps": 0}, checkpoint={"every": None}, output_dir="elsewhere")
    Path("config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "config.yaml", "-o", "out", *how])
    assert result.exit_code == 0, result.output
    runs = sorted(p.parent for p in (tmp_path / "out").rglob("config.yaml"))
    assert len(runs) == 2
    for run in runs:
        assert _written(run)["output_dir"] == str(run)
    again = CliRunner().invoke(app, ["train", str(runs[0].relative_to(tmp_path) / "config.yaml"), "--resume"])
    assert again.exit_code == 0 and "already trained: steps 2" in again.stdout, again.output
    assert f"run directory {runs[0].relative_to(tmp_path)} " in again.stdout and not (tmp_path / "elsewhere").exists()


def test_a_run_folder_given_as_the_config_is_one_line_naming_its_config_yaml(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("# resolved config of this run\nseed: 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(run), "--resume"])
    line = result.stderr.strip()
    assert result.exit_code == 2 and len(line.splitlines()) == 1, result.output
    assert line == (f"error: config file {str(run)!r} is a folder, not a YAML file; a run's own config is "
                    f"{str(run / 'config.yaml')!r} (mt train {run / 'config.yaml'} --resume continues that run)")
    plain = CliRunner().invoke(app, ["train", str(tmp_path)])
    assert plain.exit_code == 2 and plain.stderr.strip() == f"error: config file {str(tmp_path)!r} is a folder, not a YAML file"


def test_a_copied_runs_config_used_elsewhere_keeps_its_output_dir(tmp_path):
    """Only a config.yaml beside a run's checkpoints/ picks its folder; a copy of one elsewhere is an ordinary config."""
    from mtcore.train.run_dir import run_of_config

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("# resolved config of this run; resume with: ...\nseed: 1\n", encoding="utf-8")
    assert run_of_config(run / "config.yaml") == run
    assert run_of_config(Path(os.path.relpath(run / "config.yaml"))) == Path(os.path.relpath(run))  # as the user named it
    copy = tmp_path / "template"
    copy.mkdir()
    shutil.copy(run / "config.yaml", copy / "config.yaml")
    assert run_of_config(copy / "config.yaml") is None  # no checkpoints/ there
    (run / "own.yaml").write_text("seed: 1\n", encoding="utf-8")
    assert run_of_config(run / "own.yaml") is None
    (run / "config.yaml").write_text("seed: 1\n", encoding="utf-8")  # somebody's own file
    assert run_of_config(run / "config.yaml") is None


def test_an_output_dir_override_stays_text_and_is_the_folder_the_config_yaml_names(tmp_path, make_config, monkeypatch):
    """``output_dir=2024-01-01`` is a folder name, not YAML's date (test_config_cli.py's saved-config check covered
    this before the saved ``output_dir`` became the run folder)."""
    from mtcore.train.trainer import Trainer

    monkeypatch.chdir(tmp_path)
    trainer = Trainer(make_config(), overrides=["output_dir=2024-01-01"])
    assert trainer.config.output_dir == "2024-01-01" and trainer.output_dir == Path("2024-01-01")


def test_an_output_dir_override_of_a_runs_config_picks_that_folder(crashed, tmp_path):
    """``output_dir=`` given on the command line wins over the folder the run's config.yaml sits in, as --output-dir does."""
    from mtcore.train.trainer import Trainer

    assert Trainer(crashed / "config.yaml").output_dir == crashed
    assert Trainer(crashed / "config.yaml", overrides=["output_dir=runs/again"]).output_dir == Path("runs/again")
    assert Trainer(crashed / "config.yaml", output_dir="runs/other").output_dir == Path("runs/other")
