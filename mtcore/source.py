"""``Source``: where a task's data comes from (the hub, the user's files, a shipped sample).

Plain data like :class:`~mtcore.task.Task`, which holds its Sources by name; importing this module
imports nothing heavy. ``mtcore.task`` re-exports everything here, so plugins write
``from mtcore.task import Source``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mtcore.errors import ConfigError

SOURCE_KINDS = ("hub", "local", "sample")
#: The canonical split names (``mtcore.task`` re-exports them).
SPLITS = ("train", "validation", "test")

@dataclass(frozen=True)
class Source:
    """Where a task's data comes from.

    ``loader`` is a callable or ``"module:attr"`` called as ``loader(task, splits, **options)``
    (``data_dir=`` is added for local sources) and returning a ``datasets.DatasetDict`` of raw
    rows keyed by canonical split names. mtcore's generic loaders cover most cases:
    :meth:`hub`, :meth:`local` and :meth:`sample` build Sources that use them.
    """

    kind: str
    loader: str | Callable[..., Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"source kind {self.kind!r} is not one of {', '.join(SOURCE_KINDS)}")

    @classmethod
    def hub(
        cls,
        path: str,
        name: str | None = None,
        *,
        revision: str | None = None,
        data_dir: str | None = None,
        splits: Mapping[str, str] | None = None,
        description: str = "",
    ) -> Source:
        """A Hugging Face hub dataset (``load_dataset(path, name, revision=, data_dir=)``).

        ``splits`` maps canonical split names to the hub's (default: train/validation/test).
        Script-based datasets must use the Parquet export: ``revision="refs/convert/parquet"``.
        """
        options = {"path": path, "name": name, "revision": revision, "data_dir": data_dir, "splits": dict(splits or {})}
        return cls("hub", "mtcore.data.sources:load_hub", options, description or f"hub {path}" + (f" ({name or data_dir})" if name or data_dir else ""))

    @classmethod
    def local(cls, format: str, files: Mapping[str, str | list[str]], *, description: str = "", **reader_options: Any) -> Source:
        """Files under the user's ``data_dir``: ``files`` maps split -> relative path or glob.

        ``format`` is one of ``jsonl``, ``json``, ``csv``, ``tsv``, ``parquet``, ``conll``; reader options
        (``encoding``, ``sep``, ``header``, ``names``, ``quoting``, ``row_filter``, ``row_expand``) pass through;
        under a split's name (``train={"sep": ";"}``) they are that split's files' own, on top of the others.
        """
        options = {"format": format, "files": dict(files), **reader_options}
        what = "files (format from each extension)" if format == "auto" else f"{format} files"
        return cls("local", "mtcore.data.sources:load_files", options, description or f"local {what}")

    @classmethod
    def sample(cls, package: str, format: str, files: Mapping[str, str], *, description: str = "", **reader_options: Any) -> Source:
        """A small sample shipped inside a plugin package (read with ``importlib.resources``).

        Its default description says only that (``sample files shipped in <package>``); say more
        (synthetic? a slice of the real data?) with ``description``."""
        options = {"package": package, "format": format, "files": dict(files), **reader_options}
        return cls("sample", "mtcore.data.sources:load_sample", options, description or f"sample files shipped in {package}")

    def files_read(self) -> str:
        """The files a ``local`` or ``sample`` source reads per split, for people: ``train: train.csv,
        validation: dev.csv (under data_dir)``; ``""`` for other sources and for sources with their own loader
        (their ``files`` may mean something else)."""
        files = self.options.get("files")
        ours = isinstance(self.loader, str) and self.loader.startswith("mtcore.")
        if not ours or self.kind not in ("local", "sample") or not isinstance(files, Mapping) or not files:
            return ""
        shown = ", ".join(f"{split}: " + (" + ".join(map(str, spec)) if isinstance(spec, (list, tuple)) else str(spec))
                          for split, spec in files.items())
        if self.kind == "local":
            return shown + " (under data_dir)"
        where = self.options.get("package") or self.options.get("base_dir")
        return shown + (f" (in {where})" if where else "")


#: What a "bring your own files" task reads from ``data_dir`` (see :func:`own_data_sources`).
OWN_DATA_FILES = {"train": "train.*", "validation": "validation.*", "test": "test.*"}
OWN_DATA_USAGE = "data_dir with train.*, validation.*, test.*; override inputs and labels when your fields differ"


def own_data_sources(package: str, sample_folder: str) -> dict[str, Source]:
    """Sources of a "bring your own files" task: ``local`` (``train.*``, ``validation.*``,
    ``test.*`` under ``data_dir``, format from each extension) and ``sample`` (JSONL files of the
    same names in ``sample_folder`` of ``package``)."""
    return {
        "local": Source.local("auto", dict(OWN_DATA_FILES), description="your files under data_dir: train.*, validation.*, test.* "
                              "(.jsonl/.csv/.tsv/.parquet), or set sources.local.files"),
        "sample": Source.sample(package, "jsonl", {split: f"{sample_folder}/{split}.jsonl" for split in OWN_DATA_FILES}),
    }


def source_from_dict(name: str, spec: Mapping[str, Any], *, task_name: str = "?") -> Source:
    """A :class:`Source` from plain data: ``{"kind": "local", "format": ..., "files": {...}}`` etc."""
    spec = dict(spec)
    kind = spec.pop("kind", name)
    _check_keys(name, kind, spec, task_name)
    if kind == "hub":
        return Source.hub(**spec)
    if kind == "local":
        return Source.local(spec.pop("format", "auto"), spec.pop("files", {}), **spec)
    if kind == "sample":
        return Source.sample(spec.pop("package"), spec.pop("format", "auto"), spec.pop("files", {}), **spec)
    raise _at(name, ConfigError(f"task {task_name!r}: source {name!r} has kind {kind!r}{_near(str(kind), SOURCE_KINDS)}; "
                                "use hub, local or sample"))


#: The keys of a ``hub`` source (``Source.hub``'s arguments).
_HUB_KEYS = ("path", "name", "revision", "data_dir", "splits", "description")
#: The keys of a ``local`` or ``sample`` source besides its files' reader options (``sample`` adds ``package``).
_FILES_KEYS = ("format", "files", "description", "cache_dir")
#: mtcore's own loaders, and which keys their options take (a YAML task's files beside its definition: a local source's).
LOADER_KEYS = {"mtcore.data.sources:load_hub": "hub", "mtcore.data.sources:load_files": "local",
               "mtcore.data.sources:load_sample": "sample", "mtcore.yaml_tasks:load_defined_files": "local"}


def _check_keys(name: str, kind: Any, spec: Mapping[str, Any], task_name: str, own: Any = (), shown: Any = None) -> None:
    """Refuse a key a ``hub``, ``local`` or ``sample`` source does not take (``file:`` for ``files:``), with did-you-mean
    and the keys it does take: for files, the reader options of the formats it reads (see :func:`_reader_options`) and
    the split names (a split's own reader options). ``own``: keys the source had already (a config changing a source
    the task defines). Also checked: ``format``, the split names under ``files`` (``splits`` of a hub source), and
    ``files`` (``package``, for a sample) being there. ``shown``: the kind the message names (default ``kind``)."""
    shown = kind if shown is None else shown
    what = f"task {task_name!r}: source {name!r}" + (f" ({shown})" if shown != name else "")
    if kind not in SOURCE_KINDS:
        return
    files = spec.get("files")
    if kind == "hub":
        keys, options, formats = [*_HUB_KEYS], set(), None
    else:
        _check_format(what, name, spec.get("format", "auto"))
        keys = [*_FILES_KEYS, *(["package"] if kind == "sample" else [])]
        options, formats = _reader_options(spec.get("format", "auto"), files)
    keys += [key for key in own if key not in keys and key not in options and key not in SPLITS]
    for key in spec:
        if key in SPLITS and kind != "hub":  # a split's own reader options: {test: {encoding: cp1251}}, on top of the others
            own_files = {key: files[key]} if isinstance(files, Mapping) and key in files else files
            try:
                _check_split_options(f"{what} key {key!r}", spec[key], _reader_options(spec.get("format", "auto"), own_files)[0])
            except ConfigError as error:
                raise _at(name, error) from None
        elif key not in keys and key not in options:
            read = f"{' or '.join(formats)} files" if formats else "its files (any format)"
            takes = ", ".join(keys) + (f", the reader options of {read}: {', '.join(sorted(options))} (also one split's own, "
                                       f"under {' / '.join(SPLITS)})" if kind != "hub" else "")
            hint = _key_hint(str(key), kind, keys, options, formats)
            raise _at(name, ConfigError(f"{what} has unknown key {key!r}{hint}; it takes: {takes}"))
    if kind == "hub":
        _check_splits(what, name, "splits", spec.get("splits"), "the hub's split names")
        return
    if files is None:
        raise _at(name, ConfigError(f"{what} needs 'files': the split names mapped to file paths or globs, e.g. "
                                    "files: {train: train.jsonl, validation: dev.jsonl}"))
    _check_splits(what, name, "files", files, "file paths or globs")
    if kind == "sample" and "package" not in spec and "package" not in own and "base_dir" not in own:
        raise _at(name, ConfigError(f"{what} needs 'package': the Python package that ships its files (package: my_plugin)"))


def _reader_options(fmt: Any, files: Any) -> tuple[set[str], list[str] | None]:
    """The reader options of a files source, and the formats it reads (None: any): those of its ``format``, else of
    the formats its file names say (``train.csv``: csv), else (a glob such as ``train.*``) those of any format. (An
    option reaches every split's files: one that some of them do not take fails when they are read, naming the file.)"""
    from mtcore.data.formats import FORMATS
    from mtcore.data.readers import format_of, reader_option_names

    if fmt in FORMATS:
        return reader_option_names(fmt), [fmt]
    paths = [path for value in (dict(files).values() if isinstance(files, Mapping) else ())
             for path in (value if isinstance(value, (list, tuple)) else [value])]
    said = {format_of(path) if isinstance(path, str) else None for path in paths}
    if not paths or None in said:
        return {option for f in FORMATS for option in reader_option_names(f)}, None
    formats = [f for f in FORMATS if f in said]
    return set.union(*(reader_option_names(f) for f in formats)), formats


def _key_hint(key: str, kind: str, keys: list[str], options: set[str], formats: list[str] | None) -> str:
    """Did-you-mean for an unknown source key: another library's name for a reader option (``delimiter``), a split
    name given a hub source, ``data_dir`` in a local source, a near spelling, a reader option of another format."""
    from mtcore.data.readers import _OPTION_ALIASES, _OPTIONS

    alias = _OPTION_ALIASES.get(key)
    if alias in options:
        return f" (did you mean {alias!r}?)"
    if kind == "hub" and key in SPLITS:
        return f" (a hub source maps split names under splits: {{{key}: <the hub's split name>}})"
    if kind != "hub" and key == "data_dir":
        return " (the folder is given with the task, not in its source: tasks.<i>.data_dir in a config, --data-dir in a command)"
    near = _near(key, sorted({*keys, *options, *([] if kind == "hub" else SPLITS)}))
    if near or kind == "hub":
        return near
    import difflib

    other = sorted({name for names in _OPTIONS.values() for name in names} - options)
    meant = key if key in other else next(iter(difflib.get_close_matches(key, other, n=1, cutoff=0.75)), None)
    takers = [fmt for fmt, names in _OPTIONS.items() if meant in names]
    if not takers:
        return ""
    meaning = f"did you mean {meant!r}? " if meant != key else ""
    return f" ({meaning}{meant!r} is a reader option of {', '.join(takers)} files, not of {' or '.join(formats or ())} files)"


def _near(name: str, names: Any) -> str:
    from mtcore.errors import did_you_mean

    return did_you_mean(name, list(names), n=1)


#: Other names of the splits (``dev``: validation).
_USUAL_SPLITS = {"dev": "validation", "val": "validation", "valid": "validation", "eval": "validation", "devel": "validation",
                 "training": "train", "testing": "test"}


def _check_splits(what: str, name: str, key: str, value: Any, target: str) -> None:
    """``files`` (``splits`` of a hub source) maps the split names train, validation and test."""
    if value is None and key == "splits":
        return
    if not isinstance(value, Mapping):
        raise _at(name, ConfigError(f"{what}: {key} maps split names ({', '.join(SPLITS)}) to {target}, not {value!r}"))
    for split in value:
        if split not in SPLITS:
            usual = _USUAL_SPLITS.get(str(split).lower())
            if usual and key == "splits":  # {validation: dev}: mtcore's split name first, the hub's second
                hint = f" (splits maps mtcore's split names to the hub's: {{{usual}: {split}}})"
            else:
                hint = f" (did you mean {usual!r}?)" if usual else _near(str(split), SPLITS)
            raise _at(name, ConfigError(f"{what}: {key} names unknown split {split!r}{hint}; the splits are: {', '.join(SPLITS)}"))


def _check_format(what: str, name: str, fmt: Any) -> None:
    from mtcore.data.formats import AUTO, FORMATS

    if fmt != AUTO and fmt not in FORMATS:
        raise _at(name, ConfigError(f"{what} has unknown data format {fmt!r}{_near(str(fmt), FORMATS)}; choose one of: "
                                    f"{', '.join(FORMATS)}, or {AUTO} (from each file's extension)"))


def _at(name: str, error: ConfigError) -> ConfigError:
    """``error`` marked as a mistake in the source ``name``: a config's error names the key ``tasks.<i>.sources.<name>``."""
    error.field = f"sources.{name}"  # type: ignore[attr-defined]
    return error


def _check_loader_keys(name: str, source: Source, changed: list[str], options: Mapping[str, Any], task_name: str) -> None:
    """A config's change to a source a plugin's own loader reads: each changed key is a keyword the loader takes, or,
    when it passes more on (``**options``), a key of a ``hub`` source or a files source's key or reader option; and
    ``files`` / ``splits`` name the splits. (Before, a typo was "unexpected TypeError" when the data was read.)"""
    import inspect

    from mtcore.refs import resolve

    try:
        parameters = list(inspect.signature(resolve(source.loader)).parameters.values())
    except Exception:  # noqa: BLE001 - a loader that does not resolve is reported when the data is read
        return
    given = ("task", "splits", "data_dir") if source.kind == "local" else ("task", "splits")  # mtcore gives a local one its data_dir
    named = [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in given]
    passes_on = any(p.kind == p.VAR_KEYWORD for p in parameters)
    what = f"task {task_name!r}: source {name!r}" + (f" ({source.kind})" if source.kind != name else "")
    had = [key for key in source.options if key != "data_dir" or source.kind != "local"]  # keys the task's own source sets: its loader's
    if passes_on and source.kind == "hub":
        keys, reader = sorted({*named, *had, *_HUB_KEYS}), set()
    elif passes_on:
        keys, reader = sorted({*named, *had, *_FILES_KEYS}), _reader_options(options.get("format", "auto"), options.get("files"))[0]
    else:
        keys, reader = sorted({*named, "description"}), set()
    keys = [key for key in keys if key not in reader]  # listed once: with the reader options
    for key in dict.fromkeys(changed):
        if key in ("description", "options") or key in keys or key in reader or (reader and key in SPLITS):
            continue
        hint = _key_hint(str(key), source.kind if passes_on else "hub", keys, reader, None) if passes_on else _near(str(key), keys)
        if not hint and key == "data_dir":
            hint = " (the folder is given with the task, not in its source: tasks.<i>.data_dir in a config, --data-dir in a command)"
        takes = ", ".join(keys) + (f", and the reader options of its files: {', '.join(sorted(reader))}"
                                                                 if reader else "")
        raise _at(name, ConfigError(f"{what} has unknown key {key!r}{hint}; its loader takes: {takes}"))
    if "files" in changed and "files" in named and isinstance(options.get("files"), Mapping):
        _check_splits(what, name, "files", options["files"], "file paths or globs")
    if "splits" in changed and source.kind == "hub":
        _check_splits(what, name, "splits", options.get("splits"), "the hub's split names")


def check_source(name: str, source: Source, task_name: str) -> None:
    """The options of a Source read by one of mtcore's loaders (however it was built: ``Source.local(...)`` in a plugin,
    a config's change of a task's source) are ones that loader takes (see :func:`_check_keys`)."""
    loader = source.loader if isinstance(source.loader, str) else ""
    layout = LOADER_KEYS.get(loader)
    if layout is not None:
        extra = ["base_dir"] if loader.startswith("mtcore.yaml_tasks:") else []
        _check_keys(name, layout, source.options, task_name, extra, shown=source.kind)
    elif loader.startswith("mtcore."):
        _check_format(f"task {task_name!r}: source {name!r}", name, source.options.get("format", "auto"))


def _check_split_options(where: str, value: Any, options: set[str]) -> None:
    """A split's own reader options: a mapping of reader options (with did-you-mean for an unknown one)."""
    from mtcore.data.readers import _OPTION_ALIASES
    from mtcore.errors import did_you_mean

    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: a split's own reader options are a mapping, e.g. {{encoding: cp1251}}, not {value!r}")
    for key in value:
        if key not in options:
            alias = _OPTION_ALIASES.get(key)
            hint = f" (did you mean {alias!r}?)" if alias in options else did_you_mean(str(key), sorted(options), n=1)
            raise ConfigError(f"{where}: unknown reader option {key!r}{hint}; reader options: {', '.join(sorted(options))}")


def merge_sources(sources: Mapping[str, Source], changes: Mapping[str, Any], *, task_name: str = "?") -> dict[str, Source]:
    """Apply per-source changes from a config: options of an existing source are updated
    (``{"local": {"files": {...}}}`` keeps its loader), a new name or a ``kind`` builds a new Source."""
    merged = dict(sources)
    for name, spec in changes.items():
        if isinstance(spec, Source):
            merged[name] = spec
            continue
        spec = dict(spec or {})
        base = merged.get(name)
        if base is not None and "kind" not in spec:
            given = spec.pop("description", None)
            options = {**base.options, **dict(spec.pop("options", {}) or {}), **spec}
            layout = LOADER_KEYS.get(base.loader) if isinstance(base.loader, str) else None
            if layout is not None:  # the keys the source's loader takes, those it had already too (a YAML task's base_dir)
                _check_keys(name, layout, options, task_name, own=list(base.options), shown=base.kind)
            else:  # a plugin's own loader (rsg's, mokoron's): the keys the config changes are ones it takes
                _check_loader_keys(name, base, [*spec, *dict(spec.get("options") or {})], options, task_name)
            description = base.description if given is None else str(given)
            if given is None and base.kind == "hub" and options.get("path") != base.options.get("path"):  # errors name the data read
                description = f"hub {options['path']}" + (f" ({options.get('name') or options.get('data_dir')})"
                                                          if options.get("name") or options.get("data_dir") else "")
            merged[name] = dataclasses.replace(base, options=options, description=description)
        else:
            merged[name] = source_from_dict(name, spec, task_name=task_name)
    return merged
