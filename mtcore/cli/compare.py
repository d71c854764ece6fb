"""``mt compare RUN [RUN ...]``: finished runs side by side — each task's score, the aggregate, the steps.

A RUN is a run directory (its ``summary.json``) or the output folder of ``mt train --seeds``
(its ``seeds.json``: every value is the mean over the seeds, shown with its standard deviation; several such folders:
each after the first is tested against it, :mod:`mtcore.cli.seed_tests`).
Each task's column is its main metric (``--metric NAME`` picks another, e.g. ``f1_macro`` or
``loss``), at the end of the run or, with ``--best``, at the best evaluation. The best value of
each column is bold (lower is better for ``loss`` and ``mse``); the aggregate only among runs of
the same tasks, main metrics and ``evaluation.weights`` (a warning says so otherwise); a task whose main metric
differs between runs shows each run's metric beside its value, and nothing in its column is bold. ``--best`` is the evaluation whose *aggregate* was best
(its step is shown); each task's own best evaluation (main metric, step), which summary.json records
since it has ``own_best``, is listed under the table. With several runs, a ``differs`` column lists
the config keys whose values differ from the first run's (``output_dir`` and ``logging`` left out).
A ``--metric`` no run recorded, or a RUN that is
not a finished run (missing, a file, a run's ``model/`` or checkpoint, a folder of runs, a run
still going, preempted or failed, an unfinished ``--seeds`` folder) is one line naming what to
give instead, exit 2. Imports nothing heavy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, List, Optional

import typer

from mtcore.errors import UsageError



def compare(
    runs: List[Path] = typer.Argument(..., metavar="RUN...", help="Run directories (summary.json) or --seeds output folders (seeds.json)."),
    best: bool = typer.Option(False, "--best", help="Scores at each run's best evaluation instead of its last."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Show this metric for every task instead of each task's main metric."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Compare finished runs side by side: each task's main metric, the aggregate, the steps."""
    from mtcore.cli.output import print_json

    from mtcore.cli.output import warn

    part = "best" if best else "final"
    rows = [_read_run(path, part, metric) for path in runs]
    if metric is not None:
        _check_metric(metric, rows, part)
    if len(rows) > 1:
        from mtcore.cli.run_differences import add_config_differences

        add_config_differences(rows, runs)
    task_sets = {tuple(sorted(row["tasks"])) for row in rows}
    if len(task_sets) > 1:  # an aggregate averages its run's tasks: over other tasks it is another number
        warn("the runs trained different sets of tasks, so their aggregates average different tasks and are not "
             "compared (no bold); compare the task columns")
    scored_alike = len(task_sets) == 1 and _aggregated_alike(rows, warn)
    from mtcore.cli.seed_tests import add_seed_tests, print_seed_tests

    add_seed_tests(rows, scored_alike)
    if as_json:
        print_json([{k: v for k, v in row.items() if k not in ("recorded", "tasks_changed", "mains")} for row in rows])
        return
    _print_table(rows, part, metric, compare_aggregates=scored_alike)
    print_seed_tests(rows, _shown_names([row["run"] for row in rows])[1])
    if best:
        _print_own_bests(rows)


def _mixed_metrics(rows: list[dict[str, Any]], key: str = "metrics") -> list[str]:
    """The tasks whose shown metric (``key`` "mains": main metric) differs between runs (accuracy in one, f1_macro in
    another): not one column's numbers."""
    tasks = [t for row in rows for t in row[key]]
    return [t for t in dict.fromkeys(tasks)  # mse and mtcore:mse are one metric
            if len({row[key][t].rsplit(":", 1)[-1] for row in rows if t in row[key]}) > 1]


def _aggregated_alike(rows: list[dict[str, Any]], warn: Any) -> bool:
    """Whether the runs' aggregates are the same mean (the same main metrics, the same ``evaluation.weights``); a warning
    when they are not."""
    mixed = _mixed_metrics(rows, "mains")  # the aggregates' own metrics, whatever --metric shows
    from mtcore.cli.run_weights import evaluation_weights

    weights = {json.dumps(evaluation_weights(Path(row["run"]), list(row["mains"])), sort_keys=True) for row in rows}
    if not mixed and len(weights) == 1:
        return True
    why = [f"the main metric of {', '.join(mixed)}"] if mixed else []
    why += ["evaluation.weights"] if len(weights) > 1 else []
    warn(f"the runs differ in {' and '.join(why)}, so their aggregates are different means and are not compared (no bold)"
         + ("; a task's column names each run's metric" if _mixed_metrics(rows) else ""))
    return False


def _check_metric(metric: str, rows: list[dict[str, Any]], part: str) -> None:
    """``--metric`` must name a metric some run recorded for some task (a typo would show a column of dashes)."""
    from mtcore.errors import did_you_mean

    recorded = sorted(set().union(*(row["recorded"] for row in rows)))
    if _spelled(metric, recorded) not in recorded:
        where = "at their best evaluation" if part == "best" else "at the end"
        raise UsageError(f"--metric {metric!r}: no run recorded it {where}{did_you_mean(metric, recorded)}; "
                         f"recorded: {', '.join(recorded) or 'none'}")


def _spelled(metric: str, recorded: Any) -> str:
    """How ``recorded`` (a run's metric names) spells ``metric``: itself, or a registered metric's other spelling, bare
    or qualified by its plugin (``mse`` and ``mtcore:mse``, as configs may write it); ``metric`` when none does."""
    names = list(recorded)
    if metric in names:
        return metric
    bare = metric.rsplit(":", 1)[-1]
    return next((name for name in names if (":" in name) != (":" in metric) and name.rsplit(":", 1)[-1] == bare), metric)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read as JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: is not a summary mtcore wrote (a JSON object)")
    return data


def _read_run(path: Path, part: str, metric: Optional[str]) -> dict[str, Any]:
    """One row: ``{run, kind, status, steps, aggregate, tasks: {task: value}, metrics: {task: name}, std: {...},
    recorded: {metric names}}``."""
    if (path / "summary.json").is_file():
        summary = _read_json(path / "summary.json")
        section = summary.get(part) or {}
        tasks, names, recorded, own, mains = {}, {}, set(), {}, {}
        for task, info in (summary.get("tasks") or {}).items():
            info = info if isinstance(info, dict) else {}
            values = info.get(part) or {}
            mains[task] = str(info.get("main_metric"))
            names[task] = metric or mains[task]
            tasks[task] = _number(values.get(_spelled(names[task], values)))
            recorded.update(str(name) for name in values)
            if isinstance(info.get("own_best"), dict):  # summaries written before own_best have none
                own[task] = {k: info["own_best"].get(k) for k in ("step", "metric", "value")}
        row = {"run": str(path), "kind": "run", "status": summary.get("status"), "steps": summary.get("steps"),
               "aggregate": _number(section.get("aggregate")), "tasks": tasks, "metrics": names, "std": {},
               "recorded": recorded, "mains": mains}
        if part == "best":  # the evaluation whose aggregate was best: every task column is from that step
            row.update(best_step=section.get("step"), own_best=own or None)
        return row
    if (path / "seeds.json").is_file():
        return _read_seeds(path, part, metric)
    raise UsageError(_not_a_run(path))


def _not_a_run(path: Path) -> str:
    """Why ``path`` is neither a finished run nor a --seeds folder, and what to give instead."""
    known = "a run directory (holding summary.json) or the output folder of mt train --seeds (seeds.json)"
    if not path.exists():
        from mtcore.errors import did_you_mean_path

        return f"{path}: no such file or folder{did_you_mean_path(path, folders=True)}; give {known}"
    if path.is_file():
        if path.name in ("summary.json", "seeds.json", "metrics.jsonl", "config.yaml"):
            return f"{path} is a file; give the folder that holds it: mt compare {_quoted(path.parent)}"
        return f"{path} is a file, not a run; give {known}"
    if (path / "metrics.jsonl").is_file():
        from mtcore.train.run_status import unfinished

        return f"{path}: no summary.json there: {unfinished(path, 'compare it when it ends', 'train it again, or leave it out')}"
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if (run / "summary.json").is_file() and (path.parent.name == "checkpoints" or (path / "mtcore.json").is_file()):
        return f"{path} is inside the run {run}; give the run directory: mt compare {_quoted(run)}"
    seeds = sorted(p.name for p in path.glob("seed-*") if (p / "config.yaml").is_file())
    if seeds:
        return (f"{path}: the output folder of mt train --seeds whose seeds have not all finished (no seeds.json yet; "
                f"{', '.join(seeds)}): finish them with mt train CONFIG --seeds ... --output-dir {_quoted(path)} --resume, "
                f"or compare one seed's run ({path / seeds[0]})")
    inside = sorted(str(p.parent) for p in path.glob("*/summary.json")) + sorted(str(p.parent) for p in path.glob("*/seeds.json"))
    if inside:
        shown = " ".join(map(_quoted, inside[:6])) + (" ..." if len(inside) > 6 else "")
        return f"{path} is a folder of runs, not a run; give the runs themselves: mt compare {shown}"
    if (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():
        return f"{path}: a run that stopped before its first step (only its config.yaml): nothing to compare; give {known}"
    return f"{path}: no summary.json or seeds.json there; give {known}"


def _quoted(path: Any) -> str:
    """A path as a shell word: the commands in these lines are pasted into a shell (``runs/int sp`` -> ``'runs/int sp'``)."""
    import shlex

    return shlex.quote(str(path))


def _read_seeds(path: Path, part: str, metric: Optional[str]) -> dict[str, Any]:
    spread = _read_json(path / "seeds.json")
    stats = spread.get(part) or {}
    seeds = spread.get("seeds") or []
    if spread.get("status") == "incomplete":  # written after each seed; seeds.json from before 'status' are whole
        _refuse_unfinished_seeds(path, seeds, spread.get("requested") or [])
    main: dict[str, str] = {}
    stored = spread.get("runs") or {}
    # each task's main metric, from one seed's summary: the seed folder beside seeds.json first (the paths
    # seeds.json holds may be relative to the folder training ran in, or the folder may have moved)
    places = [path / f"seed-{seed}" for seed in seeds] + [Path(str(run_dir)) for run_dir in stored.values()]
    for run_dir in places:
        summary_path = run_dir / "summary.json"
        if summary_path.is_file():
            main = {t: str(i.get("main_metric")) for t, i in (_read_json(summary_path).get("tasks") or {}).items()}
            break
    seen = {key.rsplit("/", 1)[0] for key in stats if "/" in key}
    recorded = {key.rsplit("/", 1)[1] for key in stats if "/" in key}
    if metric is None and seen - set(main):
        raise UsageError(f"{path}: none of its seeds' run directories ({path / 'seed-<seed>'}) holds a summary.json, so "
                         f"each task's main metric is unknown; give --metric NAME (recorded: {', '.join(sorted(recorded))})")
    tasks = [t for t in main if t in seen] + sorted(seen - set(main))
    values, std, names, each = {}, {}, {}, {}
    for task in tasks:
        names[task] = metric or main.get(task, "")
        spelled = _spelled(names[task], [key.rsplit("/", 1)[1] for key in stats if key.rsplit("/", 1)[0] == task])
        entry = stats.get(f"{task}/{spelled}") or {}
        values[task], std[task], each[task] = _number(entry.get("mean")), _number(entry.get("std")), _seed_values(entry)
    aggregate = stats.get("aggregate") or {}
    std["aggregate"], each["aggregate"] = _number(aggregate.get("std")), _seed_values(aggregate)
    row = {"run": str(path), "kind": f"{len(seeds)} seeds", "status": "completed", "steps": None,
           "aggregate": _number(aggregate.get("mean")), "tasks": values, "metrics": names, "std": std, "recorded": recorded,
           "mains": {t: main.get(t, names[t]) for t in tasks}, "seed_values": {k: each[k] for k in ("aggregate", *tasks) if each[k]}}
    if part == "best":
        row.update(best_step=None, own_best=None)
    return row


def _seed_values(entry: Any) -> list[float]:
    """The per-seed values of one ``seeds.json`` statistic (those of seeds that recorded one)."""
    per_seed = entry.get("values") if isinstance(entry, dict) else None
    numbers = [_number(v) for v in (per_seed.values() if isinstance(per_seed, dict) else [])]
    return [v for v in numbers if v is not None]


def _refuse_unfinished_seeds(path: Path, finished: list[Any], requested: list[Any]) -> None:
    """A --seeds folder whose command stopped before its last seed: its mean is over fewer seeds than asked for."""
    done = ", ".join(f"seed-{seed}" for seed in finished) or "none"
    asked = ",".join(str(seed) for seed in requested)
    raise UsageError(f"{path}: the output folder of mt train --seeds whose seeds have not all finished ({len(finished)} of "
                     f"{len(requested)}: {done}; seeds.json says incomplete): finish them with mt train CONFIG --seeds {asked} "
                     f"--output-dir {_quoted(path)} --resume" + (f", or compare one seed's run ({path / f'seed-{finished[0]}'})" if finished else ""))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _print_table(rows: list[dict[str, Any]], part: str, metric: Optional[str], compare_aggregates: bool = True) -> None:
    from rich.markup import escape
    from rich.table import Table

    from mtcore.cli.output import stdout
    from mtcore.cli.run_differences import differs_cell

    tasks: list[str] = []
    for row in rows:
        tasks.extend(t for t in row["tasks"] if t not in tasks)
    title = "scores at each run's best aggregate evaluation (its step: best at)" if part == "best" else "final scores"
    shown = metric or "each task's main metric"
    table = Table(title=escape(f"{title}: {shown}"))
    best_at = ("best at",) if part == "best" else ()
    differs = ("differs",) if "differs" in rows[0] else ()
    folder, names = _shown_names([row["run"] for row in rows])
    if folder:
        table.caption = escape(f"runs in {folder}")
    named = {task: next(r["metrics"][task] for r in rows if task in r["metrics"]) for task in tasks}
    mixed = _mixed_metrics(rows)  # such a column's cells name their metric, and none is bold
    winners = {"aggregate": _winner([r["aggregate"] for r in rows], False) if compare_aggregates else None}
    winners.update({task: None if task in mixed else _winner([r["tasks"].get(task) for r in rows], _lower_is_better(named[task]))
                    for task in tasks})
    winners["mixed"] = mixed
    by_task = _too_wide(rows, tasks, stdout.width)  # the tasks' columns would be cut: a table of their own, a row per task
    for column in ("run", "status", "steps", *best_at, "aggregate", *([] if by_task else tasks), *differs):  # names fold
        table.add_column(column, justify="left" if column in ("run", "status", "differs") else "right",
                         overflow="fold" if column in ("run", "differs") else "ellipsis")
    for index, row in enumerate(rows):
        cells = [_cell(row, column, winners, index, len(rows)) for column in ("aggregate", *([] if by_task else tasks))]
        status = row["status"] if row["kind"] == "run" else f"{row['kind']}"
        steps = "-" if row["steps"] is None else str(row["steps"])
        best_at = [] if part != "best" else ["-" if row.get("best_step") is None else str(row["best_step"])]
        differs = [] if "differs" not in row else [escape(differs_cell(row["differs"], index, row.get("tasks_changed")))]
        table.add_row(escape(names[index]), escape(str(status)), steps, *best_at, *cells, *differs)
    stdout.print(table)
    if by_task:
        per_task = Table(title=escape(f"{title}, a row per task: {shown}"))
        per_task.add_column("task", overflow="fold")
        for name in names:
            per_task.add_column(escape(name), justify="right", overflow="fold")
        for task in tasks:
            per_task.add_row(escape(task), *(_cell(row, task, winners, index, len(rows)) for index, row in enumerate(rows)))
        stdout.print(per_task)


def _cell(row: dict[str, Any], column: str, winners: dict[str, Any], index: int, runs: int) -> str:
    """One score (± its spread over seeds), in bold when it is the best of its column."""
    value = row["aggregate"] if column == "aggregate" else row["tasks"].get(column)
    text = "-" if value is None else f"{value:.4f}"
    if value is not None and row["std"].get(column) is not None and row["kind"] != "run":
        text += f" ± {row['std'][column]:.4f}"
    if value is not None and column in winners["mixed"]:
        text += f" {row['metrics'][column]}"
    return f"[bold]{text}[/bold]" if winners[column] == index and runs > 1 else text


def _too_wide(rows: list[dict[str, Any]], tasks: list[str], width: int) -> bool:
    """Whether a column per task (its full name or its widest score, and the borders) leaves the run's own columns
    (about 40 characters) no room in ``width``."""
    spread = any(row["kind"] != "run" for row in rows)
    need = sum(max(len(task), 17 if spread else 6) + 3 for task in tasks)
    return len(tasks) > 1 and need + 40 > width


def _shown_names(runs: list[str]) -> tuple[str, list[str]]:
    """``(folder, names)``: several runs in one folder (a grid's, a sweep's) are shown by their names in it, the folder
    once under the table; otherwise ``("", runs)``."""
    import os

    if len(runs) < 2:
        return "", runs
    try:
        folder = os.path.commonpath(runs)
    except ValueError:  # absolute and relative paths mixed
        return "", runs
    if not folder or folder in runs or folder in (os.sep, "."):
        return "", runs
    return folder, [os.path.relpath(run, folder) for run in runs]


def _print_own_bests(rows: list[dict[str, Any]]) -> None:
    """Under ``--best``'s table: each task's own best evaluation (its main metric), which may be at another step."""
    from rich.markup import escape

    from mtcore.cli.output import stdout

    lines = []
    for row in rows:
        own = row.get("own_best")
        if own:
            shown = "; ".join(f"{task} {entry.get('metric')} {_format(entry.get('value'))} at step {entry.get('step')}"
                              for task, entry in own.items())
            lines.append(f"  {row['run']}: {shown}")
    if lines:
        stdout.print(escape("each task's own best evaluation (main metric; the columns above are at the best aggregate):"))
        for line in lines:
            stdout.print(escape(line), soft_wrap=True)


def _format(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _lower_is_better(metric: str) -> bool:
    """A loss, or a metric registered with lower_is_better=True (mse, mtcore:mse)."""
    from mtcore.plugins import lower_is_better

    return metric == "loss" or lower_is_better(metric)


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
