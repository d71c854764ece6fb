"""``mt compare``'s ``differs`` column: the config keys in which each run differs from the first (its ``config.yaml``),
another task list as ``+added -removed`` task ids and the settings a kept task changed, and the versions of the software
it trained with that differ (its ``start`` event)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List


#: Config keys ``differs`` leaves out: where a run was written and how it logged say nothing of what it trained.
UNCOMPARED_KEYS = ("output_dir", "logging")


def _run_config(path: Path) -> dict[str, Any] | None:
    """The run's saved config (a --seeds folder: its first seed's), as a plain mapping; None when there is none."""
    import yaml

    places = [path / "config.yaml"] if (path / "summary.json").is_file() else [run / "config.yaml" for run in _seed_runs(path)]
    for place in places[:1]:
        try:
            config = yaml.safe_load(place.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        return config if isinstance(config, dict) else None
    return None


def _run_versions(path: Path) -> dict[str, Any] | None:
    """The versions the run started with (its ``metrics.jsonl``'s first ``start`` event; a --seeds folder: its first
    seed's); None when it recorded none (runs from before they were recorded)."""
    places = [path / "metrics.jsonl"] if (path / "summary.json").is_file() else [run / "metrics.jsonl" for run in _seed_runs(path)]
    for place in places[:1]:
        try:
            with place.open(encoding="utf-8") as handle:
                for line in handle:
                    event = json.loads(line)
                    if isinstance(event, dict) and event.get("event") == "start":
                        versions = event.get("versions")
                        return versions if isinstance(versions, dict) else None
        except (OSError, UnicodeDecodeError, ValueError):
            return None
    return None


def add_config_differences(rows: list[dict[str, Any]], runs: List[Path]) -> None:
    """``row["differs"]``: the config keys whose values differ from the first run's, with this run's values
    (``{}`` for the first run itself; None when a run's config.yaml is missing or unreadable), then the versions it
    trained with that differ (``versions.transformers``, ``versions.plugins.mt-nli``; runs that recorded them)."""
    from mtcore.train.config_io import config_differences

    configs = [_run_config(path) for path in runs]
    versions = [_run_versions(path) for path in runs]
    reference = configs[0]
    for index, (row, config) in enumerate(zip(rows, configs)):
        if index == 0 or reference is None or config is None:
            row["differs"] = {} if index == 0 and reference is not None else None
            continue
        seeds = rows[0]["kind"] != "run" or row["kind"] != "run"  # a --seeds folder's seed is one of many
        row["differs"] = {key: new for key, _old, new in config_differences(reference, config)
                          if key.split(".", 1)[0] not in UNCOMPARED_KEYS and not (seeds and key == "seed")}
        if "tasks" in row["differs"]:  # other task lists: the table says which tasks came and went, not their JSON
            row["tasks_changed"] = _tasks_changed(_task_entries(reference.get("tasks")), _task_entries(config.get("tasks")))
        if versions[0] is not None and versions[index] is not None:
            row["differs"].update({f"versions.{key}": new for key, _old, new in config_differences(versions[0], versions[index])})


def _tasks_changed(theirs: dict[str, dict[str, Any]], mine: dict[str, dict[str, Any]]) -> str:
    """``+added -removed`` task ids, then the settings a task both runs train changed (``rsg:terra.max_length=64``)."""
    from mtcore.train.config_io import config_differences

    changed = [*(f"+{t}" for t in mine if t not in theirs), *(f"-{t}" for t in theirs if t not in mine)]
    for task in (t for t in mine if t in theirs):
        changed += [f"{task}.{key}={_brief(new)}" for key, _old, new in config_differences(theirs[task], mine[task])]
    return " ".join(changed)


def _task_entries(entries: Any) -> dict[str, dict[str, Any]]:
    """A saved config's task entries by id (``define:`` tasks: ``user:<name>``)."""
    by_id: dict[str, dict[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        entry = entry if isinstance(entry, dict) else {"id": entry}
        define = entry.get("define") if isinstance(entry.get("define"), dict) else {}
        by_id.setdefault(str(entry.get("id") or (f"user:{define['name']}" if define.get("name") else "?")), entry)
    return by_id


#: At most this many ``key=value`` items in a ``differs`` cell (``--json`` has them all), each value cut to VALUE_WIDTH.
DIFFERS_SHOWN, VALUE_WIDTH = 4, 32


def differs_cell(differs: dict[str, Any] | None, index: int, tasks_changed: str | None = None) -> str:
    if differs is None:
        return "? (no config.yaml)"
    if index == 0:
        return "(reference)"
    if not differs:
        return "nothing"
    items = [f"tasks {tasks_changed or '(their settings)'}" if key == "tasks" else f"{key}={_brief(value)}"
             for key, value in list(differs.items())[:DIFFERS_SHOWN]]
    more = len(differs) - DIFFERS_SHOWN
    return ", ".join(items) + (f", +{more} more" if more > 0 else "")


def _brief(value: Any) -> str:
    if value is None or isinstance(value, (bool, dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        text = str(value)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def _seed_runs(path: Path) -> list[Path]:
    """A --seeds folder's runs that exist, those its seeds.json lists first (not a stray seed-* folder of another command)."""
    from mtcore.train.seeds import seed_runs

    return [run for run in seed_runs(path) if run.is_dir()]
