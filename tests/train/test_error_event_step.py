"""The ``error`` event's ``step`` is the step its message names.

The bug: a NaN loss at step 2, found at the logging step 4, printed "became NaN or infinite at step 2" while the
``error`` event in ``metrics.jsonl`` (and so ``mt compare``) said step 4, the step the check ran at."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


def test_a_nan_found_at_a_later_logging_step_is_logged_at_the_step_it_appeared(tmp_path: Path, make_config, helpers):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 8, "warmup_steps": 0}, checkpoint={"every": None},
                                                 logging={"every": 4, "progress": "none", "plot": False})), encoding="utf-8")
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "-o", str(run), "debug.inject_nan_at_step=2"])
    line = result.stderr.strip()
    assert result.exit_code == 1 and len(line.splitlines()) == 1, result.output
    assert "became NaN or infinite at step 2;" in line and "no checkpoint was written before it" in line, line
    events = helpers.read_events(run)
    last = events[-1]
    assert last["event"] == "error" and last["message"] == line[len("error: "):]
    assert last["step"] == 2  # not 4, the logging step whose check found it
    assert not [e for e in events if e["event"] == "train"]  # the check at step 4 stopped before logging it
    compared = CliRunner().invoke(app, ["compare", str(run)])
    assert compared.exit_code == 2 and "the run stopped on an error at step 2: loss of task" in compared.stderr, compared.output


def test_the_error_event_takes_the_step_a_training_error_names_else_the_last_step_completed(tmp_path: Path):
    from mtcore.train.loop import log_error
    from mtcore.train.monitor import TrainingError, out_of_memory
    from mtcore.train.run_dir import MetricsLog, read_events

    engine = SimpleNamespace(state=SimpleNamespace(step=4), log=MetricsLog(tmp_path / "metrics.jsonl"))
    oom = out_of_memory(5, "a", 8, 100)  # memory ran out in step 5, the one in progress
    assert "at step 5" in str(oom) and oom.step == 5
    log_error(engine, oom)
    log_error(engine, TrainingError("another process stopped during step 5", step=5))
    log_error(engine, TrainingError("no step named"))
    log_error(engine, ValueError("a bug"))
    assert [(e["event"], e["step"]) for e in read_events(tmp_path / "metrics.jsonl")] == [("error", 5), ("error", 5), ("error", 4), ("error", 4)]
