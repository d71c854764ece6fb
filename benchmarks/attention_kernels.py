"""Padding-free attention kernels side by side: torch's FlashAttention-2 ``varlen_attn`` against a
registered replacement (``FA4``, ``FA3``; see ``mtcore.model.flash_impl``), on one packed batch of
BERT-base shapes (12 heads of 64, bf16) with gpu_bench's RSG-like length mix.

Per kernel: forward and forward+backward milliseconds for one layer (CUDA events, median of
``--repeats``), the attention TFLOPS that gives (``4 * heads * dim * sum(length^2)`` per forward,
2.5x that for the backward), and the largest difference of the output and the gradients from
FlashAttention-2's. Needs a CUDA GPU (and the replacement's package).

    python3 benchmarks/attention_kernels.py [--tokens 65536] [--impl FA4]

Prints a JSON object, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_variants import MIXES  # noqa: E402


def packed_lengths(tokens: int, seed: int, mix: str = "rsg") -> list[int]:
    """Rows drawn from the three tasks' length ranges until ``tokens`` real tokens are used."""
    rng = np.random.default_rng(seed)
    ranges = list(MIXES[mix].values())
    lengths, total = [], 0
    while True:
        lo, hi, _ = ranges[int(rng.integers(len(ranges)))]
        n = int(round(lo + (hi - lo) * rng.beta(2.0, 3.0)))
        if total + n > tokens:
            return lengths
        lengths.append(n)
        total += n


def timed(fn, repeats: int) -> float:
    import torch

    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure(q, k, v, cu, longest: int, repeats: int) -> dict:
    import torch
    from torch.nn.attention.varlen import varlen_attn

    def forward():
        return varlen_attn(q, k, v, cu, cu, longest, longest)

    out = forward()
    grad = torch.randn_like(out)

    def both():
        q.grad = k.grad = v.grad = None
        forward().backward(grad)

    for _ in range(3):  # compile (FA4's kernels are built on first use) and warm up
        both()
    torch.cuda.synchronize()
    return {"forward_ms": timed(forward, repeats), "forward_backward_ms": timed(both, repeats),
            "out": out.detach().float(), "grads": [t.grad.detach().float() for t in (q, k, v)]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--impl", default="FA4", help="a torch.nn.attention.list_flash_attention_impls() name")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mix", choices=list(MIXES), default="rsg", help="row lengths, as gpu_bench.py's --mix")
    args = parser.parse_args(argv)

    import torch
    from torch.nn.attention import restore_flash_attention_impl

    from mtcore.model.flash_impl import activate  # what encoder.options.flash_attention runs

    heads, dim = 12, 64
    lengths = packed_lengths(args.tokens, args.seed, args.mix)
    cu = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int32, device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(args.seed)
    q, k, v = (torch.randn(int(cu[-1]), heads, dim, device="cuda", dtype=torch.bfloat16, generator=gen).requires_grad_()
               for _ in range(3))
    flops = 4 * heads * dim * float(np.sum(np.square(np.asarray(lengths, dtype=np.float64))))
    rows = {"FA2 (torch)": measure(q, k, v, cu, max(lengths), args.repeats)}
    try:
        activate(args.impl, None)
        rows[args.impl] = measure(q, k, v, cu, max(lengths), args.repeats)
    except Exception as error:  # noqa: BLE001 - report the replacement's failure next to FA2's figures
        rows[args.impl] = {"error": f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"}
    finally:
        restore_flash_attention_impl(_raise_warn=False)
    base = rows["FA2 (torch)"]
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "mix": args.mix, "tokens": int(cu[-1]),
              "sequences": len(lengths), "longest": max(lengths), "heads": heads, "head_dim": dim, "kernels": {}}
    for name, row in rows.items():
        if "error" in row:
            report["kernels"][name] = row
            continue
        report["kernels"][name] = {
            "forward_ms": round(row["forward_ms"], 3), "forward_backward_ms": round(row["forward_backward_ms"], 3),
            "forward_tflops": round(flops / row["forward_ms"] / 1e9, 1),
            "forward_backward_tflops": round(3.5 * flops / row["forward_backward_ms"] / 1e9, 1),
            "max_out_diff": float((row["out"] - base["out"]).abs().max()),
            "max_grad_diff": max(float((a - b).abs().max()) for a, b in zip(row["grads"], base["grads"]))}
    print(json.dumps(report, indent=2))
    print("\n| kernel | fwd ms | fwd+bwd ms | fwd TFLOPS | fwd+bwd TFLOPS | max out diff | max grad diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in report["kernels"].items():
        if "error" in r:
            print(f"| {name} | {r['error']} | | | | | |")
        else:
            print(f"| {name} | {r['forward_ms']} | {r['forward_backward_ms']} | {r['forward_tflops']} | "
                  f"{r['forward_backward_tflops']} | {r['max_out_diff']:.3g} | {r['max_grad_diff']:.3g} |")
    return report


if __name__ == "__main__":
    main()
