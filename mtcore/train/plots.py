"""``curves.png``: training loss per task and evaluation metrics against steps.

matplotlib is an optional extra (``pip install mtcore[plot]``): without it the plot is skipped
and :func:`plot_curves` returns a note saying so.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from mtcore.train.run_dir import read_events


def plot_curves(metrics_path: Path, output: Path) -> str | None:
    """Draw ``output`` from the events in ``metrics_path``; returns a note when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return "curves.png skipped: matplotlib is not installed (pip install 'mtcore[plot]')"
    events = read_events(metrics_path)
    losses: dict[str, list[tuple[int, float]]] = defaultdict(list)
    scores: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for event in events:
        if event.get("event") == "train" and event.get("loss") is not None:
            losses[str(event.get("task"))].append((int(event["step"]), float(event["loss"])))
        elif event.get("event") == "eval":
            for key, value in (event.get("metrics") or {}).items():
                if value is not None and not key.endswith("/loss"):
                    scores[key].append((int(event["step"]), float(value)))
            if event.get("aggregate") is not None:
                scores["aggregate"].append((int(event["step"]), float(event["aggregate"])))
    if not losses and not scores:
        return "curves.png skipped: no events logged"
    fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(12, 4.5))
    palette = plt.get_cmap("tab10").colors
    tasks = sorted({name.split("/")[0] for name in list(losses) + list(scores) if name != "aggregate"})
    colors = {task: palette[i % len(palette)] for i, task in enumerate(tasks)}  # one colour per task in both plots
    _lines(ax_loss, losses, "training loss per task", "loss", colors)
    _lines(ax_eval, scores, "evaluation", "metric", colors)
    import warnings

    with warnings.catch_warnings():  # "Tight layout not applied" (a crowded figure) would be a bare line about nothing named
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    tmp = output.with_name(".tmp-" + output.name)
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    tmp.replace(output)
    return None


#: The most lines a plot of ``curves.png`` names in a legend.
LEGEND_ENTRIES = 24


def _lines(ax: Any, series: dict[str, list[tuple[int, float]]], title: str, ylabel: str, colors: dict[str, Any]) -> None:
    styles = ("-", "--", ":", "-.")
    seen: dict[str, int] = {}
    for name, points in sorted(series.items()):
        points.sort()
        task = name.split("/")[0]
        nth = seen[task] = seen.get(task, -1) + 1
        style = {"linewidth": 2.5, "color": "black"} if name == "aggregate" else {"color": colors.get(task), "linestyle": styles[nth % 4]}
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if len(points) < 30 else None,
                markersize=3, label=name, **style)
    crowded = len(series) > LEGEND_ENTRIES  # 48 tasks: ~150 entries covered the plot and ran off the figure
    ax.set_title(f"{title} ({len(series)} lines: no legend; the values are in metrics.jsonl)" if crowded else title,
                 fontsize=9 if crowded else None)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if series and not crowded:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
