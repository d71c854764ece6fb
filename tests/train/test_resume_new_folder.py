"""``--resume`` into a folder that holds no run (a mistyped ``--output-dir``, or the first start of a job that always
resumes) starts a new run saying so; it said only "no checkpoint in RUN/checkpoints", as for a run killed early."""

from __future__ import annotations

from mtcore import Trainer

from .conftest import read_events


def test_resume_into_a_new_folder_says_it_holds_no_run(tmp_path, make_config):
    run = tmp_path / "runs" / "typo"
    Trainer(make_config(schedule={"max_steps": 2, "warmup_steps": 0}, checkpoint={"every": None}), output_dir=run, resume=True).train()
    notes = next(e for e in read_events(run) if e["event"] == "start")["notes"]
    assert f"--resume: {run} holds no run to continue; a new run starts from step 0 (check --output-dir if you meant to continue " \
           "one)" in notes


def test_notes_are_printed_without_a_progress_display(tmp_path, make_config, capsys):
    """logging.progress: none hid the notes too (what the run decided), not only the progress lines."""
    run = tmp_path / "typo"
    Trainer(make_config(schedule={"max_steps": 1, "warmup_steps": 0}, checkpoint={"every": None}), output_dir=run, resume=True).train()
    said = capsys.readouterr()
    assert f"note: --resume: {run} holds no run to continue" in said.err and said.out == ""  # stdout stays the script's own
