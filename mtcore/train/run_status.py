"""What a run folder without ``summary.json`` is: stopped on an error, preempted, interrupted, training now, or
killed without a word, from the last event of its ``metrics.jsonl`` and its lock (``mt compare``, and ``mt evaluate``,
``mt predict``, ``mt export`` given such a run). Imports nothing heavy."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any


def unfinished(path: Path, when_training: str, after_error: str) -> str:
    """Why the run at ``path`` has no summary, and what to do: ``when_training`` for a run training now (``"compare it
    when it ends"``), ``after_error`` for one stopped on an error (``"train it again"``)."""
    last = last_event(path / "metrics.jsonl")
    launch = f"torchrun --nproc_per_node {processes} -m mtcore.cli.app train" if (processes := _processes(path)) > 1 else "mt train"
    resume = f"{launch} {shlex.quote(str(path / 'config.yaml'))} --output-dir {shlex.quote(str(path))} --resume"
    if last.get("event") == "error":
        message = " ".join(str(last.get("message", "")).split()).split("; ", 1)[0]
        message = message if len(message) <= 200 else message[:197] + "..."
        return (f"the run stopped on an error at step {last.get('step')}: {message} (its metrics.jsonl has the whole "
                f"message); {after_error}")
    if last.get("event") == "preempted":
        return f"the run was preempted at step {last.get('step')} ({last.get('signal')}); continue with {resume}"
    if last.get("event") == "interrupted":
        return f"the run was interrupted (Ctrl-C) at step {last.get('step')}; continue with {resume}"
    from mtcore.train.run_lock import training_now

    holder = training_now(path)
    step = f" at step {last['step']}" if isinstance(last.get("step"), int) else ""
    if holder:
        return f"it is training now ({holder}; last logged{step or ' nothing yet'}); {when_training}"
    if holder == "":
        return (f"it stopped{step} without finishing or a word (killed, or its machine went down); continue with {resume}")
    return f"it is still running or was interrupted (mt train --resume finishes it: {resume})"


def _processes(path: Path) -> int:
    """How many processes trained the run (its ``start`` event's ``processes``; 1 when unknown): a checkpoint resumes
    under a launch of as many."""
    try:
        with (path / "metrics.jsonl").open("rb") as handle:
            first = json.loads(handle.readline().decode("utf-8", errors="replace"))
    except (OSError, ValueError):
        return 1
    count = first.get("processes") if isinstance(first, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def last_event(path: Path) -> dict[str, Any]:
    """The last complete JSON line of a (possibly large, possibly growing) ``metrics.jsonl``; {} if none."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 65536))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            return event
    return {}
