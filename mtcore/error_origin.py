"""Where an unexpected exception came from: the plugin or user code behind it, for its one error line.

:func:`origin` walks the exception's traceback, innermost frame first, for the first frame whose
code is neither mtcore's own, nor the standard library's, nor an installed library's (torch,
transformers, ...): a frame of a plugin (a distribution with an entry point in the ``mtcore``
group) or of the user's own code (a module outside site-packages, or in a project installed in
editable mode). When the exception's own frames are only mtcore's and libraries', the exception it
was raised from (``raise X from exc``, or during the handling of) is looked at too.

:func:`unexpected_line` is the line ``mt`` prints for such an exception (after ``error: ``) and
writes into a run's ``error`` event::

    unexpected ZeroDivisionError: division by zero (from plugin 'mt-foo', at mt_foo/samplers.py:12 in __iter__)
    unexpected ZeroDivisionError: division by zero (at my_heads.py:30 in forward)

Everything here is cheap to import; the installed distributions are read only when an error is
described.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

OWN_PACKAGE = "mtcore"
ENTRY_POINT_GROUP = "mtcore"

# Top-level packages that are always a library's, never the user's (also when installed in editable mode).
LIBRARIES = frozenset({
    "accelerate", "click", "datasets", "evaluate", "filelock", "fsspec", "huggingface_hub", "jinja2", "multiprocess",
    "numpy", "packaging", "pandas", "peft", "pluggy", "pyarrow", "pydantic", "pydantic_core", "pytest", "_pytest",
    "regex", "rich", "safetensors", "scipy", "sentencepiece", "setuptools", "sklearn", "tensorboard", "tokenizers",
    "torch", "torchvision", "tqdm", "transformers", "triton", "typer", "typing_extensions", "wandb", "yaml",
})


@dataclass(frozen=True)
class Origin:
    """The frame an exception came from: ``plugin`` (its distribution) is None for the user's own code."""

    filename: str
    lineno: int
    function: str
    plugin: str | None = None
    shown_path: str = ""  # the path as the line shows it

    def describe(self) -> str:
        """``from plugin 'mt-foo', at mt_foo/samplers.py:12 in __iter__`` or ``at my_heads.py:30 in forward``."""
        where = f"at {self.shown_path or self.filename}:{self.lineno} in {self.function}"
        return f"from plugin {self.plugin!r}, {where}" if self.plugin else where


def unexpected_line(error: BaseException) -> str:
    """``unexpected <Type>: <text>`` on one line, with ``(<origin>)`` when a plugin's or the user's code raised it."""
    text = " ".join(str(error).split())
    line = f"unexpected {type(error).__name__}: {text}" if text else f"unexpected {type(error).__name__}"
    try:
        found = origin(error)
    except Exception:  # noqa: BLE001 - describing an error never hides it
        found = None
    return f"{line} ({found.describe()})" if found is not None else line


def origin(error: BaseException) -> Origin | None:
    """The innermost frame of a plugin or of the user's code in ``error``'s traceback, else in the traceback of
    the exception it was raised from (``__cause__``, or an unsuppressed ``__context__``); None when there is none."""
    known = _Distributions()
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        frames = list(traceback.walk_tb(current.__traceback__))
        for frame, lineno in reversed(frames):
            found = _classify(frame, lineno, known)
            if found is not None:
                return found
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return None


def _module_name(frame: FrameType) -> str:
    """The frame's module (``__spec__``'s name for ``python -m pkg``'s ``__main__``)."""
    name = frame.f_globals.get("__name__")
    if name == "__main__":
        spec = frame.f_globals.get("__spec__")
        name = getattr(spec, "name", None) or name
    return name if isinstance(name, str) else ""


def _classify(frame: FrameType, lineno: int, known: _Distributions) -> Origin | None:
    """An :class:`Origin` for a frame of a plugin or of the user's code, None for mtcore's, Python's or a library's."""
    filename = frame.f_code.co_filename
    if not filename or filename.startswith("<"):  # generated code (dataclasses, exec): no file to point at
        return None
    module = _module_name(frame)
    top = module.split(".")[0]
    if top == OWN_PACKAGE or top in sys.stdlib_module_names or top in LIBRARIES or _inside(filename, known.own_root):
        return None
    if top and top != "__main__":
        plugin = known.plugin(top)
        if plugin is not None:
            return Origin(filename, lineno, frame.f_code.co_name, plugin, _package_path(filename, top))
    if known.installed(filename):  # a library, a console script (bin/mt), a module installed without a distribution
        return None
    return Origin(filename, lineno, frame.f_code.co_name, None, _shown(filename))


def _package_path(filename: str, top: str) -> str:
    """``mt_foo/samplers.py``: the path from the plugin's top-level package (or module, ``mt_foo.py``) on."""
    parts = Path(filename).parts
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] == top or (index == len(parts) - 1 and Path(parts[index]).stem == top):
            return "/".join(parts[index:])
    return "/".join(parts[-2:])


def _shown(filename: str) -> str:
    """The user's file, relative to the working directory when inside it."""
    try:
        path, cwd = Path(filename).resolve(), Path.cwd().resolve()
        return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)
    except (OSError, ValueError):
        return filename


def _inside(filename: str, roots: tuple[Path, ...]) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return any(path.is_relative_to(root) for root in roots)


class _Distributions:
    """What is installed, read once per described error and only as far as needed."""

    def __init__(self) -> None:
        self._plugins: dict[str, str] | None = None
        self._owners: dict[str, list[str]] | None = None
        self._install_roots: tuple[Path, ...] | None = None
        self.own_root = (Path(__file__).resolve().parent,)

    def plugin(self, top: str) -> str | None:
        """The plugin distribution that owns top-level package ``top``, if one does."""
        plugins = self._plugin_packages()
        if top in plugins:
            return plugins[top]
        if self._owners is None:
            from importlib.metadata import packages_distributions

            self._owners = packages_distributions()
        names = set(plugins.values())
        return next((dist for dist in self._owners.get(top, ()) if dist in names), None)

    def _plugin_packages(self) -> dict[str, str]:
        """``{top-level package of an entry point: distribution}`` for the ``mtcore`` group, mtcore's own left out."""
        if self._plugins is None:
            from importlib.metadata import entry_points

            self._plugins = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist is not None else None
                top = ep.module.split(".")[0]
                if dist and dist != OWN_PACKAGE and top and top != OWN_PACKAGE:
                    self._plugins.setdefault(top, dist)
        return self._plugins

    def installed(self, filename: str) -> bool:
        """Whether ``filename`` lies where Python and installed packages live (stdlib, site-packages, scripts)."""
        if self._install_roots is None:
            self._install_roots = _install_roots()
        return _inside(filename, self._install_roots)


def _install_roots() -> tuple[Path, ...]:
    import site

    paths: list[Any] = []
    for scheme_key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts"):
        paths.append(sysconfig.get_paths().get(scheme_key))
    try:
        paths.extend(site.getsitepackages())
        paths.append(site.getusersitepackages())
    except AttributeError:  # pragma: no cover - some virtualenvs' site module lacks them
        pass
    paths.extend(p for p in sys.path if p and os.path.basename(p.rstrip("/\\")) in {"site-packages", "dist-packages"})
    roots = []
    for path in paths:
        if path:
            try:
                roots.append(Path(path).resolve())
            except (OSError, ValueError):
                continue
    return tuple(dict.fromkeys(roots))
