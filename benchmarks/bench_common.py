"""Pieces shared by the CPU training benchmarks (train_throughput.py, multitask_overhead.py).

Importable from the scripts because ``python benchmarks/<script>.py`` puts this folder on
``sys.path``; also sets the offline environment, puts the repository root on the path, and
keeps the prepared-data cache in a temporary folder removed at exit (each run's task files are
new, so their cache entries would pile up in the user's datasets cache), unless
``HF_DATASETS_CACHE`` names one.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "HF_DATASETS_CACHE" not in os.environ:  # before datasets is imported; child processes inherit it
    _CACHE = tempfile.mkdtemp(prefix="mt-bench-cache-")
    os.environ["HF_DATASETS_CACHE"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

VOCAB = [f"w{i}" for i in range(300)]


def print_report(report: dict[str, Any], header: list[str], rows: list[list[Any]], align: str = "---") -> None:
    """A script's output: ``report`` as JSON, a blank line, then a markdown table of ``rows`` under ``header``."""
    print(json.dumps(report, indent=2))
    print("\n| " + " | ".join(header) + " |\n|" + "|".join(align for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def add_model_arguments(parser: argparse.ArgumentParser, *, rows: int) -> None:
    """The options every training benchmark shares: steps, batch, model size, rows, lr, threads."""
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--rows", type=int, default=rows, help="training rows per task")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each loop; the fastest is reported")


def prepare_torch(threads: int) -> Any:
    """Import torch quietly (no transformers progress bars), set its thread count, return it."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    return torch


def build_encoder(root: Path, args: argparse.Namespace) -> Path:
    from mtcore.testing import build_tiny_encoder

    return build_tiny_encoder(root / "encoder", "bert", words=VOCAB, hidden_size=args.hidden, num_layers=args.layers,
                              num_heads=args.heads, seed=args.seed)


def engine_config(args: argparse.Namespace, encoder: Path, tasks: list[dict[str, Any]], log_every: int = 50) -> dict[str, Any]:
    """A fp32 CPU training config with no evaluation, checkpoints or plots (pure training speed)."""
    return {
        "seed": args.seed, "cpu": True, "precision": "fp32", "encoder": {"path": str(encoder)}, "tasks": tasks,
        "optimizer": {"lr": args.lr, "weight_decay": 0.0, "max_grad_norm": None},
        "schedule": {"max_steps": args.steps, "warmup_steps": 0}, "batching": {"batch_size": args.batch_size},
        "evaluation": {"at_end": False}, "checkpoint": {"every": None, "at_end": False},
        "logging": {"every": log_every, "progress": "none", "plot": False},
    }


def run_engine(config: dict[str, Any], output: Path) -> tuple[dict[str, Any], Any]:
    """Train with mtcore's engine, counting the token slots the encoder computes for every batch it builds."""
    from mtcore.train.build import build_engine
    from mtcore.train.loop import train_loop
    from mtcore.train.trainer import Trainer

    engine = build_engine(Trainer(config, output_dir=output).plan, output)
    padded = [0]
    make_batch = engine.sampler.make_batch

    def counting(name: str, rows: Any, *more: Any) -> Any:
        batch = make_batch(name, rows, *more)
        packed = batch.data.get("token_index")  # padding-free: the encoder's layers compute real tokens only
        padded[0] += int(packed.numel() if packed is not None else batch.data["input_ids"].numel())
        return batch

    engine.sampler.make_batch = counting
    summary = train_loop(engine)
    seconds, wait = summary["timing"]["loop_s"], summary["timing"]["data_wait_s"]
    return {"steps": summary["steps"], "seconds": seconds, "samples": summary["examples_seen"], "real_tokens": summary["tokens_seen"],
            "padded_tokens": padded[0], "data_s": wait, "compute_s": seconds - wait}, engine


def rates(r: dict[str, Any]) -> dict[str, Any]:
    """Add samples/s, real tokens/s, padding efficiency and the data/compute split to a run's counts."""
    s, steps = r["seconds"], max(r["steps"], 1)
    compute = r.get("compute_s", s - r["data_s"])
    return {**r, "samples_per_s": r["samples"] / s, "real_tokens_per_s": r["real_tokens"] / s,
            "padding_efficiency": r["real_tokens"] / max(r["padded_tokens"], 1),
            "data_ms_per_step": 1000 * r["data_s"] / steps, "compute_ms_per_step": 1000 * compute / steps,
            "data_share": r["data_s"] / s}


class RssSampler:
    """Peaks of a process's ``RssAnon`` (heap) and ``RssFile`` (mapped files), in MB, read from
    ``/proc/<pid>/status`` every ``interval`` seconds in a thread (``pid`` None: this process)."""

    def __init__(self, pid: int | None = None, interval: float = 0.05) -> None:
        import threading

        self.peaks = {"RssAnon": 0.0, "RssFile": 0.0}
        self._status = Path(f"/proc/{pid}/status" if pid is not None else "/proc/self/status")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                lines = self._status.read_text().splitlines()
            except OSError:  # the process ended
                return
            for line in lines:
                key = line.split(":")[0]
                if key in self.peaks:
                    self.peaks[key] = max(self.peaks[key], int(line.split()[1]) / 1024)
            self._stop.wait(interval)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.peaks
