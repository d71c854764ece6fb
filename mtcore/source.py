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
    raise ConfigError(f"task {task_name!r}: source {name!r} has kind {kind!r}; use hub, local or sample")


_HUB_KEYS = ("path", "name", "revision", "data_dir", "splits", "description")


def _check_keys(name: str, kind: Any, spec: Mapping[str, Any], task_name: str) -> None:
    """A key a ``hub``, ``local`` or ``sample`` source does not take (``file:`` for ``files:``) is refused with did-you-mean
    (for files, the keys are the reader options of its format; any format's when it is ``auto``)."""
    from mtcore.data.formats import FORMATS
    from mtcore.data.readers import _OPTION_ALIASES, reader_option_names
    from mtcore.errors import did_you_mean

    from mtcore.task import SPLITS

    what = f"source {name!r}" + (f" ({kind})" if kind != name else "")
    if kind == "hub":
        allowed = set(_HUB_KEYS)
    elif kind in ("local", "sample"):
        fmt = spec.get("format", "auto")
        formats = [fmt] if fmt in FORMATS else FORMATS
        options = {option for f in formats for option in reader_option_names(f)}
        allowed = {"format", "files", "description", "cache_dir", *(["package"] if kind == "sample" else []), *options}
        for split in SPLITS:  # a split's own reader options: {test: {encoding: cp1251}}, on top of the others
            if split in spec:
                _check_split_options(f"task {task_name!r}: {what} key {split!r}", spec[split], options)
        allowed |= set(SPLITS)
    else:
        return
    for key in spec:
        if key not in allowed:
            alias = _OPTION_ALIASES.get(key)
            hint = f" (did you mean {alias!r}?)" if alias in allowed else did_you_mean(str(key), sorted(allowed), n=1)
            raise ConfigError(f"task {task_name!r}: {what} has unknown key {key!r}{hint}; it takes: {', '.join(sorted(allowed))}")


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
            options = {**base.options, **dict(spec.pop("options", {}) or {}), **spec}
            description = base.description
            if base.kind == "hub" and options.get("path") != base.options.get("path"):  # errors name the data really read
                description = f"hub {options['path']}" + (f" ({options.get('name') or options.get('data_dir')})"
                                                          if options.get("name") or options.get("data_dir") else "")
            merged[name] = dataclasses.replace(base, options=options, description=description)
        else:
            merged[name] = source_from_dict(name, spec, task_name=task_name)
    return merged
