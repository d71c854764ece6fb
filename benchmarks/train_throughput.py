"""Training throughput: mtcore's engine against the seed's plain loop, same model and data, one run.

* **seed loop** — the seed README's loop on mtcore objects: random mixed batches
  (``MultitaskBatchSampler(..., group_by_length=False)``), dynamic padding, fp32, AdamW + linear
  schedule, and ``print(f"Training loss: {loss} on task {batch.name}")`` every step (a host sync;
  printed into a buffer so the terminal is not flooded);
* **engine** — ``mtcore.Trainer`` with the same model, data, batch size and optimiser:
  length-grouped batches, losses kept on the device and read every ``--log-every`` steps only;
* **engine, padding-free** — the same with ``batching.padding_free: true`` (the encoder's
  embeddings, projections and feed-forward blocks compute real tokens only; on CPU attention
  runs SDPA per sequence where re-padding would be mostly padding, else on the re-padded batch),
  with length-grouped and with random batches.

Both start from the same randomly initialised small BERT (built offline) and run ``--steps``
optimizer steps on CPU in fp32, alternating ``--repeats`` times (the fastest run of each loop is
reported, since CPU machines are often shared). Reported: samples/s, real (non-padding) tokens/s, padding
efficiency, and the split of each step into data wait (reading rows + collating) and compute.

    /tmp/venv/bin/python benchmarks/train_throughput.py [--steps 120] [--batch-size 16] [--hidden 256] [--layers 4] [--threads 1]

Prints a JSON object, then a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import VOCAB, add_model_arguments, build_encoder, engine_config, prepare_torch, rates, run_engine

#: Engine variants (batching overrides), run alternately with the seed loop.
VARIANTS = {
    "engine": {},
    "engine_padding_free": {"padding_free": True},
    "engine_padding_free_random": {"padding_free": True, "group_by_length": False},
}
NAMES = {"engine": "mtcore engine", "engine_padding_free": "engine, padding-free",
         "engine_padding_free_random": "engine, padding-free, random batches"}


def _words(rng: random.Random, mean: float, cap: int) -> str:
    n = max(2, min(cap, int(rng.lognormvariate(0, 0.6) * mean)))
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def write_data(root: Path, rows: int, seed: int = 0) -> list[dict[str, Any]]:
    """Three tasks with skewed, different length distributions (sentences, pairs, multiple choice)."""
    rng = random.Random(seed)
    makers = {
        "sent": lambda: {"text": _words(rng, 18, 120), "label": rng.choice(["neg", "pos"])},
        "pair": lambda: {"premise": _words(rng, 45, 100), "hypothesis": _words(rng, 10, 30), "label": rng.choice(["yes", "no"])},
        "mc": lambda: {"text": _words(rng, 15, 60), "choices": [_words(rng, 5, 15), _words(rng, 5, 15)], "label": rng.randrange(2)},
    }
    for name, make in makers.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(make()) + "\n" for _ in range(rows)), encoding="utf-8")
    files = {name: {"train": str(root / f"{name}.jsonl")} for name in makers}
    return [
        {"define": {"name": "sent", "kind": "text_classification", "labels": ["neg", "pos"], "files": files["sent"]}},
        {"define": {"name": "pair", "kind": "pair_classification", "labels": ["no", "yes"],
                    "inputs": {"text": "premise", "text_pair": "hypothesis"}, "files": files["pair"]}},
        {"define": {"name": "mc", "kind": "multiple_choice", "files": files["mc"]}},
    ]


def run_seed_loop(engine: Any, steps: int, batch_size: int, lr: float, seed: int) -> dict[str, Any]:
    """The seed README's loop, on the engine's tokenized data and a fresh copy of the same model."""
    import torch
    from transformers import get_scheduler

    from mtcore.model import MultitaskModel
    from mtcore.sampling.batch_sampler import MultitaskBatchSampler

    torch.manual_seed(seed)
    encoder_dir = engine.config.encoder.path
    model = MultitaskModel(encoder_dir, {t: task for t, task in engine.tasks.items()})
    device = torch.device("cpu")
    model.to(device)
    model.train()
    train_sampler = MultitaskBatchSampler(engine.train_data, "train", batch_size=batch_size, group_by_length=False, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=steps)
    sink = io.StringIO()
    samples = real = padded = 0
    data_s = compute_s = 0.0
    batches = iter(train_sampler)
    started = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(train_sampler)
            batch = next(batches)
        batch.data.to(device)
        t1 = time.perf_counter()
        outputs = model.forward(batch.name, **batch.data)
        loss = outputs.loss
        with contextlib.redirect_stdout(sink):
            print(f"Training loss: {loss} on task {batch.name}")
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        t2 = time.perf_counter()
        data_s += t1 - t0
        compute_s += t2 - t1
        samples += batch.size
        real += batch.num_tokens
        padded += int(batch.data["input_ids"].numel())
    seconds = time.perf_counter() - started
    return {"steps": steps, "seconds": seconds, "samples": samples, "real_tokens": real, "padded_tokens": padded,
            "data_s": data_s, "compute_s": compute_s}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, rows=1500)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--log-every", type=int, default=50)
    args = parser.parse_args(argv)

    torch = prepare_torch(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tasks = write_data(root, args.rows, args.seed)
        for t in tasks:
            t["max_length"] = args.max_length
        config = engine_config(args, build_encoder(root, args), tasks, log_every=args.log_every)
        runs: dict[str, list[dict[str, Any]]] = {"seed_loop": [], **{key: [] for key in VARIANTS}}
        for repeat in range(args.repeats):  # alternate, keep each loop's fastest run (the machine may be shared)
            engines = {}
            for key, batching in VARIANTS.items():
                variant = {**config, "batching": {**config["batching"], **batching}}
                result, engines[key] = run_engine(variant, root / f"run-{key}-{repeat}")
                runs[key].append(rates(result))
            runs["seed_loop"].append(rates(run_seed_loop(engines["engine"], args.steps, args.batch_size, args.lr, args.seed)))
    best = {key: max(found, key=lambda r: r["samples_per_s"]) for key, found in runs.items()}
    engine_rates, seed_rates = best["engine"], best["seed_loop"]
    report = {
        "setup": {"model": f"BERT hidden {args.hidden}, {args.layers} layers, {args.heads} heads, fp32, CPU",
                  "torch_threads": torch.get_num_threads(), "repeats": args.repeats, "steps": args.steps, "batch_size": args.batch_size,
                  "rows_per_task": args.rows, "max_length": args.max_length, "tasks": ["sent (text)", "pair", "mc (2 choices)"]},
        **best,
        "speedup": {k: engine_rates[k] / seed_rates[k] for k in ("samples_per_s", "real_tokens_per_s")},
        "speedup_padding_free": {k: best["engine_padding_free"][k] / seed_rates[k] for k in ("samples_per_s", "real_tokens_per_s")},
    }
    print(json.dumps(report, indent=2))
    print()
    print("| loop | samples/s | real tokens/s | padding efficiency | data ms/step | compute ms/step | data share |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key, name in (("seed_loop", "seed loop"), *((key, NAMES[key]) for key in VARIANTS)):
        r = best[key]
        print(f"| {name} | {r['samples_per_s']:.1f} | {r['real_tokens_per_s']:.0f} | {r['padding_efficiency']:.2f} | "
              f"{r['data_ms_per_step']:.1f} | {r['compute_ms_per_step']:.1f} | {100 * r['data_share']:.1f}% |")
    print(f"\nengine / seed loop: {report['speedup']['samples_per_s']:.2f}x samples/s, "
          f"{report['speedup']['real_tokens_per_s']:.2f}x real tokens/s; padding-free: "
          f"{report['speedup_padding_free']['samples_per_s']:.2f}x samples/s")
    return report


if __name__ == "__main__":
    main()
