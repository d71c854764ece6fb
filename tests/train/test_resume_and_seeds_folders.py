"""``mt train``'s folders: ``--resume`` of a finished run changes nothing, ``--seeds`` stays out of a run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


@pytest.fixture
def finished(tmp_path: Path, make_config) -> tuple[Path, Path]:
    """A config file and the run it trained (3 steps, evaluated at the end)."""
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 3, "warmup_steps": 0})), encoding="utf-8")
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(run)])
    assert result.exit_code == 0, result.output
    return config, run


def _state(run: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(run)): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(run.rglob("*"))}


def test_resume_of_a_finished_run_says_so_and_changes_nothing(finished):
    config, run = finished
    before = _state(run)
    result = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(run), "--resume"])
    assert result.exit_code == 0, result.output
    assert "already trained: steps 3, final aggregate" in result.stdout and "nothing was changed" in result.stdout
    assert _state(run) == before  # no second start event, summary (train_seconds), model or checkpoint rewritten
    changed = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(run), "--resume", "optimizer.lr=0.5"])
    assert changed.exit_code == 2 and "config key 'optimizer.lr' changed (0.001 -> 0.5)" in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1 and _state(run) == before
    # a task's setting is named by its key, not by every task's settings before and after
    changed = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(run), "--resume", "tasks.0.max_length=32"])
    line = changed.stderr.strip()
    assert changed.exit_code == 2 and "config key 'tasks.0.max_length' changed (None -> 32)" in line and len(line) < 300, line
    assert _state(run) == before


def test_seeds_into_a_run_directory_is_refused_in_one_line_and_writes_nothing(finished):
    config, run = finished
    before = _state(run)
    for extra in ([], ["--resume"]):
        result = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(run), "--seeds", "2", *extra])
        line = result.stderr.strip()
        assert result.exit_code == 2 and len(line.splitlines()) == 1, result.output
        assert f"--output-dir {run} is the run directory of a single run; --seeds" in line and f"--output-dir {run}-seeds" in line
        assert _state(run) == before and not list(run.glob("seed-*")) and not (run / "seeds.json").exists()
    seed_run = run.parent / "seeds" / "seed-7"
    seed_run.parent.mkdir()
    run.rename(seed_run)  # one seed of a --seeds folder, given instead of the folder: the folder is suggested
    result = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(seed_run), "--seeds", "2"])
    assert result.exit_code == 2 and f"(e.g. --output-dir {seed_run.parent})" in result.stderr, result.output


def test_the_python_api_resumes_a_finished_run_to_its_saved_summary_and_refuses_seeds_inside_it(finished):
    from mtcore.errors import ConfigError, UsageError
    from mtcore.train.seeds import train_seeds
    from mtcore.train.trainer import Trainer

    config, run = finished
    before = _state(run)
    trainer = Trainer(config, output_dir=run, resume=True)
    summary = trainer.train()
    assert summary["steps"] == 3 and trainer.engine is None and _state(run) == before
    with pytest.raises(UsageError, match="had already finished, so train\\(\\) trained nothing: load its model"):
        trainer.model  # noqa: B018
    with pytest.raises(ConfigError, match=f"--output-dir {run} is the run directory of a single run"):
        train_seeds(config, run, [1, 2])
    assert _state(run) == before and not list(run.glob("seed-*"))


def test_seeds_already_trained_are_reported_by_the_main_process_only(tmp_path: Path, make_config, monkeypatch):
    """Under torchrun every process resumed the finished seeds and printed each one's line: twice with 2 processes."""
    from mtcore.train.seeds import train_seeds

    config = make_config(schedule={"max_steps": 2, "warmup_steps": 0})
    said: list[int] = []
    train_seeds(config, tmp_path / "seeds", [1], report=lambda seed, summary: said.append(seed))
    assert said == [1]
    train_seeds(config, tmp_path / "seeds", [1], resume=True, report=lambda seed, summary: said.append(seed))
    assert said == [1, 1]  # the main process says a finished seed again
    monkeypatch.setenv("RANK", "1")  # another process of the launch: the finished seed comes back, not said
    train_seeds(config, tmp_path / "seeds", [1], resume=True, report=lambda seed, summary: said.append(seed))
    assert said == [1, 1]
