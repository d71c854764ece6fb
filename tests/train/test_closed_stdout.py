"""``mt train ... | head -3`` (or a pager quit): the closed stdout stopped the run at its next progress line, exit 141,
nothing on stderr, no checkpoint, and "unexpected BrokenPipeError" recorded as the run's error."""

from __future__ import annotations

import json
import subprocess

import yaml

from .conftest import mt_command, subprocess_env


def test_training_goes_on_when_its_stdout_is_closed(tmp_path, make_config):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(make_config(logging={"every": 1, "progress": "plain", "plot": False})), encoding="utf-8")
    run = tmp_path / "run"
    process = subprocess.Popen(mt_command("train", str(config), "--output-dir", str(run)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=subprocess_env())
    process.stdout.readline()  # the first line, then the reader quits (head -1)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, stderr
    assert "note: standard output was closed (its reader quit); training goes on without progress lines" in stderr
    assert "unexpected" not in stderr and "Traceback" not in stderr
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "completed" and (run / "model" / "mtcore.json").is_file()
    events = [json.loads(line)["event"] for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "error" not in events and events.count("train") >= summary["steps"]


def test_a_sweep_goes_on_when_its_stdout_is_closed(tmp_path, make_config):
    """`mt train --seeds 2 | head -1`: the second seed's report line ended the sweep, exit 141, no seeds.json."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 2, "warmup_steps": 0}, checkpoint={"every": None},
                                                 logging={"every": 1, "progress": "none", "plot": False})), encoding="utf-8")
    out = tmp_path / "seeds"
    process = subprocess.Popen(mt_command("train", str(config), "--output-dir", str(out), "--seeds", "2"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=subprocess_env())
    process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, stderr
    spread = json.loads((out / "seeds.json").read_text(encoding="utf-8"))
    assert len(spread["seeds"]) == 2 and (out / f"seed-{spread['seeds'][1]}" / "model" / "mtcore.json").is_file(), spread
