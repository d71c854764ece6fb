"""Draw docs/benchmarks-gpu.png from the recorded H100 runs (benchmarks/results/h100-*.json).

Left: every variant's MFU per run, the best of each run marked, with issue #9's 45% goal; variants
on BERT pre-training's shapes (``--mix seq512``, run 8 on) in orange, the RSG-like fine-tuning mix in blue. Right: GPU kernel time per step by kind (``gpu_bench.py --diagnose``) for the
diagnosed variants of the fastest settings, against the step time 45% MFU would allow for the
same tokens. Figures are read from the JSON files, nothing is measured here.

    python benchmarks/plot_gpu.py [--out docs/benchmarks-gpu.png]

Needs matplotlib (``pip install mtcore[plot]``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from plot_benchmarks import save_figure  # benchmarks/ is on sys.path when this script runs

HERE = Path(__file__).resolve().parent
GOAL = 0.45
KINDS = ("matmul", "attention", "triton (fused)", "optimizer", "other", "copy/fill")
#: (run, variant) whose kernel split is drawn: the fastest settings as they evolved
SPLITS = [("3", "compiled_packed_random_budget64k_no_dropout", "run 3: compiled,\nno dropout"),
          ("6", "compiled_packed_random_budget64k_attn_drop0_bf16_residual", "run 6: compiled,\nbf16 residual"),
          ("7", "regional_packed_random_budget64k_no_dropout_bf16_residual", "run 7: regional, bf16\nresidual, no dropout"),
          ("8", "regional_grouped_budget64k_no_dropout_bf16_residual", "run 8, seq512:\nas run 7, SDPA"),
          ("8", "regional_grouped_budget64k_no_dropout_bf16_residual_fa4", "run 8, seq512:\nSDPA with FA4")]


def load_runs(folder: Path) -> dict[str, list[dict]]:
    """Run label -> its variants' results (run 1 and 2 share one file)."""
    runs: dict[str, list[dict]] = {}
    first = json.loads((folder / "h100-2026-11-26.json").read_text(encoding="utf-8"))
    runs["1"] = first["run_1_cudnn_sdpa_on"]["results"]
    runs["2"] = first["run_2_cudnn_sdpa_off"]["results"]
    for path in sorted(folder.glob("h100-*-run*.json")):
        runs[path.stem.rsplit("run", 1)[1]] = json.loads(path.read_text(encoding="utf-8"))["results"]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "benchmarks-gpu.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = load_runs(args.results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 4.8))
    for x, (run, results) in enumerate(runs.items()):
        mfus = [100 * r["mfu"] for r in results]
        colors = ["tab:orange" if r.get("mix", "rsg") != "rsg" else "tab:blue" for r in results]
        left.scatter([x] * len(mfus), mfus, color=colors, alpha=0.6, s=18)
        left.scatter([x], [max(mfus)], color="tab:green", s=60, marker="*", zorder=3)
        left.annotate(f"{max(mfus):.1f}%", (x, max(mfus)), textcoords="offset points", xytext=(6, 4), fontsize=8)
    left.axhline(100 * GOAL, color="tab:red", linestyle="--", label="goal: 45% MFU")
    left.scatter([], [], color="tab:blue", s=18, label="RSG-like fine-tuning mix")
    left.scatter([], [], color="tab:orange", s=18, label="seq512 (pre-training shapes)")
    left.set_xticks(range(len(runs)), [f"run {r}" for r in runs])
    left.set_ylabel("MFU (% of 989 TFLOPS bf16)")
    left.set_ylim(0, 50)
    left.set_title("BERT-base training on one H100: every variant (dots), best per run (stars)")
    left.legend(loc="lower right")

    bottoms = [0.0] * len(SPLITS)
    for kind in KINDS:
        values = []
        for run, variant, _ in SPLITS:
            row = next(r for r in runs[run] if r["variant"] == variant)
            values.append(row["diagnosis"]["kinds_ms_per_step"].get(kind, 0.0))
        right.bar(range(len(SPLITS)), values, bottom=bottoms, label=kind)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    for x, (run, variant, _) in enumerate(SPLITS):
        row = next(r for r in runs[run] if r["variant"] == variant)
        allowed = row["mfu"] * row["ms_per_step"] / GOAL  # the same FLOPs at 45% MFU
        right.plot([x - 0.4, x + 0.4], [allowed, allowed], color="tab:red", linestyle="--")
        right.annotate(f"{row['tokens_per_step']:,} tokens", (x, bottoms[x]), textcoords="offset points", xytext=(-30, 4), fontsize=8)
    right.plot([], [], color="tab:red", linestyle="--", label="step time at 45% MFU")
    right.set_xticks(range(len(SPLITS)), [label for _, _, label in SPLITS], fontsize=8)
    right.set_ylabel("GPU kernel time per step (ms)")
    right.set_title("Where a step's time goes (gpu_bench.py --diagnose)")
    right.legend(fontsize=8, loc="upper center", ncol=4)
    right.set_ylim(0, max(bottoms) * 1.4)
    save_figure(fig, args.out, dpi=110)


if __name__ == "__main__":
    main()
