"""SIGTERM (``kill``, ``timeout``, a scheduler) stops ``mt predict`` as Ctrl-C does: one line, exit 143, and no
temporary file beside the output nor a spooled copy of stdin (they were left: 4 MB of partial output, the whole input)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_sigterm_mid_prediction_leaves_no_partial_or_spooled_file(bert_model_dir: Path, tmp_path: Path):
    rows = "".join(json.dumps({"review": f"good movie {i} " + "very " * (i % 20)}) + "\n" for i in range(60_000))
    out = tmp_path / "out"
    out.mkdir()
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TMPDIR": str(spool)}
    process = subprocess.Popen([sys.executable, "-m", "mtcore.cli.app", "predict", str(bert_model_dir), "--task", "demo:sentiment",
                                "-i", "-", "-o", str(out / "p.jsonl")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        process.stdin.write(rows)
        process.stdin.close()
        deadline = time.time() + 240
        while not list(out.glob(".tmp-*")):  # the output is being written: a chunk was predicted
            assert process.poll() is None and time.time() < deadline, process.stderr.read()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 128 + signal.SIGTERM
    assert process.stderr.read().strip().splitlines()[-1] == "error: SIGTERM received: stopped"
    assert list(out.iterdir()) == []  # neither the output nor its temporary file
    assert [p.name for p in spool.iterdir() if p.name.startswith(".mt-stdin-")] == []  # the spooled stdin is gone
