"""``key=value`` overrides of a raw config mapping, typed like the schema.

* Split on the first ``=``; the value is read as YAML (``1e-4``, ``[a, b]``, ``{k: v}``, ``null``)
  and then typed by :class:`~mtcore.train.config.TrainConfig`. A key whose schema type is text
  (``logging.project``, ``encoder.revision``, ``evaluation.split``, an item of a task's
  ``labels``) keeps the text as written: YAML alone would read ``1.10`` as 1.1, ``0755`` as 493,
  ``2024-01-01`` as a date and ``off`` as false.
* List items by index (``tasks.0.max_length=64``, negative from the end) or, for ``tasks``, by task
  id or name (``tasks.rsg:terra.max_length=64``, ``tasks.terra...``). A list the config does not
  hold starts from its schema default (``optimizer.betas.1=0.98``).
* A key below a shorthand expands it first: ``tasks: rsg:terra`` or ``tasks: {id: ...}`` (a list of
  one task), a bare task id (``{id: ...}``), ``encoder.tiny: bert`` (``{arch: bert}``) and
  ``compile: true`` (``{enabled: true}``).

Every mistake is a one-line :class:`~mtcore.errors.ConfigError` naming the override.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import BaseModel

from mtcore.errors import ConfigError, did_you_mean
from mtcore.train.config import TrainConfig

#: The default :func:`schema_at` gives for a key that has none (a required one, a list item).
NO_DEFAULT: Any = object()


def _strip_optional(annotation: Any) -> Any:
    """``X`` for ``X | None`` and ``Annotated[X, ...]`` (else the annotation)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip_optional(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    return annotation


def schema_at(parts: Iterable[Any]) -> tuple[Any, Any]:
    """The schema annotation at a dotted key of :class:`TrainConfig` (``None`` where the schema does
    not say, e.g. below ``encoder.options``) and the field's default (``NO_DEFAULT`` if none).
    A list or tuple takes any part as an item (an index, or a task id for ``tasks``)."""
    annotation: Any = TrainConfig
    default: Any = NO_DEFAULT
    for part in parts:
        current = _strip_optional(annotation)
        origin, args = typing.get_origin(current), typing.get_args(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None, NO_DEFAULT
            annotation, default = field.annotation, (NO_DEFAULT if field.is_required() else field.get_default(call_default_factory=True))
        elif origin in (list, tuple) and args:
            index = int(part) if str(part).lstrip("-").isdigit() else 0
            fixed = origin is tuple and args[-1] is not Ellipsis and -len(args) <= index < len(args)
            annotation, default = (args[index] if fixed else args[0]), NO_DEFAULT
        elif origin is dict and len(args) == 2:
            annotation, default = args[1], NO_DEFAULT
        else:
            return None, NO_DEFAULT
    return annotation, default


def model_at(parts: Iterable[Any]) -> type[BaseModel] | None:
    """The config section class at a dotted key (a list's item class for ``tasks``), or None."""
    annotation = _strip_optional(schema_at(parts)[0])
    if typing.get_origin(annotation) is list:
        annotation = _strip_optional(typing.get_args(annotation)[0])
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _kind(annotation: Any) -> str:
    """``text`` (str, or a choice of words), ``list``, ``value`` (another scalar) or ``section``."""
    annotation = _strip_optional(annotation)
    origin = typing.get_origin(annotation)
    if annotation is str or (origin is typing.Literal and all(isinstance(a, str) for a in typing.get_args(annotation))):
        return "text"
    if origin in (list, tuple):
        return "list"
    if annotation in (int, float, bool) or origin in (typing.Literal, typing.Union, types.UnionType):
        return "value"
    return "section"  # a section, a mapping, or a place the schema leaves open (Any)


# ---- task entries --------------------------------------------------------------------------------
def entry_id(entry: Any) -> str | None:
    """The task id (or inline definition's ``user:<name>``) of one ``tasks`` list entry."""
    task_id = entry if isinstance(entry, str) else (entry or {}).get("id") if isinstance(entry, dict) else None
    if task_id is None and isinstance(entry, dict) and isinstance(entry.get("define"), dict):
        name = entry["define"].get("name")
        task_id = None if name is None else f"user:{name}"  # what the defined task's id will be
    return None if task_id is None else str(task_id)


def _task_index(tasks: list[Any], name: str, override: str) -> int | None:
    ids = [entry_id(entry) for entry in tasks]
    exact = [i for i, task_id in enumerate(ids) if task_id == name]
    short = [i for i, task_id in enumerate(ids) if task_id is not None and task_id.split(":")[-1] == name]
    hits = exact or short
    if len(hits) > 1:
        raise ConfigError(f"override {override!r}: {name!r} names more than one task of the config "
                          f"({', '.join(str(ids[i]) for i in hits)}); use the full id or the index (tasks.N)")
    return hits[0] if hits else None


def key_path(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """An override's dotted ``key`` with its task item named by index, as it lands in ``raw``'s ``tasks`` list
    (``tasks.rsg:terra.max_length``, ``tasks.terra.max_length`` and ``tasks.-2.max_length`` are ``tasks.0.max_length``
    in a config of two tasks), so that two spellings of one key compare equal; other keys as written."""
    parts = [part.strip() for part in str(key).strip().split(".")]
    if len(parts) >= 2 and parts[0] == "tasks":
        tasks = _expand(raw.get("tasks"), ["tasks"])
        if isinstance(tasks, list):
            index: int | None
            try:
                index = int(parts[1]) if parts[1].lstrip("-").isdigit() else _task_index(tasks, parts[1], key)
            except ConfigError:  # a name of several tasks: applying the override says so
                index = None
            if index is not None and -len(tasks) <= index < len(tasks):
                parts[1] = str(index % len(tasks))
    return tuple(parts)


def keys_overlap(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    """Whether two :func:`key_path` keys set the same value: equal, or one a section holding the other
    (``optimizer`` and ``optimizer.lr``)."""
    shorter = min(len(first), len(second))
    return first[:shorter] == second[:shorter]


# ---- applying ------------------------------------------------------------------------------------
def _parse(override: str) -> tuple[list[str], Any]:
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {override!r} must look like key=value (e.g. optimizer.lr=1e-4)")
    parts = key.split(".")
    if "" in parts:
        raise ConfigError(f"override {override!r}: the key {key!r} has an empty part (two dots in a row, or a dot at an end)")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at character {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"override {override!r}: the value is not valid YAML ({' '.join(str(problem).split())}{where}); "
                          "give a YAML value (1e-4, [a, b], {k: v}) or text in quotes (key='\"a: b\"')") from None
    glued = _glued_colon(value)
    if glued is not None:  # {r:16}: YAML reads one key 'r:16' without a value
        name, _, rest = glued.rpartition(":")  # a task id has a colon of its own: {rsg:terra:2} is rsg:terra: 2
        raise ConfigError(f"override {override!r}: YAML reads {glued!r} as one key without a value; put a space after the colon "
                          f"({name}: {rest})")
    if value is not None and not isinstance(value, (str, list, dict)) and _kind(schema_at(parts)[0]) == "text":
        value = text.strip()  # a text key: the words as written, not YAML's number, date or boolean
    return parts, value


def _glued_colon(value: Any) -> str | None:
    """A mapping key like ``r:16`` with no value (YAML's reading of ``{r:16}``), anywhere in ``value``; else None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None and isinstance(key, str) and ":" in key.strip(":") and not key.startswith(("http:", "https:")):
                return key
            found = _glued_colon(item)
            if found is not None:
                return found
    if isinstance(value, list):
        return next((found for item in value if (found := _glued_colon(item)) is not None), None)
    return None


def _expand(value: Any, path: list[str]) -> Any:
    """A shorthand at ``path`` written out, so that a key below it can be set."""
    if path == ["tasks"] and isinstance(value, (str, dict)):
        return [value]
    if len(path) == 2 and path[0] == "tasks" and isinstance(value, str):
        return {"id": value}
    if path == ["encoder", "tiny"] and isinstance(value, str):
        return {"arch": value}
    if path == ["compile"] and isinstance(value, bool):
        return {"enabled": value}
    return value


def _container(current: Any, path: list[str], below: str, override: str) -> Any:
    """The mapping or list at ``path`` to descend into (made from the schema where the config has none)."""
    where = ".".join(path)
    current = _expand(current, path)
    if isinstance(current, (dict, list)):
        return current
    annotation, default = schema_at(path)
    kind = _kind(annotation)
    if current is not None or kind in ("text", "value"):
        raise ConfigError(f"override {override!r}: {where!r} is a value, not a section; set it as {where}=VALUE")
    if kind == "list":
        if isinstance(default, (list, tuple)):
            return list(default)
        raise ConfigError(f"override {override!r}: {where!r} is not set, so it has no item {below!r}; "
                          f"give the whole list ({where}=[...])")
    return {}


def _index(items: list[Any], part: str, path: list[str], override: str) -> int:
    tasks = len(path) == 2 and path[0] == "tasks"
    index = int(part) if part.lstrip("-").isdigit() else _task_index(items, part, override) if tasks else None
    if index is not None and -len(items) <= index < len(items):
        return index
    where = ".".join(path)
    ids = [i for i in (entry_id(e) for e in items) if i] if tasks else []
    hint = did_you_mean(part, ids + [i.split(":")[-1] for i in ids], n=1) if ids and not part.lstrip("-").isdigit() else ""
    fix = "; use one of them or its index, or add the task to 'tasks' first" if tasks else ""
    raise ConfigError(f"override {override!r}: no list item {part!r} at {where!r}{hint} (it has {len(items)} items"
                      + (f": {', '.join(ids)})" if ids else ")") + fix)


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides to a copy of the raw config mapping."""
    data = copy.deepcopy(dict(raw))
    for override in overrides:
        parts, value = _parse(override)
        node: Any = data
        for depth, part in enumerate(parts):
            path, last = parts[: depth + 1], depth == len(parts) - 1
            if isinstance(node, list):
                slot: Any = _index(node, part, path, override)
            else:
                slot = part
            if last:
                node[slot] = value
                break
            below = parts[depth + 1]
            node[slot] = _container(node[slot] if isinstance(node, list) else node.get(slot), path, below, override)
            node = node[slot]
    return data
