"""``mt plugins``, ``mt list-tasks``, ``mt show-task``, ``mt components``: what is installed.

These commands never import torch, transformers or datasets.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from mtcore.cli.output import print_json, report_plugin_failures, stdout, warn
from mtcore.errors import PluginError
from mtcore.plugins import load_registry, strict_mode
from mtcore.registry import COMPONENT_KINDS


def plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List installed plugins: distribution, version, status, number of tasks (exit 1 if one failed)."""
    registry = load_registry(warn=False, strict=False)
    if as_json:
        print_json([p.summary() for p in registry.plugins])
    else:
        table = Table(title="mtcore plugins")
        for column in ("plugin", "distribution", "version", "status", "tasks", "components", "hooks"):
            table.add_column(column)
        for p in registry.plugins:
            status = "[green]ok[/green]" if p.status == "ok" else f"[red]failed[/red]: {escape(p.error)}"
            hooks = ", ".join(h.removeprefix("mt_register_") for h in p.hooks)
            table.add_row(escape(p.name), escape(p.distribution), escape(p.version), status, str(p.tasks), str(p.components), hooks)
        stdout.print(table)
    for line in registry.warnings + [p.heavy_line() for p in registry.plugins if p.heavy]:
        warn(line)
    if registry.failures:
        report_plugin_failures(registry, tracebacks_only=True)
        if strict_mode():
            warn("MT_STRICT_PLUGINS=1: other mt commands refuse to run until it is fixed or uninstalled")
        raise typer.Exit(1)


def list_tasks(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    plugin: Optional[str] = typer.Option(None, "--plugin", help="Only tasks of this plugin."),
    kind: Optional[str] = typer.Option(None, "--kind", help="Only tasks of this kind (e.g. pair_classification)."),
) -> None:
    """List every registered task with its qualified id, kind, labels and sources."""
    registry = load_registry(warn=False)
    loaded = any(p.status == "ok" and plugin in (p.name, p.distribution) for p in registry.plugins)
    # a failed plugin of that name (two distributions naming one plugin: the other one loaded) is said, and the loaded one listed
    failed = next((p for p in registry.failures if plugin in (p.name, p.distribution)), None) if plugin and not loaded else None
    if failed is not None:  # its tasks are missing, not absent: an empty listing would pass for "no tasks"
        report_plugin_failures(registry, tracebacks_only=True)
        raise PluginError(f"{failed.failure_line()}; fix it (MT_DEBUG=1 shows the traceback) or see 'mt plugins'")
    report_plugin_failures(registry)
    tasks = registry.find_tasks(plugin=plugin, kind=kind)
    if as_json:
        print_json([t.summary() for t in tasks])
        return
    table = Table(title=f"{len(tasks)} task" + ("" if len(tasks) == 1 else "s"))
    for column in ("id", "kind", "labels", "sources", "description"):
        table.add_column(column, overflow="fold")
    for t in tasks:
        labels = ", ".join(t.labels[:4]) + (f", ... (+{len(t.labels) - 4})" if len(t.labels) > 4 else "") if t.labels else "-"
        table.add_row(escape(t.id), t.kind.value, escape(labels), ", ".join(map(str, t.sources)), escape(str(t.description)))
    stdout.print(table)


def show_task(task_id: str = typer.Argument(..., metavar="ID", help="Task id, e.g. rsg:terra or terra.")) -> None:
    """Show one task: inputs, labels, sources, head, metrics, sample size."""
    from mtcore.sample_info import sample_sizes

    registry = load_registry(warn=False)
    report_plugin_failures(registry)
    task = registry.task(task_id)
    table = Table(title=escape(task.id), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")

    def row(field: str, value: str) -> None:  # values are plain text, never rich markup
        table.add_row(escape(field), escape(value))

    row("description", str(task.description or "-"))
    row("kind", task.kind.value)
    row("inputs", ", ".join(f"{k} <- {v}" for k, v in task.input_map.items()))
    labels = ", ".join(task.labels) or "-"
    if task.label_values is not None:
        labels += "  (stored as " + ", ".join(repr(v) for v in task.label_values) + ")"
    row("labels", labels)
    for name, source in task.sources.items():
        row(f"source {name}", source.description)
        files = source.files_read()  # "" unless mtcore's own loader reads a files mapping
        specs = source.options["files"].values() if files else ()
        patterns = [str(p) for spec in specs for p in (spec if isinstance(spec, (list, tuple)) else [spec])]
        if files and not all(p in source.description for p in patterns):  # not said already
            row("  files", files)
    options = ", ".join(f"{k}={v}" for k, v in task.head_options.items())
    row("head", task.head_name + (f" ({options})" if options else ""))
    row("metrics", ", ".join(task.all_metrics) + f"  (main: {task.main})")
    row("max_length", str(task.max_length))
    if isinstance(task.writer, str):  # its submission format: written when asked for, the default staying JSON Lines
        row("writer", f"{task.writer} (mt predict ... --format {task.writer} -o PATH: the folder or file it writes)")
    sizes = sample_sizes(task)
    if sizes:
        row("sample size", ", ".join(f"{split} {n}" for split, n in sizes.items()))
    for key, value in task.metadata.items():
        row(str(key), str(value))
    if task.evaluate_only:
        row("note", "evaluate-only (diagnostic): not trained on")
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
        table.add_row(row["kind"], escape(row["id"]), escape(str(row["description"])))
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("list-tasks")(list_tasks)
    app.command("show-task")(show_task)
    app.command("components")(components)
