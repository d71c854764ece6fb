"""``mt cache``: what mtcore's data cache holds, and removing old entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mtcore.errors import UsageError


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} kB"


def cache(
    clear: bool = typer.Option(False, "--clear", help="Remove entries (all, or those --older-than)."),
    older_than: Optional[float] = typer.Option(None, "--older-than", help="With --clear: only entries last written more than DAYS ago."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="The datasets cache (default: HF_DATASETS_CACHE)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List mtcore's cached data read from files (rows, their tokenized copies), or clear it.

    A hub dataset's cache, and mtcore's copies beside it, are left to datasets. Clearing while a run reads its data
    breaks that run: clear between runs."""
    from mtcore.data.cache_entries import cache_entries, default_cache_dir, remove_entry

    if older_than is not None and not clear:
        raise UsageError("--older-than chooses what --clear removes; add --clear")
    if older_than is not None and not (0 <= older_than < float("inf")):  # nan too: it would remove nothing, as a success
        raise UsageError(f"--older-than must be a number of days >= 0, got {older_than:g}")
    root = (cache_dir or default_cache_dir()).expanduser()
    if cache_dir is not None and root.name == "generator" and root.is_dir() and not (root / "generator").is_dir():
        root = root.parent  # the folder mt cache names (".../generator"), pasted back: its cache is the folder above
    if cache_dir is not None and not root.is_dir():  # a typo would list (or clear) nothing and say so as a success
        from mtcore.errors import did_you_mean_path

        what = "a file, not a folder" if root.exists() else f"no such folder{did_you_mean_path(root, folders=True)}"
        raise UsageError(f"--cache-dir {root}: {what}; give the datasets cache folder (HF_DATASETS_CACHE's, by default)")
    entries = cache_entries(root)
    if clear:
        gone = [e for e in entries if older_than is None or e.age_days() > older_than]
        for entry in gone:
            remove_entry(root, entry)
        freed = sum(e.bytes for e in gone)
        kept = len(entries) - len(gone)
        if as_json:
            typer.echo(json.dumps({"cache_dir": str(root), "removed": len(gone), "bytes": freed, "kept": kept}, indent=2))
        else:
            typer.echo(f"removed {len(gone)} cache entries ({_size(freed)}) from {root}; {kept} kept")
        return
    if as_json:
        typer.echo(json.dumps({"cache_dir": str(root), "entries": [
            {"key": e.key, "source": e.source, "rows": e.rows, "bytes": e.bytes, "age_days": round(e.age_days(), 2)} for e in entries]}, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from mtcore.cli.output import stdout

    stdout.print(escape(f"{len(entries)} cache entries, {_size(sum(e.bytes for e in entries))}, in {root / 'generator'}"))
    table = Table()
    for column, justify in (("data", "left"), ("rows", "right"), ("size", "right"), ("written", "right")):
        table.add_column(column, justify=justify)
    for entry in entries[:20]:
        age = entry.age_days()
        when = f"{age:.0f} days ago" if age >= 1 else f"{age * 24:.0f} h ago"
        table.add_row(escape(entry.source), "?" if entry.rows is None else str(entry.rows), _size(entry.bytes), when)
    stdout.print(table)
    if len(entries) > 20:
        stdout.print(f"... and {len(entries) - 20} smaller entries (--json lists all)")
    stdout.print("remove old entries with: mt cache --clear --older-than 30")


def register(app: typer.Typer) -> None:
    app.command("cache")(cache)
