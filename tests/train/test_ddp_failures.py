"""2-process DDP on CPU (torchrun, gloo) when something is broken: the main process names it in one line, promptly.

* a worker dies while the main process waits for it in a collective (NCCL does; gloo too while the dead worker's
  sockets stay open, here held by a child it forked): torchrun's SIGTERM is no preemption; the main process
  said nothing and was killed by torchrun 30 s later;
* a damaged ``rng-1`` file of a checkpoint: only rank 1 read it, and the main process said that "another process
  stopped" and advised ``--resume``, which fails the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun's workers are found in /proc")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]

_RANK1_DIES_HOLDING_ITS_SOCKETS = '''
import os, sys, signal, time
if os.environ.get("RANK") == "1":  # at its 7th batch: fork a child that keeps the sockets open, then die at once
    from mtcore.train import monitor
    calls = {"n": 0}
    original = monitor.LossMeter.add
    def add(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            child = os.fork()
            if child == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.setsid()
                time.sleep(60)
                os._exit(0)
            with open(os.environ["HOLDER_PID_FILE"], "w") as handle:
                handle.write(str(child))
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)
    monitor.LossMeter.add = add
from mtcore.cli.app import main
sys.argv = ["mt", *sys.argv[1:]]
main()
'''


def test_sigterm_after_a_worker_died_stops_the_main_process_at_once_with_one_line(tmp_path: Path, make_config, helpers):
    script, holder = tmp_path / "rank1_dies.py", tmp_path / "holder.pid"
    script.write_text(_RANK1_DIES_HOLDING_ITS_SOCKETS, encoding="utf-8")
    config = make_config(schedule={"max_steps": 40, "warmup_steps": 0}, checkpoint={"every": 2, "keep_last": 1},
                         logging={"every": 20, "progress": "none", "plot": False})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    try:
        done = subprocess.run([*TORCHRUN, str(script), "train", str(path), "--output-dir", str(run)], capture_output=True, text=True,
                              env=helpers.subprocess_env(HOLDER_PID_FILE=str(holder)), timeout=240)
    finally:
        if holder.is_file():
            try:
                os.kill(int(holder.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert holder.is_file(), done.stderr[-3000:]  # rank 1 did die at its 7th batch
    assert done.returncode != 0
    assert "forcefully" not in done.stderr, done.stderr[-3000:]  # torchrun did not have to kill the main process
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "another process of this launch stopped" in errors[0], done.stderr[-3000:]
    assert "received: stopping" not in done.stdout  # not taken for a preemption
    events = [e for e in helpers.read_events(run) if e["event"] == "error"]
    assert len(events) == 1 and "another process" in events[0]["message"]
    assert not [e for e in helpers.read_events(run) if e["event"] == "preempted"]
    assert (run / "checkpoints").is_dir() and not (run / "model").exists()  # kept for --resume


def test_a_damaged_rng_file_of_another_rank_is_named_by_the_main_process(tmp_path: Path, make_config, helpers):
    from mtcore import Trainer

    config = make_config(schedule={"max_steps": 2, "warmup_steps": 0}, checkpoint={"every": 2, "keep_last": 1, "at_end": True},
                         evaluation={"every": None, "at_end": False})
    run = tmp_path / "run"
    Trainer(config, output_dir=run).train()
    checkpoint = run / "checkpoints" / "step-000002"
    sampler = json.loads((checkpoint / "sampler.json").read_text())
    sampler["world_size"] = 2  # as torchrun --nproc_per_node 2 wrote it: rank 1's RNG file is damaged
    (checkpoint / "sampler.json").write_text(json.dumps(sampler))
    (checkpoint / "rng-1.json").write_text((checkpoint / "rng-0.json").read_text())
    (checkpoint / "rng-1.safetensors").write_bytes((checkpoint / "rng-0.safetensors").read_bytes()[:40])
    shutil.rmtree(run / "model")  # as if killed after the checkpoint
    (run / "summary.json").unlink()
    resumed = subprocess.run([*TORCHRUN, "-m", "mtcore.cli.app", "train", str(run / "config.yaml"), "--output-dir", str(run), "--resume"],
                             capture_output=True, text=True, env=helpers.subprocess_env(), timeout=240)
    assert resumed.returncode != 0
    errors = [line for line in resumed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, resumed.stderr[-3000:]
    assert str(checkpoint / "rng-1.safetensors") in errors[0] and "delete the checkpoint" in errors[0], errors
    assert "another process" not in resumed.stderr


_RANK1_CANNOT_READ_ITS_DATA = '''
import os, sys
if os.environ.get("RANK") == "1":  # a data file only this node cannot read
    import mtcore.data
    from mtcore.errors import DataError
    def unreadable(*args, **kwargs):
        raise DataError("train.jsonl cannot be read on this node")
    mtcore.data.load_task_data = unreadable
from mtcore.cli.app import main
sys.argv = ["mt", *sys.argv[1:]]
main()
'''


def test_a_process_failing_while_the_run_starts_is_said_to_have_stopped_not_a_gloo_error(tmp_path: Path, make_config, helpers):
    """The main process printed "unexpected RuntimeError: [.../gloo/transport/tcp/pair.cc:553] Connection closed by peer"."""
    script = tmp_path / "rank1_data.py"
    script.write_text(_RANK1_CANNOT_READ_ITS_DATA, encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 2, "warmup_steps": 0})))
    run = tmp_path / "run"
    done = subprocess.run([*TORCHRUN, str(script), "train", str(path), "--output-dir", str(run)], capture_output=True, text=True,
                          env=helpers.subprocess_env(), timeout=240)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "error: train.jsonl cannot be read on this node" in errors, done.stderr[-3000:]
    assert not [e for e in errors if "unexpected" in e or "gloo" in e], done.stderr[-3000:]
    assert any("another process of this launch stopped while the run was starting" in e for e in errors) or len(errors) == 1, errors
    assert not run.exists()  # nothing left behind
