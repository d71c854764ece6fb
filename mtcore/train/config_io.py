"""Reading a training config: YAML file or dict, ``key=value`` overrides, one-line errors.

* :func:`load_config` turns a path, a mapping or a :class:`TrainConfig` (plus overrides) into a
  validated :class:`TrainConfig`; every problem is a :class:`mtcore.errors.ConfigError` whose
  message is one line naming the key, e.g.
  ``config key 'optimizer.lrr' is not allowed (did you mean 'optimizer.lr'?)``.
* :func:`apply_overrides` edits the raw mapping: ``optimizer.lr=1e-4`` (split on the first
  ``=``, the value read with ``yaml.safe_load``, then typed by the schema); list items by index
  (``tasks.0.max_length=64``) or, for ``tasks``, by task id (``tasks.rsg:terra.max_length=64``).
* :func:`dump_config` writes the resolved config back as YAML (what the run directory keeps).
"""

from __future__ import annotations

import copy
import difflib
import os
import tempfile
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mtcore.errors import ConfigError, did_you_mean
from mtcore.outputs import share_modes
from mtcore.train.config import TrainConfig


def _suggest(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """``" (did you mean 'optimizer.lr'?)"`` from bare candidate names, or ``""``."""
    candidates = list(candidates)
    close = difflib.get_close_matches(str(name), candidates, n=3, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[c] for c in difflib.get_close_matches(str(name).lower(), list(lowered), n=3, cutoff=0.6)]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(prefix + c) for c in close) + "?)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that sits at ``loc`` inside :class:`TrainConfig` (or None)."""
    model: Any = TrainConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _unwrap(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """The model class inside ``X | None`` or ``list[X]`` annotations (else the annotation)."""
    for arg in typing.get_args(annotation) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def _literal_choices(loc: tuple[Any, ...]) -> list[str]:
    while loc and isinstance(loc[-1], int):  # an item of a list of literals: the list's field
        loc = loc[:-1]
    if not loc:
        return []
    parent = _model_at(loc[:-1])
    if parent is None or loc[-1] not in parent.model_fields:
        return []
    annotation = parent.model_fields[loc[-1]].annotation

    def collect(tp: Any) -> list[str]:
        if typing.get_origin(tp) is typing.Literal:
            return [str(a) for a in typing.get_args(tp)]
        return [c for arg in typing.get_args(tp) for c in collect(arg)]

    return collect(annotation)


def _key(loc: Iterable[Any]) -> str:
    return ".".join(str(p) for p in loc)


def format_error(error: Mapping[str, Any]) -> str:
    """One line for one pydantic error dict, naming the dotted config key."""
    loc = tuple(p for p in error.get("loc", ()) if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
    kind = error.get("type", "")
    value = error.get("input")
    if loc and loc[-1] == "[key]":  # a mapping's key is wrong: name the mapping
        loc = loc[:-2]
        error = {**error, "msg": "a key: " + str(error.get("msg", "invalid value"))[:1].lower() + str(error.get("msg", ""))[1:]}
    key = _key(loc)
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        prefix = _key(loc[:-1]) + "." if len(loc) > 1 else ""
        hint = _suggest(str(loc[-1]), parent.model_fields if parent else [], prefix)
        if not hint and parent is not None:
            hint = "; allowed here: " + ", ".join(parent.model_fields)
        return f"config key {key!r} is not allowed{hint}"
    if kind == "missing":
        return f"config key {key!r} is required"
    if kind == "literal_error":
        choices = _literal_choices(loc)
        shown = ", ".join(repr(c) for c in choices) if choices else error.get("ctx", {}).get("expected", "")
        return f"config key {key!r}: {value!r} is not one of {shown}{_suggest(str(value), choices)}"
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    where = f"config key {key!r}: " if key else "config: "
    shown = "" if isinstance(value, (dict, list)) or value is None or kind.startswith("value_error") else f" (got {value!r})"
    if isinstance(value, bool) and kind.startswith("string"):
        shown += "; YAML reads yes/no/on/off/true/false as booleans: quote the word ('yes')"
    return f"{where}{message}{shown}"


def validation_error(exc: ValidationError) -> ConfigError:
    """A :class:`ConfigError` with the first problem of a pydantic ValidationError."""
    errors = exc.errors()
    line = format_error(errors[0])
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ConfigError(line)


# ---- overrides ---------------------------------------------------------------------------------
def _entry_id(entry: Any) -> str | None:
    """The task id (or inline definition's name) of one ``tasks`` list entry."""
    task_id = entry if isinstance(entry, str) else (entry or {}).get("id") if isinstance(entry, dict) else None
    if task_id is None and isinstance(entry, dict) and isinstance(entry.get("define"), dict):
        name = entry["define"].get("name")
        task_id = None if name is None else f"user:{name}"  # what the defined task's id will be
    return None if task_id is None else str(task_id)


def _task_index(tasks: list[Any], name: str) -> int | None:
    for i, entry in enumerate(tasks):
        task_id = _entry_id(entry)
        if task_id is not None and (task_id == name or task_id.split(":")[-1] == name):
            return i
    return None


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides to a copy of the raw config mapping."""
    data = copy.deepcopy(dict(raw))
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {override!r} must look like key=value (e.g. optimizer.lr=1e-4)")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {override!r}: value is not valid YAML ({' '.join(str(exc).split())})") from None
        parts = key.split(".")
        # A task id may contain no '.', but "tasks.rsg:terra.max_length" splits cleanly on '.'.
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                index = int(part) if part.lstrip("-").isdigit() else (_task_index(node, part) if parts[0] == "tasks" else None)
                if index is None or not -len(node) <= index < len(node):
                    ids = [i for i in (_entry_id(e) for e in node) if i] if parts[0] == "tasks" else []
                    hint = did_you_mean(part, ids + [i.split(":")[-1] for i in ids], n=1) if ids else ""
                    raise ConfigError(f"override {override!r}: no list item {part!r} at {where!r}{hint} (it has {len(node)} items"
                                      + (f": {', '.join(ids)})" if ids else ")"))
                if last:
                    node[index] = value
                    break
                if isinstance(node[index], str) and parts[0] == "tasks":
                    node[index] = {"id": node[index]}
                node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                    break
                if depth == 0 and part == "compile" and isinstance(node.get(part), bool):  # `compile: true` is short for
                    node[part] = {"enabled": node[part]}                                  # {enabled: true}: add keys to it
                if not isinstance(node.get(part), (dict, list)):
                    if part in node and node[part] is not None and not isinstance(node[part], str):
                        raise ConfigError(f"override {override!r}: {where!r} holds a value, not a section")
                    node[part] = {"arch": node[part]} if part == "tiny" and isinstance(node.get(part), str) else {}
                node = node[part]
            else:
                raise ConfigError(f"override {override!r}: {'.'.join(parts[:depth])!r} holds a value, not a section")
    return data


# ---- loading and saving ------------------------------------------------------------------------
class _NoDuplicateKeys(yaml.SafeLoader):
    """Safe YAML where a key given twice in one mapping is an error (plain YAML keeps the last silently)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden here
            continue
        try:
            key = loader.construct_object(key_node, deep=True)
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {first_line[key] + 1}); keep one", key_node.start_mark)
            first_line[key] = key_node.start_mark.line
        except TypeError:  # an unhashable key: YAML itself refuses it below
            continue
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_NoDuplicateKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file, or a one-line ConfigError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes().count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"config file {str(path)!r} line {line}: byte 0x{exc.object[exc.start:exc.start + 1].hex()} is not "
                          "UTF-8 text; save the config as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_NoDuplicateKeys)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {str(path)!r}{where}: invalid YAML ({' '.join(str(problem).split())})") from None
    if data is None:
        raise ConfigError(f"config file {str(path)!r} is empty; it needs at least 'encoder' and 'tasks'")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys (encoder, tasks, ...), not a {type(data).__name__}")
    return data


def anchor_to_file(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Relative paths written in a config file start at the file's folder (overrides, given on the
    command line, start at the current one): a task entry's ``data_dir``, an inline definition's
    ``files`` and a local ``encoder.path``. A ``data_dir`` or ``encoder.path`` found only from the
    current folder is left to it (configs written before this rule), and so is a hub id."""

    def from_file(value: Any, kind: str) -> Any:
        """``kind``: "files" (always from the file), "data_dir" or "encoder" (from the file when there)."""
        if not isinstance(value, str) or not value:
            return value
        path = Path(value).expanduser()
        if path.is_absolute():
            return value
        anchored = Path(os.path.normpath(folder / path))
        if kind == "files" or anchored.exists():
            return str(anchored)
        if path.exists() or kind == "encoder":  # the current folder's (older configs), or a hub id like org/name
            return value
        return str(anchored)  # found nowhere: the error names the place the file meant

    raw = copy.deepcopy(raw)
    for entry in raw.get("tasks") or []:
        if not isinstance(entry, dict):
            continue
        if "data_dir" in entry:
            entry["data_dir"] = from_file(entry["data_dir"], "data_dir")
        define = entry.get("define")
        if isinstance(define, dict) and entry.get("data_dir") is None and define.get("files") is not None:
            files = define["files"]
            if isinstance(files, dict):
                define["files"] = {split: [from_file(p, "files") for p in paths] if isinstance(paths, list) else from_file(paths, "files")
                                   for split, paths in files.items()}
            else:
                define["files"] = [from_file(p, "files") for p in files] if isinstance(files, list) else from_file(files, "files")
    encoder = raw.get("encoder")
    if isinstance(encoder, dict) and "path" in encoder:
        encoder["path"] = from_file(encoder["path"], "encoder")
    return raw


def load_config(source: str | Path | Mapping[str, Any] | TrainConfig, overrides: Iterable[str] = ()) -> TrainConfig:
    """A validated :class:`TrainConfig` from a YAML path, a mapping or a config, plus overrides."""
    if isinstance(source, TrainConfig):
        raw: dict[str, Any] = source.model_dump(mode="json")
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        raw = anchor_to_file(read_yaml(source), Path(source).expanduser().absolute().parent)
    raw = apply_overrides(raw, list(overrides))
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain JSON/YAML-ready data of a config (tuples become lists)."""
    return config.model_dump(mode="json")


def dump_config(config: TrainConfig, path: str | Path, header: str = "") -> None:
    """Write ``config`` as YAML to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    text = (header.rstrip("\n") + "\n" if header else "") + yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".yaml", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    share_modes(tmp)
    os.replace(tmp, path)


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Dotted keys whose values differ between two plain config mappings."""
    diffs: list[tuple[str, Any, Any]] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        where = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += config_differences(a, b, where + ".")
        elif a != b:
            diffs.append((where, a, b))
    return diffs
