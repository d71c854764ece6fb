"""Multitask overhead: mtcore's engine on three tasks against a plain single-task loop, one run.

Both train the same randomly initialised small BERT (built offline) on CPU in fp32 on the
same rows: three text-classification tasks with short, medium and long texts. The engine
(``mtcore.Trainer``: proportional task sampling, per-task heads, length-grouped batches, losses
kept on the device) sees them as three tasks; the **plain loop** sees their union as one task:
``AutoModel`` + one linear head on [CLS], cross-entropy, AdamW + linear schedule, the same
tokenized rows, the same collator and the same length grouping (mega-batches of 50 batches
sorted by length), and no logging. The plain loop runs until it has trained on at least as
many real (non-padding) tokens as the engine did, so both cover the same token count and the
same length mix. Overhead = 1 - engine real tokens/s / plain real tokens/s (alternating
``--repeats`` runs, the fastest of each kept: the machine may be shared).

    /tmp/venv/bin/python benchmarks/multitask_overhead.py [--steps 120] [--batch-size 16] [--threads 1]

Prints a JSON object, then a markdown table. ``--smoke`` runs a few steps of a tiny model.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import VOCAB, add_model_arguments, build_encoder, engine_config, prepare_torch, rates, run_engine
LENGTHS = {"short": (4, 20), "medium": (20, 60), "long": (60, 120)}


def write_tasks(root: Path, rows: int, seed: int) -> list[dict[str, Any]]:
    """Three text-classification tasks whose texts have different length ranges (in words)."""
    rng = random.Random(seed)
    tasks = []
    for name, (lo, hi) in LENGTHS.items():
        lines = [json.dumps({"text": " ".join(rng.choices(VOCAB, k=rng.randint(lo, hi))), "label": rng.choice(["neg", "pos"])})
                 for _ in range(rows)]
        (root / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        tasks.append({"define": {"name": name, "kind": "text_classification", "labels": ["neg", "pos"],
                                 "files": {"train": str(root / f"{name}.jsonl")}}})
    return tasks


def grouped_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled rows, sorted by length inside mega-batches of 50 batches, batches shuffled."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = 50 * batch_size
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def run_plain(engine: Any, target_tokens: int, batch_size: int, lr: float, max_steps: int, seed: int) -> dict[str, Any]:
    """A plain single-task loop over the union of the engine's tokenized training rows."""
    import datasets
    import torch
    from transformers import AutoModel, get_scheduler

    torch.manual_seed(seed)
    parts = [td.splits["train"] for td in engine.train_data.values()]
    union = datasets.concatenate_datasets(parts)
    lengths = [int(n) for n in union["length"]]
    collator = next(iter(engine.train_data.values())).collator
    encoder = AutoModel.from_pretrained(engine.config.encoder.path, attn_implementation="sdpa")
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head}).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=max_steps)
    rng = random.Random(seed)
    steps = samples = tokens = padded = 0
    data_s = 0.0
    started = time.perf_counter()
    while tokens < target_tokens:
        for rows in grouped_batches(lengths, batch_size, rng):
            t0 = time.perf_counter()
            data = collator(union[rows])
            data_s += time.perf_counter() - t0
            padded += int(data["input_ids"].numel())
            hidden = encoder(input_ids=data["input_ids"], attention_mask=data["attention_mask"],
                             token_type_ids=data.get("token_type_ids")).last_hidden_state
            loss = torch.nn.functional.cross_entropy(head(hidden[:, 0]), data["labels"])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
            samples += len(rows)
            tokens += sum(lengths[i] for i in rows)
            if tokens >= target_tokens:
                break
    return {"steps": steps, "seconds": time.perf_counter() - started, "samples": samples, "real_tokens": tokens,
            "padded_tokens": padded, "data_s": data_s}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, rows=1000)
    parser.add_argument("--smoke", action="store_true", help="a few steps of a tiny model (checks the script works)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.hidden, args.layers, args.heads, args.rows, args.repeats = 4, 32, 1, 2, 40, 1

    torch = prepare_torch(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tasks = write_tasks(root, args.rows, args.seed)
        config = engine_config(args, build_encoder(root, args), tasks)
        engine_runs, plain_runs = [], []
        for repeat in range(args.repeats):
            result, engine = run_engine(config, root / f"run-{repeat}")
            engine_runs.append(rates(result))
            plain_runs.append(rates(run_plain(engine, result["real_tokens"], args.batch_size, args.lr, 10 * args.steps, args.seed)))
    best_engine = max(engine_runs, key=lambda r: r["real_tokens_per_s"])
    best_plain = max(plain_runs, key=lambda r: r["real_tokens_per_s"])
    overhead = 1 - best_engine["real_tokens_per_s"] / best_plain["real_tokens_per_s"]
    report = {"setup": {"model": f"BERT hidden {args.hidden}, {args.layers} layers, {args.heads} heads, fp32, CPU",
                        "torch_threads": torch.get_num_threads(), "steps": args.steps, "batch_size": args.batch_size,
                        "rows_per_task": args.rows, "tasks": {k: f"{lo}-{hi} words" for k, (lo, hi) in LENGTHS.items()},
                        "repeats": args.repeats},
              "plain_single_task": best_plain, "engine_three_tasks": best_engine, "overhead": overhead}
    print(json.dumps(report, indent=2))
    print()
    print("| loop | steps | samples | real tokens | seconds | samples/s | real tokens/s | padding eff. | data ms/step |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in (("plain single-task loop", best_plain), ("mtcore engine, 3 tasks", best_engine)):
        print(f"| {name} | {r['steps']} | {r['samples']} | {r['real_tokens']} | {r['seconds']:.2f} | "
              f"{r['samples_per_s']:.1f} | {r['real_tokens_per_s']:.0f} | {r['padding_efficiency']:.3f} | {r['data_ms_per_step']:.1f} |")
    print(f"\nmultitask overhead (real tokens/s): {100 * overhead:.1f}% (goal <= 5%)")
    return report


if __name__ == "__main__":
    main()
