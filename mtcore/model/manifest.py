"""The model manifest (``mtcore.json``) and the task info it records.

A saved model directory holds::

    mtcore.json                 this manifest: versions, encoder facts, tasks, file checksums
    encoder/                    the encoder (and tokenizer) in plain Hugging Face format
    heads/<file>.safetensors    one file of head weights per task (``rsg:terra`` -> ``rsg--terra``: :func:`head_file_name`)
    task_layers/<file>.safetensors   with ``task_layers``: each task's own copies of the encoder's top layers (same name)

This module imports nothing heavy: the inference code reads manifests and rebuilds tasks with
:func:`task_from_info` without loading torch.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mtcore.errors import ModelFileError

if TYPE_CHECKING:
    from mtcore.task import Task

MANIFEST_NAME = "mtcore.json"
ENCODER_DIR = "encoder"
HEADS_DIR = "heads"
#: Version of the directory layout and manifest schema this mtcore reads; bumped on incompatible changes.
#: 2 added ``task_layers/``: a model with task-specific top layers is written as version 2 (an older mtcore
#: would read its encoder without them and predict wrongly), any other as version 1.
FORMAT_VERSION = 2


def jsonable(value: Any) -> Any:
    """``value`` made JSON-ready: tuples become lists, enums their value, other objects their repr."""
    if isinstance(value, Enum):
        return jsonable(value.value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return repr(value)


def task_info(task: Task) -> dict[str, Any]:
    """Everything needed to use ``task`` for prediction, as JSON-ready data.

    ``task.summary()`` plus ``label_values``, ``label_aliases`` (as ``[stored, name]`` pairs, so
    non-string keys survive JSON), ``truncation``, ``stride`` (extractive QA predicts in the windows
    it trained with), ``id_field``, ``writer``, ``num_labels`` and
    the string ``preprocess`` references (callables cannot be saved; their names are listed under
    ``preprocess_not_saved``).
    """
    from mtcore.refs import describe

    info = jsonable(task.summary())
    info.update(
        {
            "label_values": jsonable(list(task.label_values)) if task.label_values is not None else None,
            "label_aliases": [[jsonable(k), jsonable(v)] for k, v in task.label_aliases.items()],
            "truncation": task.truncation,
            "stride": task.stride,
            "no_answer": task.no_answer,
            "null_threshold": task.null_threshold,
            "mask_probability": task.mask_probability,
            "mask_whole_words": task.mask_whole_words,
            "id_field": task.id_field,
            "writer": task.writer if isinstance(task.writer, str) else None,
            "num_labels": task.num_labels,
            "preprocess": [ref for ref in task.preprocess if isinstance(ref, str)],
            "default_metrics": task.metrics is None,  # the kind's, which mean mtcore's (Task.metric_owner)
        }
    )
    unsaved = [describe(ref) for ref in task.preprocess if not isinstance(ref, str)]
    if unsaved:
        info["preprocess_not_saved"] = unsaved
    return info


def _saved_steps(task_id: str, refs: Any) -> tuple[Any, ...]:
    """A saved task's preprocessing references: a model folder is data, so one naming a function of Python's own library
    (``os:environ.update``, ``this:s``) is refused rather than imported and run on every row."""
    from mtcore.refs import plugin_code

    for ref in refs:
        if isinstance(ref, str) and ":" in ref and not plugin_code(ref.split(":", 1)[0]):
            raise ModelFileError(f"task {task_id!r}: its saved preprocessing step {ref!r} names a function of Python's own library, "
                                 "which a model folder does not run (it may have been edited): wrap it in a function of your own "
                                 "module and train again, or predict with the Task, model.predict(task, rows)")
    return tuple(refs)


def _saved_metrics(info: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The saved metric names; None where they were the kind's defaults (``default_metrics``), which mean mtcore's
    metrics whatever namesakes are registered where the model is evaluated (:attr:`~mtcore.task.Task.metric_owner`);
    names a task chose itself stay its own plugin's first, as in training."""
    if info.get("metrics") is None or info.get("default_metrics") is True:
        return None
    return tuple(info["metrics"])


def task_from_info(info: Mapping[str, Any]) -> Task:
    """Rebuild a :class:`~mtcore.task.Task` (without data sources) from :func:`task_info` data."""
    from mtcore.task import Task

    task_id = str(info.get("id") or info.get("name") or "?")
    if not info.get("kind"):
        raise ModelFileError(f"task {task_id!r}: its saved info has no 'kind' (a custom head saved without a task), so it cannot be rebuilt as a Task")
    plugin, _, bare = task_id.rpartition(":")
    label_values = info.get("label_values")
    return Task(
        name=str(info.get("name") or bare),
        kind=info["kind"],
        description=str(info.get("description", "")),
        labels=tuple(info.get("labels") or ()),
        label_values=tuple(label_values) if label_values is not None else None,
        label_aliases={_hashable(k): v for k, v in info.get("label_aliases") or ()},
        inputs=dict(info.get("inputs") or {}),
        preprocess=_saved_steps(task_id, info.get("preprocess") or ()),
        head=info.get("head"),
        head_options=dict(info.get("head_options") or {}),
        metrics=_saved_metrics(info),
        main_metric=info.get("main_metric"),
        max_length=int(info.get("max_length") or 256),
        truncation=str(info.get("truncation", "longest_first")),
        **({"stride": int(info["stride"])} if info.get("stride") is not None else {}),  # older models: the default
        no_answer=bool(info.get("no_answer", False)),
        null_threshold=float(info.get("null_threshold") or 0.0),
        mask_probability=info.get("mask_probability"),
        mask_whole_words=bool(info.get("mask_whole_words", False)),
        id_field=info.get("id_field", "idx"),
        evaluate_only=bool(info.get("evaluate_only", False)),
        writer=info.get("writer"),
        plugin=str(info.get("plugin", plugin)),
        metadata=dict(info.get("metadata") or {}),
    )


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# ---- checksums ----------------------------------------------------------------------------
def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def file_records(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative posix path: {"sha256", "size"}}`` for every file under ``root`` except the manifest."""
    records = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST_NAME:
            continue
        records[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return records


def verify_files(root: Path, manifest: Mapping[str, Any]) -> None:
    """Check every file the manifest lists: present, full size, same sha256; and that each task's weight files are
    among them (a file read unlisted would be read unchecked). One-line errors."""
    files = manifest.get("files")
    if not isinstance(files, Mapping) or not files:
        raise ModelFileError(f"{root / MANIFEST_NAME}: lists no files (damaged manifest); save the model again")
    for task_id, info in (manifest.get("tasks") or {}).items():
        for key in ("head_file", "task_layers_file"):
            rel = info.get(key) if isinstance(info, Mapping) else None
            if rel is not None and str(safe_relative(root, rel)) not in files:
                raise ModelFileError(f"{root / MANIFEST_NAME}: task {task_id!r}'s {key} {rel!r} is not among its checked files "
                                     "(damaged or edited manifest); save the model again")
    for rel, record in files.items():
        path = root / safe_relative(root, rel)
        if not path.is_file():
            raise ModelFileError(f"{path}: missing (listed in {MANIFEST_NAME}); the model directory is incomplete, copy or save it again")
        size = path.stat().st_size
        expected_size = int(record.get("size", -1))
        if expected_size >= 0 and size < expected_size:
            raise ModelFileError(f"{path}: truncated ({size} of {expected_size} bytes); copy or save the model again")
        if expected_size >= 0 and size != expected_size:
            raise ModelFileError(f"{path}: size {size} bytes does not match the {expected_size} recorded in {MANIFEST_NAME}; the file was changed after saving")
        if sha256_file(path) != record.get("sha256"):
            raise ModelFileError(f"{path}: sha256 checksum does not match {MANIFEST_NAME} (the file was changed after saving); copy or save the model again")


def safe_relative(root: Path, rel: str) -> PurePosixPath:
    """``rel``, a file a manifest names, as a path inside ``root``; one that points outside is a ModelFileError."""
    path = PurePosixPath(str(rel))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ModelFileError(f"{root / MANIFEST_NAME}: file entry {rel!r} points outside the model directory; refusing to read it")
    return path


# ---- reading and writing ------------------------------------------------------------------
def write_manifest(root: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` as ``root/mtcore.json`` (inside the temporary save directory)."""
    text = json.dumps(jsonable(manifest), indent=2, ensure_ascii=False)
    (root / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")


def read_manifest(root: str | Path) -> dict[str, Any]:
    """Read and sanity-check ``root/mtcore.json``; raise :class:`ModelFileError` naming the problem."""
    root = Path(root)
    path = root / MANIFEST_NAME
    if not root.exists():
        raise ModelFileError(f"{root}: model directory does not exist")
    if not root.is_dir():
        raise ModelFileError(f"{root}: is a file, not a model directory saved by MultitaskModel.save_pretrained")
    if not path.is_file():
        raise ModelFileError(
            f"{path}: missing; {root} is not a model directory saved by MultitaskModel.save_pretrained "
            "(to start from a plain encoder, use MultitaskModel(encoder_dir, heads_by_task))"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not valid JSON (truncated or edited?): {exc}") from None
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{path}: expected a JSON object")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(f"{path}: has no format_version; it was not written by mtcore")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {version} is newer than this mtcore understands ({FORMAT_VERSION}); "
            f"upgrade mtcore (the model was saved by mtcore {manifest.get('mtcore_version', '?')})"
        )
    for key in ("encoder", "tasks", "files"):
        if not isinstance(manifest.get(key), dict):
            raise ModelFileError(f"{path}: '{key}' is missing or not an object (damaged manifest)")
    return manifest


def safe_stem(text: str) -> str:
    """``text`` as one file or folder name: letters, digits, ``-``, ``_`` and inner ``.`` only (``/``, ``\\``, ``..`` cannot
    reach another folder)."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip(".") or "task"


def head_file_name(task_id: str, taken: set[str]) -> str:
    """A safe, unique file name for a task's head weights: ``rsg:danetqa`` -> ``rsg--danetqa``."""
    stem = safe_stem(task_id.replace(":", "--"))
    name, n = stem, 1
    while name.lower() in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name.lower())
    return f"{HEADS_DIR}/{name}.safetensors"
