"""Reading a training config: YAML file or dict, ``key=value`` overrides, one-line errors.

* :func:`load_config` turns a path, a mapping or a :class:`TrainConfig` (plus overrides) into a
  validated :class:`TrainConfig`; every problem is a :class:`mtcore.errors.ConfigError` whose
  message is one line naming the key (:mod:`mtcore.train.config_errors`, re-exported here), e.g.
  ``config key 'optimizer.lrr' is not allowed (did you mean 'optimizer.lr'?)``.
* :func:`~mtcore.train.overrides.apply_overrides` (re-exported here) edits the raw mapping:
  ``optimizer.lr=1e-4`` (split on the first ``=``, the value read as YAML, then typed by the
  schema); list items by index (``tasks.0.max_length=64``) or, for ``tasks``, by task id
  (``tasks.rsg:terra.max_length=64``).
* :func:`dump_config` writes the resolved config back as YAML (what the run directory keeps).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mtcore.errors import ConfigError, did_you_mean_path
from mtcore.outputs import write_named
from mtcore.train.config import TrainConfig
from mtcore.train.config_errors import format_error, validation_error
from mtcore.train.overrides import apply_overrides

__all__ = ["RESUMABLE_CHANGES", "apply_overrides", "check_same_config", "config_differences", "config_to_dict", "dump_config",
           "format_error", "load_config", "read_yaml", "validation_error"]


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
        raise ConfigError(f"config file {str(path)!r} does not exist{did_you_mean_path(path, folders=False)}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes().count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"config file {str(path)!r} line {line}: byte 0x{exc.object[exc.start:exc.start + 1].hex()} is not "
                          "UTF-8 text; save the config as UTF-8") from None
    except IsADirectoryError:
        own = path / "config.yaml"
        hint = f"; a run's own config is {str(own)!r} (mt train {own} --resume continues that run)" if own.is_file() else ""
        raise ConfigError(f"config file {str(path)!r} is a folder, not a YAML file{hint}") from None
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


def _item(container: Any, key: Any) -> Any:
    """``container[key]`` for a mapping key or list index it has, else None."""
    if isinstance(container, dict):
        return container.get(key)
    return container[key] if isinstance(container, list) and isinstance(key, int) and key < len(container) else None


def _task_entries(raw: Any) -> list[Any]:
    tasks = raw.get("tasks") if isinstance(raw, dict) else None
    return [tasks] if isinstance(tasks, dict) else tasks if isinstance(tasks, list) else []  # `tasks: {...}`: one task


def anchor_to_file(raw: dict[str, Any], folder: Path, written: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Relative paths written in a config file start at the file's folder (overrides, given on the
    command line, start at the current one): a task entry's ``data_dir``, an inline definition's
    ``files`` and a local ``encoder.path``. A ``data_dir`` or ``encoder.path`` found only from the
    current folder is left to it (configs written before this rule), and so is a hub id. ``distill``'s teachers
    are found as a ``data_dir`` is.

    ``written``: the mapping as the file holds it, when ``raw`` has overrides applied: a path that
    differs from the file's was set by an override and is left as given. An inline task's ``files``
    are anchored only when its ``data_dir`` (which they start at) is unset after the overrides."""

    def from_file(value: Any, kind: str, original: Any) -> Any:
        """``kind``: "files" (always from the file), "data_dir" or "encoder" (from the file when there)."""
        if not isinstance(value, str) or not value or (written is not None and value != original):
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

    def files_from_file(files: Any, original: Any) -> Any:
        if isinstance(files, dict):
            return {split: files_from_file(paths, _item(original, split)) for split, paths in files.items()}
        if isinstance(files, list):
            return [from_file(p, "files", _item(original, i)) for i, p in enumerate(files)]
        return from_file(files, "files", original)

    raw = copy.deepcopy(raw)
    file_entries = _task_entries(written if written is not None else raw)
    for i, entry in enumerate(_task_entries(raw)):
        if not isinstance(entry, dict):
            continue
        original = _item(file_entries, i) if isinstance(_item(file_entries, i), dict) else {}
        if "data_dir" in entry:
            entry["data_dir"] = from_file(entry["data_dir"], "data_dir", original.get("data_dir"))
        define = entry.get("define")
        if isinstance(define, dict) and entry.get("data_dir") is None and define.get("files") is not None:
            define["files"] = files_from_file(define["files"], _item(_item(original, "define"), "files"))
    encoder = raw.get("encoder")
    if isinstance(encoder, dict) and "path" in encoder:
        encoder["path"] = from_file(encoder["path"], "encoder", _item((written if written is not None else raw).get("encoder"), "path"))
    distill, written_distill = raw.get("distill"), _item(written if written is not None else raw, "distill")
    if isinstance(distill, dict):  # its teachers: runs or models, found as a data_dir is
        if "teacher" in distill:
            distill["teacher"] = from_file(distill["teacher"], "data_dir", _item(written_distill, "teacher"))
        if isinstance(distill.get("teachers"), dict):
            distill["teachers"] = {task: from_file(path, "data_dir", _item(_item(written_distill, "teachers"), task))
                                   for task, path in distill["teachers"].items()}
    return raw


def anchor_paths(config: TrainConfig, base_dir: str | Path | None) -> TrainConfig:
    """``config`` with the relative paths of its task entries made absolute, so the run's saved
    config works from any folder (``mt evaluate RUN``, ``--resume``).

    Paths written in a config file were already anchored at its folder when it was read
    (:func:`mtcore.train.config_io.anchor_to_file`); what is still relative came from overrides or
    a mapping: an entry's ``data_dir`` (and ``distill``'s teachers) start at the current directory, the ``files`` of an
    inline definition at its ``data_dir`` when it has one (left as they are), else at ``base_dir``.
    """
    base = Path(base_dir if base_dir is not None else Path.cwd()).expanduser().absolute()
    entries = []
    for entry in config.tasks:
        changes: dict[str, Any] = {}
        if entry.data_dir is not None:
            changes["data_dir"] = str(Path(entry.data_dir).expanduser().absolute())
        elif entry.define is not None and entry.define.get("files") is not None:
            changes["define"] = {**entry.define, "files": _absolute_files(entry.define["files"], base)}
        entries.append(entry.model_copy(update=changes) if changes else entry)
    update: dict[str, Any] = {"tasks": entries}
    path = config.encoder.path
    if path is not None and Path(path).expanduser().is_dir():  # a local encoder, not a hub id
        update["encoder"] = config.encoder.model_copy(update={"path": str(Path(path).expanduser().absolute())})
    distill = config.distill
    if distill is not None:  # teachers: runs or models on this machine

        def absolute(teacher: str | None) -> str | None:
            return str(Path(teacher).expanduser().absolute()) if teacher else teacher

        teachers = {task: absolute(teacher) for task, teacher in distill.teachers.items()}
        update["distill"] = distill.model_copy(update={"teacher": absolute(distill.teacher), "teachers": teachers})
    return config.model_copy(update=update)


def _absolute_files(files: Any, base: Path) -> Any:
    def one(path: Any) -> Any:
        return str(base / Path(path).expanduser()) if isinstance(path, str) else path

    if isinstance(files, str):
        return one(files)
    if isinstance(files, dict):
        return {split: [one(p) for p in paths] if isinstance(paths, list) else one(paths) for split, paths in files.items()}
    return files


def load_config(source: str | Path | Mapping[str, Any] | TrainConfig, overrides: Iterable[str] = ()) -> TrainConfig:
    """A validated :class:`TrainConfig` from a YAML path, a mapping or a config, plus overrides
    (applied before the file's relative paths are anchored at its folder, so a ``data_dir`` given
    as an override is the folder an inline task's files start at)."""
    if isinstance(source, TrainConfig):
        raw: dict[str, Any] = apply_overrides(source.model_dump(mode="json"), list(overrides))
    elif isinstance(source, Mapping):
        raw = apply_overrides(source, list(overrides))
    else:
        written = read_yaml(source)
        raw = anchor_to_file(apply_overrides(written, list(overrides)), Path(source).expanduser().absolute().parent, written)
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
    write_named(path, text)


#: Config keys a resumed run may change (``mt train ... --resume``): none of them moves the optimizer steps, the
#: order of the batches or an RNG stream. Evaluation runs in eval mode under no_grad on its own data, in a fixed
#: order, drawing no random number (dropout is off; the samplers draw from their own seeded generators); checkpoints
#: only read the RNG states. So when, how often and in what batches the run evaluates and checkpoints, and what it
#: does at the end, leave the trained weights bit-identical (tests/train/test_resume_changes.py). Early stopping
#: ends the same trajectory sooner or later (the schedule depends on the total steps only). Task entries that are
#: only evaluated (``evaluate_with``, a diagnostic set) may be added or removed too (:func:`check_same_config`).
#: ``deterministic`` is not one: it draws the same batches and random numbers, but other kernels sum in another order
#: (other bits), and the rewritten config.yaml would call a run deterministic whose first part was not.
RESUMABLE_CHANGES = ("logging.", "output_dir", "checkpoint.keep_last", "checkpoint.keep_best", "checkpoint.every",
                     "checkpoint.at_end", "checkpoint.best_to_model", "evaluation.every", "evaluation.at_end",
                     "evaluation.early_stopping_patience", "batching.eval_batch_size", "debug.")


def check_same_config(config: TrainConfig, run: Any) -> None:
    """Refuse to continue ``run`` (a :class:`~mtcore.train.run_dir.RunDir`) with a config that
    changed beyond :data:`RESUMABLE_CHANGES`, or whose saved ``config.yaml`` no longer validates."""
    try:
        saved = config_to_dict(TrainConfig.model_validate(read_yaml(run.config)))
    except ValidationError as exc:
        raise ConfigError(f"cannot resume {str(run.root)!r}: its saved {str(run.config)!r} is not a valid config "
                          f"({validation_error(exc)}); restore that file, or start a new run") from None
    for key, old, new in config_differences(_trained_entries(saved), _trained_entries(config_to_dict(config))):
        if not _resumable(key):
            raise ConfigError(f"cannot resume {str(run.root)!r}: config key {key!r} changed ({_brief(old)} -> {_brief(new)}); "
                              "resume with the run's config.yaml or start a new run")


def _trained_entries(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a plain config) without its evaluate-only task entries, which have no head, batches or loss."""
    from mtcore.errors import MtError
    from mtcore.plugins import load_registry

    def scored_only(entry: Any) -> bool:
        if not isinstance(entry, Mapping) or entry.get("evaluate_with"):
            return isinstance(entry, Mapping)
        try:
            return entry.get("id") is not None and bool(load_registry(warn=False).task(str(entry["id"])).evaluate_only)
        except MtError:
            return False

    return {**data, "tasks": [entry for entry in data.get("tasks") or [] if not scored_only(entry)]}


def _resumable(key: str) -> bool:
    """``key`` is in :data:`RESUMABLE_CHANGES`: one named there, or inside a section named with a trailing dot."""
    return any(key == name or (name.endswith(".") and key.startswith(name)) for name in RESUMABLE_CHANGES)


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Dotted keys whose values differ between two plain config mappings; lists of the same length are
    compared item by item (``tasks.0.max_length``), as the overrides name them."""
    diffs: list[tuple[str, Any, Any]] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        where = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += config_differences(a, b, where + ".")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a != b:
            diffs += config_differences(dict(enumerate(a)), dict(enumerate(b)), where + ".")
        elif a != b:
            diffs.append((where, a, b))
    return diffs


def _brief(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters (a whole task's settings would fill the screen)."""
    text = repr(value)
    if isinstance(value, list) and len(text) > limit:
        return f"a list of {len(value)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
