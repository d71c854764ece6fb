"""Prediction memory: peak RSS of ``mt predict MODEL --input rows.jsonl -o out.jsonl`` on N synthetic rows.

A tiny BERT (hidden 32, 2 layers) with three heads is built and saved offline once: text
classification (``--task text``: rows of 2-30 words), token classification (``--task tokens``:
CoNLL-2003's nine tags, sentences of 2-60 words, max_length 128) and extractive QA (``--task qa``:
a question of 4-12 words, a context of 40-300 words, max_length 384, stride 128, SQuAD's
settings). For each size, N JSONL rows of that task (with a label the prediction drops) are
written to a temporary folder and the real command runs in a fresh process
(``python -m mtcore.cli.app predict ...``, one CPU thread). Its peak resident set size is the
kernel's own (``ru_maxrss`` of that child, from ``wait4``); a thread samples its ``RssAnon``
(heap) and ``RssFile`` (mapped files) every 50 ms. The input is predicted a chunk at a time
(:mod:`mtcore.predict.chunks`), so a file of one chunk or less and a file of many chunks should
peak alike; the output is checked to have one row per input row.

    /tmp/venv/bin/python benchmarks/predict_memory.py [--task text|tokens|qa] [--sizes 10000 200000] [--format jsonl|csv]

Prints a JSON object, then a markdown table. ``--smoke`` runs two small sizes quickly.
"""

from __future__ import annotations

import argparse
import csv
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
TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
TASKS = {"text": "bench:rows", "tokens": "bench:tags", "qa": "bench:qa"}


def make_row(kind: str, rng: random.Random) -> dict[str, Any]:
    """One input row of the task ``kind`` (see the module docstring), with a label."""
    if kind == "tokens":
        words = rng.choices(VOCAB, k=rng.randint(2, 60))
        return {"tokens": words, "label": rng.choices(TAGS, k=len(words))}
    if kind == "qa":
        context = rng.choices(VOCAB, k=rng.randint(40, 300))
        start = rng.randrange(len(context) - 3)
        answer = " ".join(context[start:start + 3])
        return {"question": " ".join(rng.choices(VOCAB, k=rng.randint(4, 12))), "context": " ".join(context),
                "answers": {"text": [answer], "answer_start": [len(" ".join(context[:start])) + (1 if start else 0)]}}
    return {"text": " ".join(rng.choices(VOCAB, k=rng.randint(2, 30))), "label": rng.choice(("neg", "pos"))}


def write_rows(path: Path, rows: int, seed: int, kind: str = "text") -> None:
    """``rows`` rows of the task ``kind`` (:func:`make_row`), written in blocks."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        block: list[str] = []
        for _ in range(rows):
            block.append(json.dumps(make_row(kind, rng)))
            if len(block) >= 10_000:
                out.write("\n".join(block) + "\n")
                block = []
        if block:
            out.write("\n".join(block) + "\n")


def build_model(root: Path, seed: int) -> Path:
    """A saved tiny model with the heads ``bench:rows`` (text), ``bench:tags`` (tokens) and ``bench:qa`` (no download)."""
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from mtcore.model import MultitaskModel
    from mtcore.task import Task
    from mtcore.testing import build_tiny_encoder

    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    encoder = build_tiny_encoder(root / "encoder", "bert", words=VOCAB, hidden_size=32, num_layers=2, num_heads=2, seed=seed)
    tasks = [Task(name="rows", kind="text_classification", labels=("neg", "pos"), inputs={"text": "text"}, plugin="bench", max_length=64),
             Task(name="tags", kind="token_classification", labels=TAGS, plugin="bench", max_length=128),
             Task(name="qa", kind="extractive_qa", plugin="bench", max_length=384, stride=128)]
    model = MultitaskModel(str(encoder), tasks, tokenizer=AutoTokenizer.from_pretrained(encoder))
    return Path(model.save_pretrained(root / "model"))


def run_size(model: Path, root: Path, rows: int, fmt: str, batch_size: int, seed: int, timeout: float, kind: str = "text") -> dict[str, Any]:
    """``mt predict`` on ``rows`` rows of the task ``kind`` in a fresh process: its peak RSS and time."""
    data = root / f"rows-{rows}.jsonl"
    write_rows(data, rows, seed, kind)
    out = root / f"predictions-{rows}.{fmt}"
    command = [sys.executable, "-m", "mtcore.cli.app", "predict", str(model), "--task", TASKS[kind], "--input", str(data),
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
    with out.open(encoding="utf-8", newline="") as handle:
        written = sum(1 for _ in csv.reader(handle)) - 1 if fmt == "csv" else sum(1 for _ in handle)
    if written != rows:
        raise RuntimeError(f"size {rows}: {written} predictions written")
    out.unlink()
    data.unlink()
    return {"rows": rows, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "peak_anon_mb": round(peaks["RssAnon"], 1),
            "peak_file_mb": round(peaks["RssFile"], 1), "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--task", choices=tuple(TASKS), default="text", help="the kind of task predicted (see above)")
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
    from mtcore.predict import chunks

    limits = {name: getattr(chunks, name) for name in ("CHUNK_ROWS", "CHUNK_UNITS") if hasattr(chunks, name)}
    with tempfile.TemporaryDirectory(prefix="mt-predict-memory-") as tmp:
        root = Path(tmp)
        model = build_model(root, args.seed)
        results = [run_size(model, root, n, args.format, args.batch_size, args.seed, args.timeout, args.task) for n in args.sizes]
    growth = results[-1]["peak_rss_mb"] - results[0]["peak_rss_mb"]
    rows = {"text": "2-30 words, max_length 64", "tokens": "2-60 words, 9 tags, max_length 128",
            "qa": "question 4-12 words, context 40-300 words, max_length 384, stride 128"}[args.task]
    report = {"setup": {"command": f"mt predict MODEL --task {TASKS[args.task]} --input rows.jsonl -o predictions.{args.format} "
                                   f"--batch-size {args.batch_size} --device cpu",
                        "model": "tiny BERT (hidden 32, 2 layers), heads: text classification, token classification, extractive QA; "
                                 "fp32, CPU, 1 thread",
                        "task": args.task, "rows": rows, "chunks": limits},
              "results": results, "growth_mb": round(growth, 1)}
    print(json.dumps(report, indent=2))
    print()
    print("| input rows | peak RSS (MB) | peak heap, RssAnon (MB) | peak mapped files, RssFile (MB) | time (s) |")
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['rows']:,} | {r['peak_rss_mb']:.0f} | {r['peak_anon_mb']:.0f} | {r['peak_file_mb']:.0f} | {r['seconds']} |")
    print(f"\ngrowth {results[0]['rows']:,} -> {results[-1]['rows']:,} rows: {growth:.0f} MB peak RSS "
          f"({args.task}; chunks: {', '.join(f'{k} {v:,}' for k, v in limits.items())})")
    return report


if __name__ == "__main__":
    main()
