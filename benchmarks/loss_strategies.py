"""Loss strategies: the cost of one optimizer step under each of mtcore's loss strategies, one run.

Every strategy trains the same randomly initialised small BERT (built offline) on CPU in fp32 on
the same rows: three text-classification tasks with short, medium and long texts
(``multitask_overhead.write_tasks``), with the same seed, so every strategy but ``single`` gets
the same batches: one batch of every task per step. ``single`` trains one task's batch per step
(the proportional sampler picks it), so its step is about a third of the others' work.

Each run builds the engine, then trains ``--warmup`` steps (not timed) and ``--steps`` timed
steps. A step's time is the wall time between the ends of two consecutive steps (the loop's
``events.after_step``, wrapped); reported: the median over the timed steps, and the mean time per
step inside ``end_backward`` (gradient combiners: checking, combining and writing the K flat task
gradients; their per-task backward passes, as many as ``sum`` runs, come before it) and inside
FAMO's after-step work (its forward pass again without gradients, and its logit update), or GLS's and STCH's before-step
work (the step's forward pass first, without gradients, and their weights).
Runs alternate (``--repeats`` rounds, every strategy once per round, every other round in reverse
order) and the fastest of each is kept. In the first round each strategy runs in a fresh process
(``--child``), for its peak RSS growth: the process's peak resident set during training (``VmHWM``,
reset through ``/proc/self/clear_refs`` just before the loop) minus its resident set then (model,
data and libraries loaded; Adam's state, gradients, activations and the strategy's buffers come
after). Later rounds run in this process (time only: a fresh process costs seconds of imports).

    OMP_NUM_THREADS=1 /tmp/venv/bin/python benchmarks/loss_strategies.py [--steps 40] [--threads 1] [--strategies sum,pcgrad]

(docs/benchmarks.md: ``--threads 1 --layers 2 --steps 20``, ~8 minutes on 2 cores.) Prints a JSON
object, then a markdown table. ``--smoke`` runs a few steps of a tiny model on 3 strategies, in-process.
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

#: The table's order of mtcore's built-in loss strategies (loss weighting first, then gradient combiners); built-ins
#: registered since (mtcore/builtin_plugin.py) follow them.
ORDER = ["single", "sum", "weighted", "uncertainty", "rlw", "dwa", "famo",
         "pcgrad", "mgda", "cagrad", "gradnorm", "imtl", "aligned_mtl", "gradvac", "nash_mtl", "db_mtl"]
SMOKE = ["sum", "famo", "pcgrad"]


def builtin_strategies() -> list[str]:
    from mtcore.plugins import load_registry

    names = [c.name for c in load_registry().components["loss"].values() if c.plugin == "mtcore"]
    return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, rows=1000)
    parser.set_defaults(steps=40, repeats=3)
    parser.add_argument("--warmup", type=int, default=3, help="steps trained before the timed ones (not timed)")
    parser.add_argument("--strategies", default=None, help="comma-separated loss strategies (default: every built-in one)")
    parser.add_argument("--smoke", action="store_true", help="a few steps of a tiny model on 3 strategies, in-process")
    parser.add_argument("--in-process", action="store_true",
                        help="run every round in this process (no fresh processes, no peak memory)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # one run, in this process: a strategy's name
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)  # the parent's folder: encoder and tasks
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.warmup, args.hidden, args.layers, args.heads, args.rows, args.repeats = 3, 1, 32, 1, 2, 40, 1
        args.in_process = True  # a process per strategy would take seconds of imports each
    names = args.strategies.split(",") if args.strategies else SMOKE if args.smoke else [] if args.child else builtin_strategies()
    args.strategies = [s.strip() for s in names if s.strip()]
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1 (the first step's start is not seen)")
    return args


def proc_status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def measure(args: argparse.Namespace, root: Path, name: str) -> dict[str, Any]:
    """One strategy's run in this process: step times, parts of a step, peak RSS growth (None unless run as ``--child``)."""
    import mtcore.train.build as build
    import mtcore.train.events as events
    import mtcore.train.loop as loop

    tasks = json.loads((root / "tasks.json").read_text())
    config = engine_config(argparse.Namespace(**{**vars(args), "steps": args.warmup + args.steps}), root / "encoder", tasks,
                           log_every=10 ** 6)
    config["loss"] = {"strategy": name}
    ends: list[float] = []  # perf_counter at the end of every step
    parts: dict[str, list[tuple[int, float]]] = {"end_backward": [], "after_step": [], "before_step": []}  # (steps ended before, s)
    memory: dict[str, Any] = {}

    def timed(part: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                parts[part].append((len(ends), time.perf_counter() - t0))
        return wrapper

    originals = events.after_step, build.build_engine, loop.losses_after_step, loop.losses_before_step

    def step_ended(*a: Any, **k: Any) -> None:
        originals[0](*a, **k)
        ends.append(time.perf_counter())

    def build_engine(*a: Any, **k: Any) -> Any:  # the engine's strategy, timed in its end_backward / after_step
        engine = originals[1](*a, **k)
        engine.strategy.end_backward = timed("end_backward", engine.strategy.end_backward)
        engine.strategy.after_step = timed("after_step", engine.strategy.after_step)
        engine.strategy.before_step = timed("before_step", engine.strategy.before_step)
        memory["rss_before_mb"] = proc_status_mb("VmRSS")
        try:  # "5": reset the peak resident set (VmHWM) to the current one
            Path("/proc/self/clear_refs").write_text("5")
            memory["reset"] = True
        except OSError:
            memory["reset"] = False
        return engine

    events.after_step, build.build_engine = step_ended, build_engine
    loop.losses_after_step = timed("after_step", originals[2])  # FAMO's forward again (an argument of its after_step)
    loop.losses_before_step = timed("before_step", originals[3])  # GLS's and STCH's forward first
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result, _ = run_engine(config, Path(tmp) / "run")
    finally:
        events.after_step, build.build_engine, loop.losses_after_step, loop.losses_before_step = originals
    peak = proc_status_mb("VmHWM")
    steps_ms = [1000 * (b - a) for a, b in zip(ends[args.warmup - 1:], ends[args.warmup:])]
    per_step = {p: 1000 * sum(s for i, s in found if i >= args.warmup) / args.steps if found else None
                for p, found in parts.items()}
    return {"strategy": name, "steps": result["steps"], "timed_steps": len(steps_ms), "ms_per_step": statistics.median(steps_ms),
            "mean_ms_per_step": statistics.fmean(steps_ms), "min_ms_per_step": min(steps_ms),
            "end_backward_ms_per_step": per_step["end_backward"], "after_step_ms_per_step": per_step["after_step"],
            "before_step_ms_per_step": per_step["before_step"],
            "samples_per_step": result["samples"] / result["steps"], "real_tokens_per_step": result["real_tokens"] / result["steps"],
            "rss_before_mb": memory["rss_before_mb"],
            "peak_rss_growth_mb": peak - memory["rss_before_mb"] if memory["reset"] and args.child else None}


def run_child(args: argparse.Namespace, root: Path, name: str, fresh: bool) -> dict[str, Any]:
    """One strategy's run in a fresh process (``--child``), for its own peak memory; or in this one."""
    if not fresh:
        return measure(args, root, name)
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

    lines = ["| strategy | ms/step (median) | × sum | rounds, ms/step | samples/step | end_backward ms/step | before/after-step ms/step "
             "| peak RSS growth MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in best.items():
        rel = "–" if r["vs_sum"] is None else f"{r['vs_sum']:.2f}"
        note = " (1 task/step)" if name == "single" else ""
        growth = "–" if r["peak_rss_growth_mb"] is None else f"{r['peak_rss_growth_mb']:.0f}"
        rounds = f"{min(r['rounds_ms_per_step']):.0f}–{max(r['rounds_ms_per_step']):.0f}"
        lines.append(f"| {name}{note} | {r['ms_per_step']:.1f} | {rel} | {rounds} | {r['samples_per_step']:.1f} | "
                     f"{ms(r['end_backward_ms_per_step'])} | {ms(r.get('before_step_ms_per_step') or r['after_step_ms_per_step'])} | {growth} |")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.child:
        prepare_torch(args.threads)
        print(json.dumps(measure(args, Path(args.root), args.child)))
        return {}
    torch = prepare_torch(args.threads)
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.strategies}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tasks.json").write_text(json.dumps(write_tasks(root, args.rows, args.seed)))
        build_encoder(root, args)
        for repeat in range(args.repeats):  # alternate, keep each strategy's fastest run (the machine may be shared)
            for name in args.strategies[::-1] if repeat % 2 else args.strategies:
                runs[name].append(run_child(args, root, name, fresh=repeat == 0 and not args.in_process))
    best = {name: {**min(found, key=lambda r: r["ms_per_step"]), "peak_rss_growth_mb": found[0]["peak_rss_growth_mb"],
                   "rss_before_mb": found[0]["rss_before_mb"], "rounds_ms_per_step": [r["ms_per_step"] for r in found]}
            for name, found in runs.items()}
    base = best.get("sum")
    for r in best.values():
        r["vs_sum"] = r["ms_per_step"] / base["ms_per_step"] if base else None
    report = {"setup": {"model": f"BERT hidden {args.hidden}, {args.layers} layers, {args.heads} heads, fp32, CPU",
                        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                        "warmup_steps": args.warmup, "timed_steps": args.steps,
                        "batch_size": args.batch_size, "rows_per_task": args.rows,
                        "tasks": {k: f"{lo}-{hi} words" for k, (lo, hi) in LENGTHS.items()}, "repeats": args.repeats,
                        "fresh_process_first_round": not args.in_process,
                        "ms_per_step": "median wall time of a timed step, fastest of the repeats",
                        "peak_rss_growth_mb": "peak resident set during training minus the resident set before it "
                                              + ("(not measured in-process)" if args.in_process else "(first round, fresh process)")},
              "results": best, "wall_s": time.perf_counter() - started,
              "runs": {name: [{k: r[k] for k in ("ms_per_step", "mean_ms_per_step", "peak_rss_growth_mb")} for r in found]
                       for name, found in runs.items()}}
    print(json.dumps(report, indent=2))
    print()
    print("\n".join(table(best)))
    return report


if __name__ == "__main__":
    main()
