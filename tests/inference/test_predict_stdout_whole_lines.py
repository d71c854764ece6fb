"""Ctrl-C or SIGTERM while ``mt predict`` writes predictions to stdout: the output ends at a whole line (the
signal landed in the middle of a chunk's write and its last line was cut), and the command stops as before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: The real CLI, with Ctrl-C raising KeyboardInterrupt even where the test runner's parent ignores SIGINT.
MT = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
      "from mtcore.cli.app import main; main(sys.argv[1:])")


@pytest.mark.parametrize("sig, code, last", [(signal.SIGINT, 130, "error: interrupted"),
                                             (signal.SIGTERM, 143, "error: SIGTERM received: stopped")])
def test_a_signal_mid_write_leaves_whole_lines_on_stdout(bert_model_dir: Path, tmp_path: Path, sig, code, last):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"review": f"good movie {i} " + "very " * (i % 20)}) + "\n" for i in range(3000)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", MT, "predict", str(bert_model_dir), "--task", "demo:sentiment", "-i", str(path),
                                "--batch-size", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, bufsize=0)
    try:
        first = process.stdout.read(1)  # the first chunk is being written: ~300 KB, far more than the pipe holds
        assert first == b"{", process.stderr.read().decode()
        time.sleep(1.0)  # blocked in a write of it, the pipe full
        process.send_signal(sig)
        rest, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    out = (first + rest).decode("utf-8")
    assert process.returncode == code, stderr.decode()
    assert stderr.decode().strip().splitlines()[-1] == last
    assert out.endswith("\n"), out[-200:]  # no line cut short
    lines = out.splitlines()
    assert 0 < len(lines) < 3000 and [json.loads(line)["idx"] for line in lines] == list(range(len(lines)))
