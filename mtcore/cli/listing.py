"""``mt plugins``, ``mt list-tasks``, ``mt show-task``, ``mt components``: what is installed.

These commands never import torch, transformers or datasets.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from mtcore.cli.output import print_json, report_plugin_failures, stdout
from mtcore.plugins import load_registry
from mtcore.registry import COMPONENT_KINDS


def plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List installed plugins: distribution, version, status, number of tasks."""
    registry = load_registry(warn=False)
    if as_json:
        print_json([p.summary() for p in registry.plugins])
        return
    table = Table(title="mtcore plugins")
    for column in ("plugin", "distribution", "version", "status", "tasks", "components", "hooks"):
        table.add_column(column)
    for p in registry.plugins:
        status = "[green]ok[/green]" if p.status == "ok" else f"[red]failed[/red]: {p.error}"
        hooks = ", ".join(h.removeprefix("mt_register_") for h in p.hooks)
        table.add_row(p.name, p.distribution, p.version, status, str(p.tasks), str(p.components), hooks)
    stdout.print(table)


def list_tasks(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    plugin: Optional[str] = typer.Option(None, "--plugin", help="Only tasks of this plugin."),
    kind: Optional[str] = typer.Option(None, "--kind", help="Only tasks of this kind (e.g. pair_classification)."),
) -> None:
    """List every registered task with its qualified id, kind, labels and sources."""
    registry = load_registry(warn=False)
    report_plugin_failures(registry)
    tasks = registry.find_tasks(plugin=plugin, kind=kind)
    if as_json:
        print_json([t.summary() for t in tasks])
        return
    table = Table(title=f"{len(tasks)} tasks")
    for column in ("id", "kind", "labels", "sources", "description"):
        table.add_column(column, overflow="fold")
    for t in tasks:
        labels = ", ".join(t.labels[:4]) + (f", … (+{len(t.labels) - 4})" if len(t.labels) > 4 else "") if t.labels else "-"
        table.add_row(t.id, t.kind.value, labels, ", ".join(t.sources), t.description)
    stdout.print(table)


def show_task(task_id: str = typer.Argument(..., metavar="ID", help="Task id, e.g. rsg:terra or terra.")) -> None:
    """Show one task: inputs, labels, sources, head, metrics, sample size."""
    from mtcore.sample_info import sample_sizes

    registry = load_registry(warn=False)
    report_plugin_failures(registry)
    task = registry.task(task_id)
    table = Table(title=task.id, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("description", task.description or "-")
    table.add_row("kind", task.kind.value)
    table.add_row("inputs", ", ".join(f"{k} <- {v}" for k, v in task.input_map.items()))
    labels = ", ".join(task.labels) or "-"
    if task.label_values is not None:
        labels += "  (stored as " + ", ".join(repr(v) for v in task.label_values) + ")"
    table.add_row("labels", labels)
    for name, source in task.sources.items():
        table.add_row(f"source {name}", source.description)
    options = ", ".join(f"{k}={v}" for k, v in task.head_options.items())
    table.add_row("head", task.head_name + (f" ({options})" if options else ""))
    table.add_row("metrics", ", ".join(task.all_metrics) + f"  (main: {task.main})")
    table.add_row("max_length", str(task.max_length))
    sizes = sample_sizes(task)
    if sizes:
        table.add_row("sample size", ", ".join(f"{split} {n}" for split, n in sizes.items()))
    for key, value in task.metadata.items():
        table.add_row(key, str(value))
    if task.evaluate_only:
        table.add_row("note", "evaluate-only (diagnostic): not trained on")
    stdout.print(table)


def components(
    kind: Optional[str] = typer.Argument(None, help="head, sampler, loss, metric or writer (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered heads, samplers, loss strategies, metrics and writers."""
    from mtcore.errors import unknown

    registry = load_registry(warn=False)
    report_plugin_failures(registry)
    kinds = list(COMPONENT_KINDS)
    if kind is not None and kind not in kinds:
        raise unknown("component kind", kind, kinds)
    chosen = [kind] if kind else kinds
    rows = [c.summary() | {"kind": k} for k in chosen for c in sorted(registry.components[k].values(), key=lambda c: c.id)]
    if as_json:
        print_json(rows)
        return
    table = Table(title="components")
    for column in ("kind", "id", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["kind"], row["id"], row["description"])
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("list-tasks")(list_tasks)
    app.command("show-task")(show_task)
    app.command("components")(components)
