"""2-process DDP on CPU (torchrun, gloo), what a user sees: every warning and every error once (the
main process speaks), and a start that fails leaves no run directory behind."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mtcore.cli.app"]


def _lines(text: str, start: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(start)]


def _ner_task(root: Path) -> dict:
    """A token task whose rows are longer than its max_length (8): words are cut, with a warning."""
    rng = random.Random(4)
    files = {}
    for split, n in (("train", 24), ("validation", 6)):
        rows = []
        for _ in range(n):
            words = [rng.choice(["the", "a", "red", "blue", "on", "apple"]) for _ in range(rng.randint(3, 12))]
            rows.append({"tokens": words, "label": ["B-C" if w in ("red", "blue") else "O" for w in words]})
        path = root / f"ner_{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        files[split] = str(path)
    return {"define": {"name": "ner", "kind": "token_classification", "labels": ["O", "B-C"], "files": files},
            "max_length": 8, "batch_size": 4}


def test_ddp_warnings_are_printed_by_the_main_process_only(tmp_path: Path, make_config, helpers):
    """The token task's cut-words warnings (train and validation) and the unused task batch_size
    warning were printed by every process."""
    config = make_config(tasks=[_ner_task(tmp_path)], schedule={"max_steps": 2, "warmup_steps": 0},
                         batching={"max_tokens": 64}, checkpoint={"every": None, "at_end": False})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([*TORCHRUN, "train", str(path), "--output-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    warned = _lines(done.stderr, "warning:")
    cut = [w for w in warned if "past max_length 8" in w]
    assert len(cut) == 2 and {"train split" in w for w in cut} == {True, False}, warned  # train and validation, once each
    assert len([w for w in warned if "batch_size of user:ner is not used" in w]) == 1, warned
    assert len(warned) == len(set(warned)), warned
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2


def test_ddp_start_failure_is_one_error_line_and_leaves_nothing(tmp_path: Path, make_config, small_encoder: Path, helpers):
    """An encoder folder without tokenizer files fails on every process after the run directory was
    started: the error was printed by each process, and the main process could be stopped by the
    launcher before it removed what it had written."""
    encoder = tmp_path / "encoder"
    shutil.copytree(small_encoder, encoder, ignore=shutil.ignore_patterns("tokenizer*", "vocab*", "special_tokens*"))
    config = make_config(encoder={"path": str(encoder)}, checkpoint={"every": None})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    done = subprocess.run([*TORCHRUN, "train", str(path), "--output-dir", str(run)],
                          capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert done.returncode != 0
    errors = _lines(done.stderr, "error:")
    assert len(errors) == 1 and "no tokenizer files" in errors[0] and str(encoder) in errors[0], done.stderr[-3000:]
    assert "mtcore/train" not in done.stderr and "mtcore/cli" not in done.stderr  # no traceback of ours (torchrun adds its own report)
    assert not run.exists()


def test_ddp_dynamic_weight_average_closes_its_windows_on_every_process(tmp_path: Path, make_config, helpers):
    """dwa averages its window sums over the processes (a collective at each window's end): a rank
    that skipped it would hang the other; both must finish with weights moved off 1."""
    config = make_config(loss={"strategy": "dwa", "options": {"window": 1}}, schedule={"max_steps": 4, "warmup_steps": 0},
                         logging={"every": 1, "progress": "none", "plot": False}, checkpoint={"every": None, "at_end": True})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([*TORCHRUN, "train", str(path), "--output-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    weights = [e["weights"] for e in helpers.read_events(tmp_path / "run") if e["event"] == "loss_weights"]
    assert len(weights) == 4 and set(weights[0].values()) == {1.0}
    assert sum(weights[-1].values()) == pytest.approx(3.0) and len(set(weights[-1].values())) == 3


_RANK1_OOM = '''
import os, sys
import torch
if os.environ.get("RANK") == "1":  # the 5th batch of rank 1 only: what a CUDA out-of-memory on one GPU of two looks like
    from mtcore.train import monitor
    calls = {"n": 0}
    original = monitor.LossMeter.add
    def add(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return original(self, *args, **kwargs)
    monitor.LossMeter.add = add
from mtcore.cli.app import main
sys.argv = ["mt", *sys.argv[1:]]
main()
'''


def test_a_failure_of_one_process_is_its_own_line_then_the_main_process_names_it(tmp_path: Path, make_config, helpers):
    """Rank 1 runs out of memory alone: the main process printed "unexpected RuntimeError: [gloo ...]
    Connection closed by peer" and logged no error event."""
    script = tmp_path / "rank1_oom.py"
    script.write_text(_RANK1_OOM, encoding="utf-8")
    config = make_config(schedule={"max_steps": 20, "warmup_steps": 0}, checkpoint={"every": 2, "keep_last": 1})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
                           "train", str(path), "--output-dir", str(run)], capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert done.returncode != 0
    errors = _lines(done.stderr, "error:")
    assert any("CUDA out of memory" in e for e in errors), done.stderr[-3000:]
    assert not any("unexpected" in e for e in errors), errors
    stopped_by_torchrun = errors[1:] == ["error: SIGTERM received: stopped"]  # rank 0 signalled by torchrun before it saw the failure
    assert any("another process of this launch stopped" in e for e in errors) or len(errors) == 1 or stopped_by_torchrun, errors
    events = [e for e in helpers.read_events(run) if e["event"] == "error"]
    assert events and ("another process" in events[0]["message"] or "out of memory" in events[0]["message"]), events
    assert (run / "checkpoints").is_dir() and not (run / "model").exists()  # kept for --resume


def test_is_peer_failure_tells_a_collective_losing_its_peer_from_other_errors():
    from mtcore.train.distributed import is_peer_failure

    gloo = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:29500")
    assert is_peer_failure(gloo)
    assert not is_peer_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x8 and 16x2)"))
    assert not is_peer_failure(ValueError("Connection closed by peer"))  # not what a collective raises
