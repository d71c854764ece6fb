"""Prediction memory: peak RSS of ``mt predict MODEL --input rows.jsonl -o out.jsonl`` on N synthetic rows.

A tiny BERT (hidden 32, 2 layers) with one text-classification head is built and saved offline
once; then, for each size, N JSONL rows (2-30 words, and a label the prediction drops) are
written to a temporary folder and the real command runs in a fresh process
(``python -m mtcore.cli.app predict ...``, one CPU thread). Its peak resident set size is the
kernel's own (``ru_maxrss`` of that child, from ``wait4``); a thread samples its ``RssAnon``
(heap) and ``RssFile`` (mapped files) every 50 ms. The input is predicted
``mtcore.predict.chunks.CHUNK_ROWS`` (20,000) rows at a time, so a file of one chunk or less
and a file of many chunks should peak alike; the output is checked to have one row per input row.

    /tmp/venv/bin/python benchmarks/predict_memory.py [--sizes 10000 200000] [--format jsonl|csv]

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


def write_rows(path: Path, rows: int, seed: int) -> None:
    """``rows`` short sentences (2-30 words) with a label, written in blocks."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        block: list[str] = []
        for _ in range(rows):
            block.append(json.dumps({"text": " ".join(rng.choices(VOCAB, k=rng.randint(2, 30))), "label": rng.choice(("neg", "pos"))}))
            if len(block) >= 10_000:
                out.write("\n".join(block) + "\n")
                block = []
        if block:
            out.write("\n".join(block) + "\n")


def build_model(root: Path, seed: int) -> Path:
    """A saved tiny model with one text-classification head, ``bench:rows`` (no download)."""
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from mtcore.model import MultitaskModel
    from mtcore.task import Task
    from mtcore.testing import build_tiny_encoder

    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    encoder = build_tiny_encoder(root / "encoder", "bert", words=VOCAB, hidden_size=32, num_layers=2, num_heads=2, seed=seed)
    task = Task(name="rows", kind="text_classification", labels=("neg", "pos"), inputs={"text": "text"}, plugin="bench", max_length=64)
    model = MultitaskModel(str(encoder), [task], tokenizer=AutoTokenizer.from_pretrained(encoder))
    return Path(model.save_pretrained(root / "model"))


def run_size(model: Path, root: Path, rows: int, fmt: str, batch_size: int, seed: int, timeout: float) -> dict[str, Any]:
    """``mt predict`` on ``rows`` rows in a fresh process: its peak RSS and time."""
    data = root / f"rows-{rows}.jsonl"
    write_rows(data, rows, seed)
    out = root / f"predictions-{rows}.{fmt}"
    command = [sys.executable, "-m", "mtcore.cli.app", "predict", str(model), "--task", "bench:rows", "--input", str(data),
               "--output", str(out), "--format", fmt, "--batch-size", str(batch_size), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": str(ROOT), "MT_LOAD_PLUGINS": ""}
    with (root / "stderr.txt").open("w") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=root)
        sampler = RssSampler(process.pid)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    peaks = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"size {rows} failed (exit {process.returncode}):\n{(root / 'stderr.txt').read_text()[-3000:]}")
    written = sum(1 for _ in out.open(encoding="utf-8")) - (1 if fmt == "csv" else 0)
    if written != rows:
        raise RuntimeError(f"size {rows}: {written} predictions written")
    out.unlink()
    data.unlink()
    return {"rows": rows, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "peak_anon_mb": round(peaks["RssAnon"], 1),
            "peak_file_mb": round(peaks["RssFile"], 1), "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per size")
    parser.add_argument("--smoke", action="store_true", help="two tiny sizes (checks the script works)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes = [200, 2000]
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from mtcore.predict.chunks import CHUNK_ROWS

    with tempfile.TemporaryDirectory(prefix="mt-predict-memory-") as tmp:
        root = Path(tmp)
        model = build_model(root, args.seed)
        results = [run_size(model, root, n, args.format, args.batch_size, args.seed, args.timeout) for n in args.sizes]
    growth = results[-1]["peak_rss_mb"] - results[0]["peak_rss_mb"]
    report = {"setup": {"command": f"mt predict MODEL --input rows.jsonl -o predictions.{args.format} --batch-size {args.batch_size} --device cpu",
                        "model": "tiny BERT (hidden 32, 2 layers), one text-classification head, fp32, CPU, 1 thread",
                        "rows": "2-30 words, max_length 64", "chunk_rows": CHUNK_ROWS},
              "results": results, "growth_mb": round(growth, 1)}
    print(json.dumps(report, indent=2))
    print()
    print("| input rows | peak RSS (MB) | peak heap, RssAnon (MB) | peak mapped files, RssFile (MB) | time (s) |")
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['rows']:,} | {r['peak_rss_mb']:.0f} | {r['peak_anon_mb']:.0f} | {r['peak_file_mb']:.0f} | {r['seconds']} |")
    print(f"\ngrowth {results[0]['rows']:,} -> {results[-1]['rows']:,} rows: {growth:.0f} MB peak RSS "
          f"({CHUNK_ROWS:,} rows predicted at a time)")
    return report


if __name__ == "__main__":
    main()
