"""Ctrl-C stops ``mt train`` at once (no checkpoint of its own), says which checkpoint ``--resume`` continues from and
with what command, and leaves an ``interrupted`` event; from Python it is still a KeyboardInterrupt."""

from __future__ import annotations

import shlex
import signal
import subprocess
import time
from pathlib import Path

import yaml


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal's foreground job has it: a runner started in the background (``cmd &``) ignores it,
    and its children would inherit that, never seeing the Ctrl-C this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_names_the_latest_checkpoint_and_the_command_that_resumes(tmp_path: Path, make_config, helpers):
    config, run = tmp_path / "run.yaml", tmp_path / "run"
    config.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 200, "warmup_steps": 1}, checkpoint={"every": 2, "keep_last": 2},
                                                 logging={"every": 2, "progress": "none", "plot": False})))
    process = subprocess.Popen(helpers.mt_command("train", str(config), "debug.step_delay_s=0.05", "-o", str(run)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=helpers.subprocess_env(),
                               preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        deadline = time.time() + 90
        while not list((run / "checkpoints").glob("step-000004")):
            assert process.poll() is None and time.time() < deadline, process.stderr.read() if process.poll() is not None else "slow"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: interrupted at step ") and "; the latest checkpoint is " in line, line
    latest = Path(line.split("; the latest checkpoint is ", 1)[1].split(";", 1)[0])
    assert latest.parent == run / "checkpoints" and (latest / "state.json").is_file()
    command = shlex.split(line.split("; continue with ", 1)[1])
    assert command == ["mt", "train", str(config), "debug.step_delay_s=0.05", "--output-dir", str(run), "--resume"]
    event = helpers.read_events(run)[-1]
    assert event["event"] == "interrupted" and event["checkpoint"] == str(latest) and event["step"] >= 4
    assert not (run / "summary.json").exists()
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    compared = CliRunner().invoke(app, ["compare", str(run)])
    assert compared.exit_code != 0 and f"interrupted (Ctrl-C) at step {event['step']}; continue with mt train" in compared.stderr
