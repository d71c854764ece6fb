"""``sampler.stop`` from YAML, and the note on small tasks recycled in mode "all" (mt check, mt train)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from clitools import run_mt
from typer.testing import CliRunner

from mtcore.cli.app import app

# TERRa in batches of 4 (20 batches), PARus in batches of 16 (5): in mode "all" PARus goes round 4 times an epoch
CONFIG = {"encoder": {"tiny": "bert"}, "loss": {"strategy": "sum"},
          "tasks": [{"id": "rsg:terra", "source": "sample", "batch_size": 4}, {"id": "rsg:parus", "source": "sample", "batch_size": 16}]}
ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _config(tmp_path: Path) -> str:
    path = tmp_path / "rsg.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def _check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", *args])
    return result.exit_code, result.output


def _notes(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("note: ") and "mode 'all'" in line]


def test_mt_check_names_the_task_mode_all_repeats_and_sampler_stop_smallest_ends_the_epoch_with_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    code, output = _check(config)
    assert code == 0, output
    assert "steps: 20 in the first epoch" in output
    [note] = _notes(output)
    assert "'rsg:parus' (5 batch(es)) 4.0 times per epoch" in note and "largest task 'rsg:terra'" in note
    assert "'rsg:terra' (" not in note and "sampler.stop: smallest" in note

    code, output = _check(config, "sampler.stop=smallest")
    assert code == 0, output
    assert "steps: 5 in the first epoch, 15 in the run" in output and not _notes(output)

    code, output = _check(config, "sampler.stop=3", "loss.strategy=single")  # mode single takes it too
    assert code == 0, output
    assert "steps: 3 in the first epoch, 9 in the run" in output

    code, output = _check(config, "sampler.stop=smallest", "optimizer.gradient_accumulation_steps=2")  # one unit: optimizer steps
    assert code == 0, output
    assert "steps: 3 in the first epoch (5 batches, 2 a step), 8 in the run" in output, output


def test_a_mistyped_stop_rule_is_one_line_with_the_fix(tmp_path: Path) -> None:
    config = _config(tmp_path)
    for value, expected in [("smalest", "did you mean 'smallest'?"), ("0", ">= 1, got 0"), ("yes", "got True")]:
        result = run_mt("check", config, f"sampler.stop={value}", "--no-data", env=ENV)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "config key 'sampler.stop'" in line and expected in line and "largest, smallest or a number of steps" in line
    assert run_mt("check", config, "sampler.stop=null", "--no-data", env=ENV).returncode == 0  # the default, as for other keys


def test_mt_train_shows_the_repeated_task_note(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_mt("train", _config(tmp_path), "--output-dir", str(run), "schedule.max_steps=12", "evaluation.at_end=false",
                    "checkpoint.at_end=false", "logging.plot=false", env=ENV)
    assert result.returncode == 0, result.stderr
    assert len(_notes(result.stdout + result.stderr)) == 1
    start = json.loads((run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert any("'rsg:parus' (5 batch(es)) 2.4 times in the run's 12 batches" in note for note in start["notes"])  # epoch: 20
