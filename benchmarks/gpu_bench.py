"""GPU training benchmark: BERT-base (random init from a config) through mtcore's engine pieces.

Nothing is downloaded: the encoder is ``BertModel`` built from a BERT-base config and the data
are synthetic token ids with an RSG-like length mix (three tasks: long question+passage pairs,
medium sentence pairs, short sentences; see ``benchmarks/padding_efficiency.py``), or with ``--mix seq128`` /
``--mix seq512`` rows of BERT pre-training's fixed lengths. Every
variant runs the training loop's step (:mod:`mtcore.train.loop`): batches from
:class:`~mtcore.sampling.MultitaskBatchSampler` collated by :class:`~mtcore.data.collate.Collator`,
pinned memory and non-blocking copies, bf16 autocast, ``MultitaskModel`` (SDPA attention),
losses kept on the device (``LossMeter``, ``NonFiniteWatch``), gradient clipping, fused AdamW.
Variants (:class:`gpu_variants.Variant`) switch ``torch.compile`` (``dynamic=True``, pad to a multiple of 8; one
variant with mode ``max-autotune-no-cudagraphs``; ``regional``: each transformer layer compiled
instead of the whole encoder), float32 or bf16 layer-norm outputs (``fp32_residual``), hidden dropout, length grouping,
token budgets and padding-free batches (``packed``: the encoder computes real tokens only, and a
token budget counts real tokens; with
attention dropout 0 on CUDA the attention is ``torch.nn.attention.varlen.varlen_attn``, otherwise SDPA
on re-padded queries/keys/values (per sequence on CPU) — the ``attention`` column says which ran, and ``packed_gap``
is the largest logit difference between the packed and the padded forward of one batch).

Reported per variant: real (non-padding) tokens/s, samples/s, padding efficiency, MFU (model
FLOPs of the real tokens: ``6 * encoder matmul weights * tokens + 12 * layers * hidden *
length^2`` per row, over ``--peak-tflops``, 989 for H100 bf16 dense), host syncs per step
(counted with ``torch.cuda.set_sync_debug_mode("warn")`` on extra steps after the timed ones)
and peak GPU memory, the host's data time per step (sampler, collation, pinning); with
``--diagnose`` also the GPU's busy share of a step and its kernel time by kind and by kernel
(:mod:`gpu_profile`).

    /tmp/venv/bin/python benchmarks/gpu_bench.py [--steps 40] [--variants eager_random,...]
    /tmp/venv/bin/python benchmarks/gpu_bench.py --smoke      # tiny model on CPU, seconds

Prints a JSON object, then a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_profile  # noqa: E402  (benchmarks/gpu_profile.py)
from gpu_variants import MIXES, VARIANTS  # noqa: E402  (benchmarks/gpu_variants.py)


class SyntheticTask:
    """Task data (the sampler's protocol) holding synthetic rows of random token ids."""

    def __init__(self, name: str, lengths: np.ndarray, vocab: int, pad_to: int | None, rng: np.random.Generator,
                 packed: bool = False) -> None:
        from mtcore.data.collate import Collator

        self.task = SimpleNamespace(id=name, evaluate_only=False)
        self._lengths = lengths
        rows = []
        for n in lengths.tolist():
            ids = rng.integers(1000, vocab, size=n).tolist()
            ids[0] = 101
            first = max(1, n // 2)
            rows.append({"input_ids": ids, "token_type_ids": [0] * first + [1] * (n - first), "labels": int(rng.integers(2)), "length": n})
        self.splits = {"train": rows}
        self.collator = Collator(0, "text_classification", pad_to_multiple_of=pad_to, uses_token_type_ids=True, padding_free=packed)

    def lengths(self, split: str) -> np.ndarray:
        return self._lengths


def make_data(vocab: int, pad_to: int | None, seed: int, scale: float, packed: bool = False,
              mix: str = "rsg") -> dict[str, SyntheticTask]:
    rng = np.random.default_rng(seed)
    data = {}
    for name, (lo, hi, n) in MIXES[mix].items():
        lengths = (lo + (hi - lo) * rng.beta(2.0, 3.0, size=max(8, int(n * scale)))).round().astype(np.int64)
        data[name] = SyntheticTask(name, lengths, vocab, pad_to, rng, packed)
    return data


def bert_config(smoke: bool, attention_dropout: float = 0.1, hidden_dropout: float = 0.1) -> Any:
    from transformers import BertConfig

    dropout = {"attention_probs_dropout_prob": attention_dropout, "hidden_dropout_prob": hidden_dropout}
    if smoke:
        return BertConfig(vocab_size=2000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                          max_position_embeddings=512, **dropout)
    return BertConfig(**dropout)  # BERT-base: 12 layers, hidden 768, 12 heads, FFN 3072


def flops_per_row(config: Any, lengths: np.ndarray) -> np.ndarray:
    """Training FLOPs of the real tokens of each row (forward + backward = 3x forward)."""
    h, layers, ffn = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    matmul_weights = layers * (4 * h * h + 2 * h * ffn)
    lengths = lengths.astype(np.float64)
    return 6 * matmul_weights * lengths + 12 * layers * h * lengths ** 2


def build(config: Any, device: Any, compile_model: bool, smoke: bool, packed: bool = False, mode: str | None = None,
          packed_attention: str = "varlen", fp32_residual: bool = True, regional: bool = False,
          flash_attention: str | None = None, tasks: tuple[str, ...] = tuple(MIXES["rsg"])) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModel

    from mtcore.model import MultitaskModel
    from mtcore.model.heads.base import HeadSpec
    from mtcore.train.compile import compile_encoder

    torch.manual_seed(0)
    encoder = AutoModel.from_config(config, attn_implementation="sdpa")
    heads = {name: HeadSpec("classification", num_labels=2, kind="text_classification") for name in tasks}
    model = MultitaskModel(encoder.to(device), heads, padding_free=packed, packed_attention=packed_attention,
                           fp32_residual=fp32_residual, flash_attention=flash_attention).to(device).train()
    if compile_model:
        compile_encoder(model, dynamic=True, mode=None if smoke else mode, backend="eager" if smoke else "inductor", regional=regional)
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=fused)
    return model, optimizer


def run_variant(name: str, args: argparse.Namespace, device: Any) -> dict[str, Any]:
    import torch

    from mtcore.sampling.batch_sampler import MultitaskBatchSampler
    from mtcore.data.batch import model_inputs
    from mtcore.train.monitor import LossMeter, NonFiniteWatch

    (grouped, batch_size, budget, compiled, packed, attention_dropout, hidden_dropout, mode, packed_attention, fp32_residual,
     regional, flash_attention) = VARIANTS[name]
    config = bert_config(args.smoke, attention_dropout, hidden_dropout)
    cuda = device.type == "cuda"
    pad_to = 64 if mode == "reduce-overhead" else 8 if compiled and not packed else None
    data = make_data(config.vocab_size, pad_to, args.seed, 0.02 if args.smoke else 1.0, packed, args.mix)
    if args.smoke and budget:
        budget = 1024
    sampler = MultitaskBatchSampler(data, "train", batch_size or 32, group_by_length=grouped, token_budget=budget, seed=args.seed)
    model, optimizer = build(config, device, compiled, args.smoke, packed, mode, packed_attention, fp32_residual, regional,
                             flash_attention, tuple(data))
    meter, watch = LossMeter(list(data), device), NonFiniteWatch(list(data), device)
    params = [p for p in model.parameters() if p.requires_grad]
    dtype = torch.bfloat16 if (cuda or args.smoke) else torch.float32
    batches = iter(_forever(sampler))
    stats = {"samples": 0, "real": 0, "padded": 0, "flops": 0.0, "data_s": 0.0}

    def step(number: int, count: bool) -> None:
        fetched = time.perf_counter()
        batch = next(batches)
        if cuda:
            batch.data.pin_memory()
        if count:
            stats["data_s"] += time.perf_counter() - fetched
        batch.data.to(device, non_blocking=cuda)
        with torch.autocast(device.type, dtype=dtype):
            loss = model(batch.name, **model_inputs(batch.data)).loss  # as the training loop calls it
        watch.observe(batch.name, loss, number)
        meter.add(batch.name, loss, batch.size, batch.num_tokens)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if count:
            lengths = np.asarray(batch.lengths_host)
            stats["samples"] += batch.size
            stats["real"] += batch.num_tokens
            computed = batch.data.get("token_index")  # padding-free: the encoder's layers see real tokens only
            stats["padded"] += int(computed.numel() if computed is not None else batch.data["input_ids"].numel())
            stats["flops"] += float(flops_per_row(config, lengths).sum())

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    compile_started = time.perf_counter()
    for i in range(args.warmup):
        step(i + 1, False)
    sync()
    warmup_s = time.perf_counter() - compile_started
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    profiler = gpu_profile.profiler(device) if args.profile else contextlib.nullcontext()
    started = time.perf_counter()
    with profiler:
        for i in range(args.steps):
            step(args.warmup + i + 1, True)
        sync()
    seconds = time.perf_counter() - started
    if args.profile:
        gpu_profile.print_tables(name, profiler, device)
    ms_per_step = 1000 * seconds / args.steps
    extra = args.warmup + args.steps + 1
    diagnosis = (gpu_profile.diagnose(lambda k: step(extra + k, False), args.diagnose_steps, device, ms_per_step)
                 if args.diagnose else None)
    extra += args.diagnose_steps if args.diagnose else 0
    syncs = count_syncs(lambda k: step(extra + k, False), args.sync_steps) if cuda else None
    meter.flush()  # the logging step's one read, after the measurement
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    gap = packed_gap(model, next(batches), device, dtype) if packed else None
    result = {"variant": name, "mix": args.mix, "group_by_length": grouped, "batch_size": batch_size, "token_budget": budget, "compile": compiled,
              "compile_mode": mode, "attention_dropout": attention_dropout, "hidden_dropout": hidden_dropout,
              "fp32_residual": fp32_residual, "regional": regional, "flash_attention": flash_attention,
              "steps": args.steps, "seconds": round(seconds, 3), "warmup_s": round(warmup_s, 1),
              "samples_per_s": stats["samples"] / seconds, "real_tokens_per_s": stats["real"] / seconds,
              "padding_efficiency": stats["real"] / max(stats["padded"], 1),
              "mfu": stats["flops"] / seconds / (args.peak_tflops * 1e12), "syncs_per_step": syncs, "peak_memory_gib": peak,
              "packed": packed, "attention": attention_kind(packed, attention_dropout, device, compiled, packed_attention, flash_attention),
              "packed_gap": gap,
              "ms_per_step": round(ms_per_step, 2), "data_ms_per_step": round(1000 * stats["data_s"] / args.steps, 2),
              "tokens_per_step": round(stats["real"] / args.steps), "diagnosis": diagnosis}
    del model, optimizer
    if cuda:
        torch.cuda.empty_cache()
    return result


def attention_kind(packed: bool, attention_dropout: float, device: Any, compiled: bool, packed_attention: str = "varlen",
                   flash_attention: str | None = None) -> str:
    """Which attention kernel the variant's training steps ran (see mtcore.model.padding_free)."""
    import torch

    from mtcore.model.padding_free import _flash_varlen_usable

    if not packed:
        return f"{flash_attention} (padded)" if flash_attention else "sdpa (padded)"
    if packed_attention == "flex" and not attention_dropout:
        return "flex (packed)"
    probe = torch.empty(1, 1, 1, device=device, dtype=torch.bfloat16)
    if _flash_varlen_usable(probe, attention_dropout):
        return f"varlen_attn{' ' + flash_attention if flash_attention else ''} (packed)"
    # eager on CPU: per sequence where re-padding would be mostly padding (the batch decides), else re-padded
    return "sdpa (per sequence or re-padded)" if device.type == "cpu" and not compiled else "sdpa (re-padded)"


def packed_gap(model: Any, batch: Any, device: Any, dtype: Any) -> float:
    """Largest logit difference between the packed and the padded forward of one batch (eval mode)."""
    import torch

    data = {k: v.to(device) for k, v in batch.data.items()}
    padded = {k: v for k, v in data.items() if k not in ("token_index", "cu_seqlens")}
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
        gap = (model(batch.name, **data).logits.float() - model(batch.name, **padded).logits.float()).abs().max().item()
    model.train()
    return gap


def _forever(sampler: Any) -> Any:
    from mtcore.train.loop import batch_stream

    for batch in batch_stream(sampler):
        batch.lengths_host = batch.data["attention_mask"].sum(-1).tolist()  # on the host, before the copy
        yield batch


def count_syncs(run_step: Any, steps: int) -> float:
    """Host syncs per step, from CUDA's sync debug mode warnings."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for k in range(steps):
                run_step(k)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
    hits = [w for w in caught if "synchroniz" in str(w.message).lower()]
    for w in {f"{w.filename}:{w.lineno}" for w in hits}:
        print(f"  sync at {w}", file=sys.stderr)
    return len(hits) / max(steps, 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=15, help="untimed steps first (compilation happens here)")
    parser.add_argument("--sync-steps", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mix", choices=list(MIXES), default="rsg",
                        help="row lengths: rsg (fine-tuning mix, mostly short rows), seq128 / seq512 (pre-training phases)")
    parser.add_argument("--cudnn-attention", action="store_true", help="keep cuDNN in SDPA (the engine turns it off)")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables of each variant's timed steps")
    parser.add_argument("--diagnose", action="store_true", help="profile extra steps: GPU busy share, kernel time by kind")
    parser.add_argument("--diagnose-steps", type=int, default=6,
                        help="steps to profile (batches come from one task each: take several for a fair mix)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, CPU, a few steps; compile with the 'eager' backend")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.warmup, args.sync_steps = 3, 1, 0

    import torch

    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        if not args.cudnn_attention:
            from mtcore.train.cuda import configure_cuda_kernels

            configure_cuda_kernels()  # what the engine does on a GPU
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    results = []
    failed = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            results.append(run_variant(name, args, device))
        except Exception as exc:  # noqa: BLE001 - one variant's failure must not lose the others' figures
            failed.append({"variant": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
            print(f"  {name} failed: {failed[-1]['error']}", file=sys.stderr, flush=True)
            continue
        finally:
            if VARIANTS[name].flash_attention:  # process-wide: the next variant gets torch's own kernels again
                from torch.nn.attention import current_flash_attention_impl, restore_flash_attention_impl

                if current_flash_attention_impl():
                    restore_flash_attention_impl()
        print("  " + json.dumps(results[-1]), file=sys.stderr, flush=True)  # kept even if a later variant hits the time cap
    model = "tiny BERT (smoke test)" if args.smoke else "BERT-base (random init), bf16 autocast, SDPA, fused AdamW"
    report = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "model": model,
              "torch": torch.__version__, "peak_tflops": args.peak_tflops, "results": results, "failed": failed}
    print(json.dumps(report, indent=2))
    print()
    print("| variant | real tokens/s | tokens/step | ms/step | data ms | GPU busy | MFU | padding eff. | syncs/step | peak mem (GiB) "
          "| warm-up s | attention | packed gap |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in results:
        syncs = "n/a" if r["syncs_per_step"] is None else f"{r['syncs_per_step']:.1f}"
        peak = "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        busy = (r["diagnosis"] or {}).get("gpu_busy")
        busy = "n/a" if busy is None else f"{100 * busy:.0f}%"
        print(f"| {r['variant']} | {r['real_tokens_per_s']:.0f} | {r['tokens_per_step']} | {r['ms_per_step']:.1f} | "
              f"{r['data_ms_per_step']:.1f} | {busy} | {100 * r['mfu']:.1f}% | {r['padding_efficiency']:.3f} | "
              f"{syncs} | {peak} | {r['warmup_s']} | {r['attention']} | "
              f"{'n/a' if r['packed_gap'] is None else format(r['packed_gap'], '.3g')} |")
    for f in failed:  # a row each, so a table read alone does not hide them
        print(f"| {f['variant']} | failed: {f['error'].replace('|', '/')} |" + " |" * 11)
    return report


if __name__ == "__main__":
    # exit 1 when a variant failed (after every other variant's figures are printed): callers see it
    sys.exit(1 if main()["failed"] else 0)
