"""Draw docs/benchmarks.png: padding efficiency (measured now) and recorded CPU throughput figures.

Run: ``python benchmarks/plot_benchmarks.py [--results benchmarks/results/cpu-2core-2026-11-27.json]
[--out docs/benchmarks.png]``. Padding efficiency is computed on the spot by
``benchmarks/padding_efficiency.py`` (deterministic, well under a second); the throughput and
memory figures come from a results file written down from the benchmark runs (machine and
commands inside it). Needs matplotlib (``pip install mtcore[plot]``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def padding_report() -> dict:
    out = subprocess.run([sys.executable, str(HERE / "padding_efficiency.py")], capture_output=True, text=True, check=True).stdout
    report, _ = json.JSONDecoder().raw_decode(out)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results" / "cpu-2core-2026-11-27.json")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "benchmarks.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    padding = padding_report()["results"]
    recorded = json.loads(args.results.read_text(encoding="utf-8"))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    names = list(padding)
    axes[0].bar(names, [padding[n]["efficiency"] for n in names], color="#4c72b0")
    axes[0].axhline(0.95, color="red", linestyle="--", label="goal 0.95")
    axes[0].set_title("padding efficiency, RSG-like mix")
    axes[0].set_ylim(0, 1.05)
    axes[0].tick_params(axis="x", rotation=20)
    axes[0].legend()
    rows = recorded["train_throughput"]["rows"]
    axes[1].bar([r["loop"].replace(", ", "\n") for r in rows], [r["samples_per_s"] for r in rows],
                color=["#999999", "#55a868", "#8172b2", "#c44e52"][:len(rows)])
    axes[1].set_title("training samples/s (CPU, small BERT)")
    rows = recorded["multitask_overhead"]["rows"]
    axes[2].bar([r["loop"] for r in rows], [r["real_tokens_per_s"] for r in rows], color=["#999999", "#55a868"])
    axes[2].set_title("real tokens/s: 1 task vs 3 tasks")
    for ax in axes[1:]:
        ax.tick_params(axis="x", rotation=10)
    fig.suptitle(recorded["machine"], fontsize=8)
    save_figure(fig, args.out, dpi=100)


def save_figure(fig, out: Path, dpi: int) -> None:
    """Lay out, write (making the folder) and say where."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
