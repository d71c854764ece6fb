"""Padding efficiency of mtcore's batching on an RSG-like mix of lengths (no model, seconds).

Padding efficiency = real tokens / computed token slots = ``sum(lengths) / sum(rows * longest)``
over every batch of one epoch of :class:`mtcore.sampling.MultitaskBatchSampler` (one task per
batch, proportional task sampling, stop="largest").

The mix imitates Russian SuperGLUE after tokenization: long DaNetQA question+passage pairs
(100-400 tokens), medium TERRa premise/hypothesis pairs (30-120), short PARus premises (10-30),
each skewed towards its short end (Beta(2, 3)), a few thousand examples per task.

    /tmp/venv/bin/python benchmarks/padding_efficiency.py [--batch-size 12] [--token-budget 2048] [--seed 0]

Prints a JSON object, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtcore.sampling.batch_sampler import MultitaskBatchSampler  # noqa: E402

MIX = {"danetqa": (100, 400, 2500), "terra": (30, 120, 3000), "parus": (10, 30, 2000)}


class LengthsOnly:
    """Task data with lengths alone: enough for ``iter_indices`` (rows are never read)."""

    def __init__(self, name: str, lengths: np.ndarray, pad_to_multiple_of: int | None = None):
        self.task = SimpleNamespace(id=name, evaluate_only=False)
        self._lengths = lengths
        self.splits = {"train": range(len(lengths))}
        self.collator = SimpleNamespace(pad_to_multiple_of=pad_to_multiple_of)

    def lengths(self, split: str) -> np.ndarray:
        return self._lengths


def rsg_like_mix(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: (lo + (hi - lo) * rng.beta(2.0, 3.0, size=n)).round().astype(np.int64) for name, (lo, hi, n) in MIX.items()}


def measure(mix: dict[str, np.ndarray], seed: int, pad: int | None, **options) -> dict[str, float]:
    """One epoch of batches; ``pad`` rounds each batch's longest row up like ``pad_to_multiple_of``."""
    data = {name: LengthsOnly(name, lengths, pad) for name, lengths in mix.items()}
    sampler = MultitaskBatchSampler(data, "train", seed=seed, **options)
    real = slots = rows_total = steps = 0
    per_task: dict[str, list[int]] = {name: [0, 0] for name in mix}
    for name, rows in sampler.iter_indices():
        lengths = mix[name][rows]
        longest = int(lengths.max())
        if pad:
            longest = -(-longest // pad) * pad
        real += int(lengths.sum())
        slots += len(rows) * longest
        per_task[name][0] += int(lengths.sum())
        per_task[name][1] += len(rows) * longest
        rows_total += len(rows)
        steps += 1
    result = {"efficiency": round(real / slots, 4), "steps": steps, "mean_rows": round(rows_total / steps, 2)}
    result.update({f"efficiency_{name}": round(r / s, 4) for name, (r, s) in per_task.items()})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--token-budget", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    mix = rsg_like_mix(args.seed)
    strategies = {
        "random": dict(batch_size=args.batch_size, group_by_length=False),
        "length_grouped": dict(batch_size=args.batch_size, group_by_length=True),
        "token_budget_random": dict(batch_size=args.batch_size, group_by_length=False, token_budget=args.token_budget),
        "token_budget_grouped": dict(batch_size=args.batch_size, group_by_length=True, token_budget=args.token_budget),
    }
    started = time.perf_counter()
    results = {}
    for name, options in strategies.items():
        row = measure(mix, args.seed, None, **options)
        row["efficiency_pad8"] = measure(mix, args.seed, 8, **options)["efficiency"]
        results[name] = row
    report = {
        "mix": {name: {"examples": len(v), "min": int(v.min()), "mean": round(float(v.mean()), 1), "max": int(v.max())} for name, v in mix.items()},
        "batch_size": args.batch_size,
        "token_budget": args.token_budget,
        "seed": args.seed,
        "results": results,
        "seconds": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(report, indent=2))
    print()
    print("| batching | efficiency | pad to 8 | DaNetQA | TERRa | PARus | steps | rows/batch |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['efficiency']:.3f} | {r['efficiency_pad8']:.3f} | {r['efficiency_danetqa']:.3f} | "
              f"{r['efficiency_terra']:.3f} | {r['efficiency_parus']:.3f} | {r['steps']} | {r['mean_rows']} |")


if __name__ == "__main__":
    main()
