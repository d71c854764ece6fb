"""Memory scaling: peak RSS of a short training run on N synthetic rows, one subprocess per size.

Each size runs in a fresh Python process that writes N JSONL rows of one text-classification
task to a temporary folder, trains a tiny BERT on them for ``--steps`` optimizer steps through
the real path (``mtcore.Trainer`` -> ``load_task_data`` -> Arrow files memory-mapped by
``datasets`` -> ``MultitaskBatchSampler``), and reports its peak resident set size
(``VmHWM`` in ``/proc/self/status``). The datasets cache lives in the temporary folder too.
Mapped Arrow pages that the kernel counts in RSS are file-backed and can be dropped under
pressure; the figure is still the honest peak the process reached. A thread samples
``RssAnon`` (heap: what the process really holds) and ``RssFile`` (mapped files) every 50 ms,
so the table also says which of the two grew.

    /tmp/venv/bin/python benchmarks/memory_scaling.py [--sizes 10000 1000000] [--steps 30]

Prints a JSON object, then a markdown table. ``--smoke`` runs two small sizes quickly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import RssSampler

ROOT = Path(__file__).resolve().parents[1]
VOCAB = [f"w{i}" for i in range(200)]


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_rows(path: Path, rows: int, seed: int) -> None:
    """``rows`` short sentences (2-30 words) with a binary label, written in chunks."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        chunk: list[str] = []
        for _ in range(rows):
            n = rng.randint(2, 30)
            chunk.append(json.dumps({"text": " ".join(rng.choices(VOCAB, k=n)), "label": rng.choice(("neg", "pos"))}))
            if len(chunk) >= 10_000:
                out.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            out.write("\n".join(chunk) + "\n")


def child(rows: int, steps: int, batch_size: int, seed: int) -> dict[str, Any]:
    """Run one size in this process; returns its measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["HF_DATASETS_CACHE"] = str(root / "hf-cache")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        import torch
        from transformers.utils import logging as hf_logging

        from mtcore.testing import build_tiny_encoder
        from mtcore.train.trainer import Trainer

        hf_logging.disable_progress_bar()
        try:
            from datasets.utils.logging import disable_progress_bar

            disable_progress_bar()
        except ImportError:
            pass
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        write_rows(root / "train.jsonl", rows, seed)
        written = time.perf_counter()
        encoder = build_tiny_encoder(root / "encoder", "bert", words=VOCAB, hidden_size=32, num_layers=2, num_heads=2, seed=seed)
        base_rss = current_rss_mb()
        sampler = RssSampler()
        config = {
            "seed": seed, "cpu": True, "precision": "fp32", "encoder": {"path": str(encoder)},
            "tasks": [{"define": {"name": "rows", "kind": "text_classification", "labels": ["neg", "pos"],
                                  "files": {"train": str(root / "train.jsonl")}}, "max_length": 64}],
            "schedule": {"max_steps": steps, "warmup_steps": 0}, "batching": {"batch_size": batch_size},
            "evaluation": {"at_end": False}, "checkpoint": {"every": None, "at_end": False},
            "logging": {"every": max(steps, 1), "progress": "none", "plot": False},
        }
        summary = Trainer(config, output_dir=root / "run").train()
        done = time.perf_counter()
        peaks = sampler.stop()
        steps_done = summary.get("steps") if isinstance(summary, dict) else None
        return {"rows": rows, "steps": steps_done if steps_done is not None else steps, "peak_rss_mb": round(peak_rss_mb(), 1),
                "rss_before_loading_mb": round(base_rss, 1),  # imports done, rows written, encoder built
                "peak_anon_mb": round(peaks["RssAnon"], 1), "peak_file_mb": round(peaks["RssFile"], 1), "write_s": round(written - t0, 1),
                "load_tokenize_train_s": round(done - written, 1), "total_s": round(done - t0, 1)}


def run_size(rows: int, steps: int, batch_size: int, seed: int, timeout: float) -> dict[str, Any]:
    """Run one size in a fresh subprocess (so peaks do not mix)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(rows), "--steps", str(steps),
               "--batch-size", str(batch_size), "--seed", str(seed)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"size {rows} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per size")
    parser.add_argument("--smoke", action="store_true", help="two tiny sizes and 3 steps (checks the script works)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(child(args.child, args.steps, args.batch_size, args.seed)))
        return {}
    if args.smoke:
        args.sizes, args.steps = [200, 2000], 3
    results = [run_size(n, args.steps, args.batch_size, args.seed, args.timeout) for n in args.sizes]
    growth = results[-1]["peak_rss_mb"] - results[0]["peak_rss_mb"]
    anon_growth = results[-1]["peak_anon_mb"] - results[0]["peak_anon_mb"]
    report = {"setup": {"model": "tiny BERT (hidden 32, 2 layers), fp32, CPU, 1 thread", "steps": args.steps,
                        "batch_size": args.batch_size, "rows": "2-30 words, max_length 64"},
              "results": results, "growth_mb": round(growth, 1), "anon_growth_mb": round(anon_growth, 1), "goal_mb": 300, "within_goal": growth < 300}
    print(json.dumps(report, indent=2))
    print()
    print("| rows | peak RSS (MB) | peak heap, RssAnon (MB) | peak mapped files, RssFile (MB) | RSS before loading (MB) | "
          "write JSONL (s) | load + tokenize + train (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['rows']:,} | {r['peak_rss_mb']:.0f} | {r['peak_anon_mb']:.0f} | {r['peak_file_mb']:.0f} | "
              f"{r['rss_before_loading_mb']:.0f} | {r['write_s']} | {r['load_tokenize_train_s']} |")
    print(f"\ngrowth {results[0]['rows']:,} -> {results[-1]['rows']:,} rows: {growth:.0f} MB peak RSS (goal < 300 MB), "
          f"{anon_growth:.0f} MB of it heap")
    return report


if __name__ == "__main__":
    main()
