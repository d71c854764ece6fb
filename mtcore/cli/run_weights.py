"""The ``evaluation.weights`` a finished run was scored with, read from its ``config.yaml`` (``mt compare`` does not rank
runs whose aggregates are different means)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def evaluation_weights(path: Path, tasks: list[str]) -> dict[str, Any]:
    """``evaluation.weights`` as the run's config.yaml (a --seeds folder: its first seed's) gives them, keyed by the
    run's task ids (a bare name is its task's), a task's default left out (1 for a trained task, 0 for one only
    evaluated: ``evaluate_with``, a diagnostic set, and for an auxiliary ``masked_lm`` task beside others); {} when unknown."""
    raw = _written_config(path)
    evaluation = raw.get("evaluation") if isinstance(raw.get("evaluation"), dict) else {}
    given = evaluation.get("weights") or {}
    entries = raw.get("tasks") if isinstance(raw.get("tasks"), list) else []
    known = [*tasks, *(t for t in map(_entry_id, entries) if t and t not in tasks)]
    only_scored = _evaluated_only(raw, known)
    resolved = {}
    for name, value in given.items():
        task = next((t for t in known if str(name) in (t, t.split(":", 1)[-1])), str(name))
        if value != (0 if task in only_scored else 1):
            resolved[task] = value
    return resolved


def _evaluated_only(raw: dict[str, Any], tasks: list[str]) -> set[str]:
    """The run's tasks weighing 0 by default: entries with ``evaluate_with``, registered diagnostic sets, and masked_lm tasks
    when the run has tasks of other kinds."""
    from mtcore.predict.tasks import registered_task

    entries = raw.get("tasks") if isinstance(raw.get("tasks"), list) else []
    named = {_entry_id(e) for e in entries if isinstance(e, dict) and e.get("evaluate_with") and _entry_id(e)}
    found = {t for t in tasks if t in named or t.split(":", 1)[-1] in named}
    auxiliary = {_entry_id(e) for e in entries if isinstance(e, dict) and isinstance(e.get("define"), dict)
                 and e["define"].get("kind") == "masked_lm"}
    for task_id in tasks:
        task = registered_task(task_id) if ":" in task_id else None
        if task is not None and task.evaluate_only:
            found.add(task_id)
        if task_id in auxiliary or task is not None and str(task.kind) == "masked_lm":
            auxiliary.add(task_id)
    auxiliary &= set(tasks)
    if auxiliary and set(tasks) - auxiliary:  # an auxiliary task weighs 0 beside tasks of other kinds (eval_tasks.aggregate_weights)
        found |= auxiliary
    return found


def _entry_id(entry: Any) -> str | None:
    """A task entry's id: ``id``, or ``user:<name>`` for one defined in the config."""
    if not isinstance(entry, dict):
        return None
    define = entry.get("define") if isinstance(entry.get("define"), dict) else {}
    return str(entry["id"]) if entry.get("id") else f"user:{define['name']}" if define.get("name") else None


def _written_config(path: Path) -> dict[str, Any]:
    import yaml

    for config in [path / "config.yaml", *sorted(path.glob("seed-*/config.yaml"))]:
        try:
            raw = yaml.safe_load(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        return raw if isinstance(raw, dict) else {}
    return {}
