"""Tasks defined as data (YAML or dicts): inline in a training config, or shipped in a plugin.

A definition is a :meth:`mtcore.task.Task.from_dict` mapping plus a shorthand for files::

    name: reviews
    kind: text_classification
    labels: [negative, positive]
    inputs: {text: review}           # canonical column <- field in the files
    files: {train: data/train.jsonl, validation: data/val.jsonl}
    format: jsonl                    # optional: jsonl, json, csv, tsv, parquet (default auto: from the extension)
    reader: {encoding: utf-8-sig}    # optional reader options (sep, header, names, quoting, ...);
                                     # a split's own under its name: {train: {sep: ";"}} (a CSV beside JSON Lines)

In a training config (``tasks: [{define: {...}}]``; the engine calls :func:`task_from_definition`
with ``base_dir`` = the config's folder) the files become two sources: ``local``, relative to the
task entry's ``data_dir`` (used when the entry has one), and ``sample``, relative to ``base_dir``
(used otherwise: the paths in the config just work). In a plugin (:func:`tasks_from_package`), the files are package data and become the
task's ``sample`` source, so the plugin needs no Python beyond one hook::

    @hookimpl
    def mt_register_tasks(register):
        register_yaml_tasks(register, "my_package", "tasks.yaml")

Explicit ``sources`` (as in ``Task.from_dict``) are kept as they are. Nothing heavy is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from mtcore.data.formats import AUTO, FORMATS as READ_FORMATS
from mtcore.errors import ConfigError, did_you_mean
from mtcore.task import SPLITS, Source, Task

SHORTHAND_KEYS = ("files", "format", "reader")
FORMATS = (AUTO, *READ_FORMATS)
DEFINED_LOADER = "mtcore.yaml_tasks:load_defined_files"
GENERIC_LOCAL_LOADER = "mtcore.data.sources:load_files"


def _split_files(name: str, files: Any) -> dict[str, list[str]]:
    if isinstance(files, str):
        files = {"train": files}
    if not isinstance(files, Mapping) or not files:
        raise ConfigError(f"task {name!r}: 'files' must map split names to paths, e.g. {{train: train.jsonl, validation: val.jsonl}}")
    out = {}
    for split, paths in files.items():
        if str(split) not in SPLITS:
            raise ConfigError(f"task {name!r}: files.{split} is not a split{_split_hint(split)}; the splits are {', '.join(SPLITS)}")
        items = [paths] if isinstance(paths, str) else list(paths or [])
        if not items or not all(isinstance(p, str) and p for p in items):
            raise ConfigError(f"task {name!r}: files.{split} must be a path or a list of paths, got {paths!r}")
        out[str(split)] = items
    return out


def _split_hint(key: Any) -> str:
    usual = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation", "training": "train"}
    return f" (did you mean {usual[str(key).lower()]!r}?)" if str(key).lower() in usual else did_you_mean(str(key), SPLITS, n=1)


def _reader_of(name: str, reader: Any, files: Mapping[str, Any]) -> dict[str, Any]:
    """The ``reader`` shorthand: reader options for every file, and under a split's name (``test: {encoding:
    cp1251}``) that split's files' own, which win (:func:`mtcore.data.sources.split_options`)."""
    from mtcore.data.readers import reader_option_names
    from mtcore.source import _check_split_options

    if reader is None:
        return {}
    example = "{sep: ';'}, or a split's own: {train: {sep: ';'}}"
    if not isinstance(reader, Mapping):
        raise ConfigError(f"task {name!r}: 'reader' maps reader options to values, e.g. {example}; got {reader!r}")
    options = {option for fmt in READ_FORMATS for option in reader_option_names(fmt)}
    for key, value in reader.items():
        if str(key) in SPLITS:
            if str(key) not in files:
                raise ConfigError(f"task {name!r}: reader.{key} gives the {key} files' own reader options, but files has no "
                                  f"{key} split; files has: {', '.join(files)}")
            _check_split_options(f"task {name!r}: reader.{key}", value, options)
        if str(key) not in SPLITS and str(key) not in options and isinstance(value, Mapping):  # meant as a split's own options
            raise ConfigError(f"task {name!r}: reader.{key} is not a split{_split_hint(key)}; a split's own reader options go "
                              f"under its name in files: {', '.join(files)}")
    return dict(reader)


def _format_of(name: str, fmt: Any) -> str:
    fmt = "auto" if fmt is None else str(fmt)
    if fmt not in FORMATS:
        raise ConfigError(f"task {name!r}: format {fmt!r} is not one of {', '.join(FORMATS)}{did_you_mean(fmt, FORMATS)}")
    return fmt


def load_defined_files(task: Task, splits: Sequence[str], /, *, base_dir: str, files: Mapping[str, Any], format: str = "auto",
                       cache_dir: str | None = None, **reader_options: Any) -> Any:
    """The loader of a defined task's ``sample`` source: its files, relative to ``base_dir`` (the
    folder of the config or YAML file that defined the task; not searched for in its sub-folders,
    which may be anything: a local source's ``data_dir`` is the folder of the downloaded files)."""
    from mtcore.data.sources import read_files

    return read_files(task, splits, base_dir, files, format, cache_dir, reader_options, nested=False)


def _shorthand(definition: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Split a definition into Task.from_dict data and the files shorthand (or None)."""
    if not isinstance(definition, Mapping):
        raise ConfigError(f"a task definition must be a mapping (name, kind, labels, files, ...), got {type(definition).__name__}")
    data = dict(definition)
    short = {key: data.pop(key) for key in SHORTHAND_KEYS if key in data}
    if not short:
        return data, None
    if "files" not in short:
        typo = next((key for key in data if did_you_mean(str(key), ["files"])), None)  # 'file:' beside 'reader:'
        if typo is not None:
            raise ConfigError(f"task {data.get('name')!r}: unknown key {typo!r} (did you mean 'files'?); 'format' and 'reader' need "
                              "'files' beside them")
        raise ConfigError(f"task {data.get('name')!r}: 'format' and 'reader' need 'files' beside them")
    return data, short


def task_from_definition(
    definition: Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    package: str | None = None,
    plugin: str = "",
) -> Task:
    """Build one Task from a definition (see the module docstring).

    With ``package``, ``files`` are resources of that package (a ``sample`` source). Otherwise
    they are local paths: a ``local`` source reads them relative to a ``data_dir``, and a
    ``sample`` source relative to ``base_dir`` (default: the current directory); an explicit
    ``sources: {local: ...}`` gets the same ``sample`` twin. Missing files are reported when
    the data is loaded.
    """
    data, short = _shorthand(definition)
    name = str(data.get("name", "?"))
    if short is not None:
        files = _split_files(name, short["files"])
        flat = {split: paths[0] if len(paths) == 1 else paths for split, paths in files.items()}
        spec = {"format": _format_of(name, short.get("format")), "files": flat, **_reader_of(name, short.get("reader"), files)}
        shown = ", ".join(f"{split}={paths[0]}" + (f" (+{len(paths) - 1})" if len(paths) > 1 else "") for split, paths in files.items())
        sources = dict(data.get("sources") or {})
        if package is not None:
            sources.setdefault("sample", {"kind": "sample", "package": package, "description": f"files shipped in {package}: {shown}", **spec})
        else:
            sources.setdefault("local", {"kind": "local", "description": f"files {shown} under data_dir", **spec})
        data["sources"] = sources
    task = Task.from_dict(data, plugin=plugin, also_valid=SHORTHAND_KEYS)
    if package is not None:
        return task
    # Files of a definition are read relative to the defining file's folder when no data_dir is given:
    # the same files as a "sample" source (the default source without data_dir), unless one is defined.
    local = task.sources.get("local")
    if local is None or local.loader != GENERIC_LOCAL_LOADER or "sample" in task.sources:
        return task
    where = str((Path(base_dir) if base_dir is not None else Path.cwd()).expanduser().absolute())
    relative = Source("sample", DEFINED_LOADER, {**local.options, "base_dir": where}, local.description.replace("under data_dir", f"in {where}"))
    return task.replace(sources={**task.sources, "sample": relative})


def _definitions(data: Any, origin: str) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and "tasks" in data:
        data = data["tasks"]
    elif isinstance(data, Mapping) and "name" in data:
        data = [data]
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{origin}: expected a 'tasks:' list of task definitions (name, kind, labels, files, ...)")
    return data


def _read_yaml(text: str, origin: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{origin}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None


def tasks_from_yaml(source: str | Path | Mapping[str, Any] | list, *, base_dir: str | Path | None = None, plugin: str = "") -> list[Task]:
    """Tasks defined in a YAML file (or the already-parsed data): ``tasks: [definition, ...]``.

    File paths inside are relative to ``base_dir``, by default the YAML file's folder.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read task definitions {path}: {exc.strerror or exc}") from None
        data, origin = _read_yaml(text, str(path)), str(path)
        base_dir = path.parent if base_dir is None else base_dir
    else:
        data, origin = source, "task definitions"
    tasks = _build_all(_definitions(data, origin), origin, base_dir=base_dir, plugin=plugin)
    _no_duplicates(tasks, origin)
    return tasks


def tasks_from_package(package: str, resource: str = "tasks.yaml", *, plugin: str = "") -> list[Task]:
    """Tasks defined in a YAML file shipped as package data; their ``files`` are package data too."""
    origin = f"{package}/{resource}"
    try:
        text = resources.files(package).joinpath(resource).read_text(encoding="utf-8")
    except ModuleNotFoundError as exc:
        hint = f" (the import package, e.g. {package.replace('-', '_')!r}, not the distribution name)" if "-" in package else ""
        raise ConfigError(f"cannot read task definitions {origin}: {exc}{hint}") from None
    except OSError as exc:
        shipped = sorted(item.name for item in resources.files(package).iterdir() if item.name.endswith((".yaml", ".yml")))
        found = (f"the YAML files in {package} are: {', '.join(shipped)}" if shipped else
                 f"{package} holds no YAML file: put it in the package's folder and list it under [tool.setuptools.package-data]")
        raise ConfigError(f"cannot read task definitions {origin}: {exc.strerror or exc}; {found}") from None
    tasks = _build_all(_definitions(_read_yaml(text, origin), origin), origin, package=package, plugin=plugin)
    _no_duplicates(tasks, origin)
    return tasks


def register_yaml_tasks(register: Callable[[Task], Any], package: str, resource: str = "tasks.yaml") -> list[Task]:
    """For a plugin's ``mt_register_tasks`` hook: register every task of ``package/resource``."""
    tasks = tasks_from_package(package, resource)
    for task in tasks:
        register(task)
    return tasks


def _build_all(definitions: list[Mapping[str, Any]], origin: str, **options: Any) -> list[Task]:
    tasks = []
    for number, definition in enumerate(definitions, 1):
        try:
            tasks.append(task_from_definition(definition, **options))
        except ConfigError as exc:
            message = str(exc).removeprefix("task definition: ")
            name = definition.get("name") if isinstance(definition, Mapping) else None
            message = message.removeprefix(f"task {name!r}: ") if isinstance(name, str) else message
            which = f"task {number} of {len(definitions)}" + (f" ({name!r})" if isinstance(name, str) else "")
            raise ConfigError(f"{origin}, {which}: {message}") from None
    return tasks


def _no_duplicates(tasks: list[Task], origin: str) -> None:
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            raise ConfigError(f"{origin}: task {task.name!r} is defined twice")
        seen.add(task.name)
