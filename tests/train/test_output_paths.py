"""``mt train --output-dir``: a file is refused in one line; a run that fails while starting leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture()
def mt_train():
    from mtcore.cli.app import app

    runner = CliRunner()

    def run(*args: object):
        return runner.invoke(app, ["train", *(str(a) for a in args)])

    return run


@pytest.fixture()
def broken_config(tmp_path: Path, make_config) -> Path:
    """A config whose first task's data_dir is no folder: it fails while loading data, after the run directory is started
    (exit 2, a usage error, as --data-dir's)."""
    config = make_config(schedule={"max_steps": 2}, checkpoint={"every": None})
    config["tasks"][0] = {**config["tasks"][0], "data_dir": str(tmp_path / "missing")}
    path = tmp_path / "conf" / "broken.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _one_error_line(result, *parts: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "unexpected" not in lines[0] and "Traceback" not in result.output, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def test_output_dir_that_is_a_file(mt_train, broken_config, tmp_path):
    target = tmp_path / "ff"
    target.write_text("mine\n")
    result = mt_train(broken_config, "--output-dir", target)
    assert result.exit_code == 2
    _one_error_line(result, f"--output-dir {target} is a file; choose a folder")
    result = mt_train(broken_config, "--output-dir", target / "sub")
    assert result.exit_code == 2
    _one_error_line(result, f"{target} is a file, not a folder")
    assert target.read_text() == "mine\n" and _listing(tmp_path / "conf") == ["broken.yaml"]


def test_failed_start_leaves_an_existing_empty_folder_empty(mt_train, broken_config, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    result = mt_train(broken_config, "--output-dir", mine)
    assert result.exit_code == 2
    _one_error_line(result, "missing")
    assert mine.is_dir() and _listing(mine) == []


def test_failed_start_keeps_what_was_in_the_folder(mt_train, broken_config, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    result = mt_train(broken_config, "--output-dir", mine)
    assert result.exit_code == 2
    assert _listing(mine) == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me\n"


def test_failed_start_removes_the_parent_folders_it_made(mt_train, broken_config, tmp_path):
    (tmp_path / "a").mkdir()  # was there before: stays
    result = mt_train(broken_config, "--output-dir", tmp_path / "a" / "b" / "c" / "d")
    assert result.exit_code == 2
    _one_error_line(result)
    assert (tmp_path / "a").is_dir() and _listing(tmp_path / "a") == []


def test_failed_start_with_the_default_output_dir_leaves_no_runs_folder(mt_train, broken_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    result = mt_train(broken_config)
    assert result.exit_code == 2
    _one_error_line(result)
    assert not (tmp_path / "runs").exists() and _listing(tmp_path) == before


def test_the_users_own_config_is_never_overwritten(mt_train, make_config, tmp_path):
    """`mt train config.yaml -o .` in the config's folder: refused, the user's file (with its comments) stays as it was."""
    config = tmp_path / "config.yaml"
    text = "# my experiment\n" + yaml.safe_dump(make_config(schedule={"max_steps": 2}, checkpoint={"every": None}))
    config.write_text(text, encoding="utf-8")
    for extra in ([], ["--resume"]):
        result = mt_train(config, "--output-dir", tmp_path, *extra)
        assert result.exit_code == 2
        _one_error_line(result, "holds a config.yaml that no run wrote here (your own config", "choose another --output-dir")
        assert config.read_text(encoding="utf-8") == text and _listing(tmp_path) == ["config.yaml"]
    result = mt_train(config, "--output-dir", "")
    assert result.exit_code == 2
    _one_error_line(result, "--output-dir is empty")


def test_a_copy_of_another_runs_config_is_not_taken_for_this_runs(mt_train, make_config, tmp_path):
    """config.yaml copied out of runs/a and edited: its first line names runs/a, so -o beside it is refused."""
    config = make_config(schedule={"max_steps": 2}, checkpoint={"every": None})
    first = mt_train(_write(tmp_path / "c.yaml", config), "--output-dir", tmp_path / "a")
    assert first.exit_code == 0, first.stderr
    copy = tmp_path / "edited" / "config.yaml"
    copy.parent.mkdir()
    text = (tmp_path / "a" / "config.yaml").read_text(encoding="utf-8") + "# my edits\n"
    copy.write_text(text, encoding="utf-8")
    result = mt_train(copy, "--output-dir", copy.parent)
    assert result.exit_code == 2
    _one_error_line(result, "or a copy of another run's?")
    assert copy.read_text(encoding="utf-8") == text


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path
