"""Loss strategies: the cost of one optimizer step under each of mtcore's loss strategies, one run.

Every strategy trains the same randomly initialised small BERT (built offline) on CPU in fp32 on
the same rows: three text-classification tasks with short, medium and long texts
(``multitask_overhead.write_tasks``), with the same seed, so every strategy but ``single`` gets
the same batches: one batch of every task per step. ``single`` trains one task's batch per step
(the proportional sampler picks it), so its step is about a third of the others' work.

Each run is a fresh process (``--child``): it builds the engine, then trains ``--warmup`` steps
(not timed) and ``--steps`` timed steps. A step's time is the wall time between the ends of two
consecutive steps (the loop's ``events.after_step``, wrapped); reported: the median over the timed
steps, and the mean time inside ``end_backward`` (gradient combiners: checking, combining and
writing the K flat task gradients; the K backward passes themselves come before it) and inside
FAMO's after-step work (its forward pass again without gradients, and its logit update).
Peak RSS growth: the process's peak resident set during training (``VmHWM``, reset through
``/proc/self/clear_refs`` just before the loop) minus its resident set then (model, data and
libraries loaded; Adam's state, gradients, activations and the strategy's buffers come after).
Runs alternate (``--repeats``, every strategy once per round) and the fastest of each is kept.

    OMP_NUM_THREADS=1 /tmp/venv/bin/python benchmarks/loss_strategies.py [--steps 40] [--threads 1] [--strategies sum,pcgrad]

Prints a JSON object, then a markdown table. ``--smoke`` runs a few steps of a tiny model on 3 strategies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import add_model_arguments, build_encoder, engine_config, prepare_torch, run_engine
from multitask_overhead import LENGTHS, write_tasks

#: mtcore's built-in loss strategies (mtcore/builtin_plugin.py), cheapest kinds first.
BUILTINS = ["single", "sum", "weighted", "uncertainty", "rlw", "dwa", "famo",
            "pcgrad", "mgda", "cagrad", "gradnorm", "imtl", "aligned_mtl", "gradvac"]
SMOKE = ["sum", "famo", "pcgrad"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, rows=1000)
    parser.set_defaults(steps=40)
    parser.add_argument("--warmup", type=int, default=3, help="steps trained before the timed ones (not timed)")
    parser.add_argument("--strategies", default=",".join(BUILTINS), help="comma-separated loss strategies")
    parser.add_argument("--smoke", action="store_true", help="a few steps of a tiny model on 3 strategies (checks the script works)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # one run, in this process: a strategy's name
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)  # the parent's folder: encoder and tasks
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.warmup, args.hidden, args.layers, args.heads, args.rows, args.repeats = 3, 1, 32, 1, 2, 40, 1
        if args.strategies == ",".join(BUILTINS):
            args.strategies = ",".join(SMOKE)
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1 (the first step's start is not seen)")
    return args


def proc_status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One strategy's run in this (fresh) process: step times, parts of a step, peak RSS growth."""
    prepare_torch(args.threads)
    import mtcore.train.build as build
    import mtcore.train.events as events
    import mtcore.train.loop as loop

    root, name = Path(args.root), args.child
    tasks = [{"define": {"name": n, "kind": "text_classification", "labels": ["neg", "pos"],
                         "files": {"train": str(root / f"{n}.jsonl")}}} for n in LENGTHS]
    total = args.warmup + args.steps
    config = engine_config(argparse.Namespace(**{**vars(args), "steps": total}), root / "encoder", tasks, log_every=10 ** 6)
    config["loss"] = {"strategy": name}
    ends: list[float] = []  # perf_counter at the end of every step
    parts: dict[str, list[tuple[int, float]]] = {"end_backward": [], "after_step": []}  # (step index, seconds)

    def timed(part: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                parts[part].append((len(ends), time.perf_counter() - t0))
        return wrapper

    after_step, built = events.after_step, build.build_engine

    def step_ended(*a: Any, **k: Any) -> None:
        after_step(*a, **k)
        ends.append(time.perf_counter())

    def build_engine(*a: Any, **k: Any) -> Any:  # the engine's strategy, timed in its end_backward / after_step
        engine = built(*a, **k)
        strategy = engine.strategy
        strategy.end_backward = timed("end_backward", strategy.end_backward)
        strategy.after_step = timed("after_step", strategy.after_step)
        memory["rss_before_mb"] = proc_status_mb("VmRSS")
        try:  # "5": reset the peak resident set (VmHWM) to the current one
            Path("/proc/self/clear_refs").write_text("5")
            memory["reset"] = True
        except OSError:
            memory["reset"] = False
        return engine

    memory: dict[str, Any] = {}
    events.after_step, build.build_engine = step_ended, build_engine
    loop.losses_after_step = timed("after_step", loop.losses_after_step)  # FAMO's forward again, inside its after_step's args
    with tempfile.TemporaryDirectory() as tmp:
        result, _ = run_engine(config, Path(tmp) / "run")
    peak = proc_status_mb("VmHWM")
    steps_ms = [1000 * (b - a) for a, b in zip(ends[args.warmup - 1:], ends[args.warmup:])]
    per_step = {p: 1000 * sum(s for i, s in found if i >= args.warmup) / args.steps for p, found in parts.items()}
    return {"strategy": name, "steps": result["steps"], "timed_steps": len(steps_ms), "ms_per_step": statistics.median(steps_ms),
            "mean_ms_per_step": statistics.fmean(steps_ms), "min_ms_per_step": min(steps_ms),
            "end_backward_ms_per_step": per_step["end_backward"] if parts["end_backward"] else None,
            "after_step_ms_per_step": per_step["after_step"] if parts["after_step"] else None,
            "samples_per_step": result["samples"] / result["steps"], "real_tokens_per_step": result["real_tokens"] / result["steps"],
            "rss_before_mb": memory["rss_before_mb"],
            "peak_rss_growth_mb": peak - memory["rss_before_mb"] if memory["reset"] else None}


def run_child(args: argparse.Namespace, root: Path, name: str) -> dict[str, Any]:
    options = ["--steps", args.steps, "--warmup", args.warmup, "--batch-size", args.batch_size, "--hidden", args.hidden,
               "--layers", args.layers, "--heads", args.heads, "--lr", args.lr, "--threads", args.threads, "--seed", args.seed]
    done = subprocess.run([sys.executable, __file__, "--child", name, "--root", str(root), *map(str, options)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"loss strategy {name!r}: the run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(best: dict[str, dict[str, Any]]) -> list[str]:
    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f}"

    lines = ["| strategy | ms/step (median) | × sum | samples/step | end_backward ms/step | after-step ms/step | peak RSS growth MB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in best.items():
        rel = "–" if r["vs_sum"] is None else f"{r['vs_sum']:.2f}"
        note = " (1 task/step)" if name == "single" else ""
        growth = "–" if r["peak_rss_growth_mb"] is None else f"{r['peak_rss_growth_mb']:.0f}"
        lines.append(f"| {name}{note} | {r['ms_per_step']:.1f} | {rel} | {r['samples_per_step']:.1f} | "
                     f"{ms(r['end_backward_ms_per_step'])} | {ms(r['after_step_ms_per_step'])} | {growth} |")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.child:
        print(json.dumps(child(args)))
        return {}
    torch = prepare_torch(args.threads)
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.strategies}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_tasks(root, args.rows, args.seed)
        build_encoder(root, args)
        for _ in range(args.repeats):  # alternate, keep each strategy's fastest run (the machine may be shared)
            for name in args.strategies:
                runs[name].append(run_child(args, root, name))
    best = {name: min(found, key=lambda r: r["ms_per_step"]) for name, found in runs.items()}
    base = best.get("sum")
    for r in best.values():
        r["vs_sum"] = r["ms_per_step"] / base["ms_per_step"] if base else None
    report = {"setup": {"model": f"BERT hidden {args.hidden}, {args.layers} layers, {args.heads} heads, fp32, CPU",
                        "torch_threads": torch.get_num_threads(), "warmup_steps": args.warmup, "timed_steps": args.steps,
                        "batch_size": args.batch_size, "rows_per_task": args.rows,
                        "tasks": {k: f"{lo}-{hi} words" for k, (lo, hi) in LENGTHS.items()}, "repeats": args.repeats,
                        "ms_per_step": "median wall time of a timed step, fastest of the repeats",
                        "peak_rss_growth_mb": "peak resident set during training minus the resident set before it, fresh process"},
              "results": best, "runs": runs, "wall_s": time.perf_counter() - started}
    print(json.dumps(report, indent=2))
    print()
    print("\n".join(table(best)))
    return report


if __name__ == "__main__":
    main()
