"""``mt compare RUN [RUN ...]``: finished runs side by side — each task's score, the aggregate, the steps.

A RUN is a run directory (its ``summary.json``) or the output folder of ``mt train --seeds``
(its ``seeds.json``: every value is the mean over the seeds, shown with its standard deviation).
Each task's column is its main metric (``--metric NAME`` picks another, e.g. ``f1_macro`` or
``loss``), at the end of the run or, with ``--best``, at the best evaluation. The best value of
each column is bold (lower is better for ``loss`` and ``mse``). Imports nothing heavy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, List, Optional

import typer

from mtcore.errors import UsageError

#: Metrics where a lower value is better (mtcore.train.metrics.LOWER_IS_BETTER, and the losses).
LOWER_IS_BETTER = frozenset({"mse", "loss"})


def compare(
    runs: List[Path] = typer.Argument(..., metavar="RUN...", help="Run directories (summary.json) or --seeds output folders (seeds.json)."),
    best: bool = typer.Option(False, "--best", help="Scores at each run's best evaluation instead of its last."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Show this metric for every task instead of each task's main metric."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Compare finished runs side by side: each task's main metric, the aggregate, the steps."""
    from mtcore.cli.output import print_json

    part = "best" if best else "final"
    rows = [_read_run(path, part, metric) for path in runs]
    if as_json:
        print_json(rows)
        return
    _print_table(rows, part, metric)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read as JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: is not a summary mtcore wrote (a JSON object)")
    return data


def _read_run(path: Path, part: str, metric: Optional[str]) -> dict[str, Any]:
    """One row: ``{run, kind, status, steps, aggregate, tasks: {task: value}, metrics: {task: name}, std: {...}}``."""
    if (path / "summary.json").is_file():
        summary = _read_json(path / "summary.json")
        section = summary.get(part) or {}
        tasks, names = {}, {}
        for task, info in (summary.get("tasks") or {}).items():
            names[task] = metric or str(info.get("main_metric"))
            tasks[task] = _number((info.get(part) or {}).get(names[task]))
        return {"run": str(path), "kind": "run", "status": summary.get("status"), "steps": summary.get("steps"),
                "aggregate": _number(section.get("aggregate")), "tasks": tasks, "metrics": names, "std": {}}
    if (path / "seeds.json").is_file():
        return _read_seeds(path, part, metric)
    hint = "it is still running or was interrupted (mt train --resume finishes it)" if (path / "metrics.jsonl").is_file() else \
        "give a run directory or the output folder of mt train --seeds"
    raise UsageError(f"{path}: no summary.json or seeds.json there: {hint}")


def _read_seeds(path: Path, part: str, metric: Optional[str]) -> dict[str, Any]:
    spread = _read_json(path / "seeds.json")
    stats = spread.get(part) or {}
    main: dict[str, str] = {}
    for run_dir in (spread.get("runs") or {}).values():  # each task's main metric, from one seed's summary
        summary_path = Path(str(run_dir)) / "summary.json"
        if summary_path.is_file():
            main = {t: str(i.get("main_metric")) for t, i in (_read_json(summary_path).get("tasks") or {}).items()}
            break
    seen = {key.rsplit("/", 1)[0] for key in stats if "/" in key}
    tasks = [t for t in main if t in seen] + sorted(seen - set(main))
    values, std, names = {}, {}, {}
    for task in tasks:
        names[task] = metric or main.get(task, "")
        entry = stats.get(f"{task}/{names[task]}") or {}
        values[task], std[task] = _number(entry.get("mean")), _number(entry.get("std"))
    aggregate = stats.get("aggregate") or {}
    std["aggregate"] = _number(aggregate.get("std"))
    seeds = spread.get("seeds") or []
    return {"run": str(path), "kind": f"{len(seeds)} seeds", "status": "completed", "steps": None,
            "aggregate": _number(aggregate.get("mean")), "tasks": values, "metrics": names, "std": std}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _print_table(rows: list[dict[str, Any]], part: str, metric: Optional[str]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from mtcore.cli.output import stdout

    tasks: list[str] = []
    for row in rows:
        tasks.extend(t for t in row["tasks"] if t not in tasks)
    table = Table(title=f"{'best' if part == 'best' else 'final'} scores: {metric or 'each task’s main metric'}")
    for column in ("run", "status", "steps", "aggregate", *tasks):
        table.add_column(column, justify="left" if column in ("run", "status") else "right")
    named = {task: next(r["metrics"][task] for r in rows if task in r["metrics"]) for task in tasks}
    winners = {"aggregate": _winner([r["aggregate"] for r in rows], False)}
    winners.update({task: _winner([r["tasks"].get(task) for r in rows], named[task] in LOWER_IS_BETTER) for task in tasks})
    for index, row in enumerate(rows):
        cells = []
        for column in ("aggregate", *tasks):
            value = row["aggregate"] if column == "aggregate" else row["tasks"].get(column)
            text = "-" if value is None else f"{value:.4f}"
            if value is not None and row["std"].get(column) is not None and row["kind"] != "run":
                text += f" ± {row['std'][column]:.4f}"
            cells.append(f"[bold]{text}[/bold]" if winners[column] == index and len(rows) > 1 else text)
        status = row["status"] if row["kind"] == "run" else f"{row['kind']}"
        steps = "-" if row["steps"] is None else str(row["steps"])
        table.add_row(escape(row["run"]), escape(str(status)), steps, *cells)
    stdout.print(table)


def _winner(values: list[float | None], lower: bool) -> int | None:
    """Index of the best value (None when no value, or when several share it)."""
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    if not present:
        return None
    top = min(v for v, _ in present) if lower else max(v for v, _ in present)
    hits = [i for v, i in present if v == top]
    return hits[0] if len(hits) == 1 else None


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
