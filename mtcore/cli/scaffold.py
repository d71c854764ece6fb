"""``mt new-plugin NAME [--dir DIR]``: scaffold an installable plugin package.

The package is rendered from ``mtcore/templates/plugin`` (files ending ``.tmpl`` have their
``{{placeholders}}`` filled; a ``__package__`` folder takes the package's name) into a temporary
folder beside the target, which is then renamed into place: an interrupted run leaves nothing
half-written. Nothing heavy is imported.
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Optional

import typer

from mtcore.errors import UsageError
from mtcore.outputs import share_modes
from mtcore.hookspecs import PROJECT

TEMPLATE_PACKAGE = "mtcore"
TEMPLATE_DIR = ("templates", "plugin")
PACKAGE_PLACEHOLDER = "__package__"
TEMPLATE_SUFFIX = ".tmpl"

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PLUGIN = re.compile(r"^[a-z][a-z0-9_]*$")
#: Short names mtcore itself uses in task ids: its built-ins, and ``user`` for the tasks a training
#: config defines (``define:``) or Python code registers (``mtcore.plugins.register_task``).
RESERVED_PLUGIN_NAMES = {"mtcore": "mtcore's built-in components", "user": "tasks a training config defines (ids user:<task>)"}


@dataclass(frozen=True)
class PluginNames:
    """The names a new plugin goes by."""

    distribution: str  # what pip installs: "mt-toxic"
    package: str  # what Python imports: "mt_toxic"
    plugin: str  # the entry-point name, prefix of task ids: "toxic" -> "toxic:toxic"
    task: str = ""  # the example task's name: the plugin's (two new plugins' tasks never share a bare name)

    def __post_init__(self) -> None:
        if not self.task:
            object.__setattr__(self, "task", self.plugin)

    def placeholders(self) -> dict[str, str]:
        return {"distribution": self.distribution, "package": self.package, "plugin": self.plugin, "task": self.task}


def plugin_names(name: str, plugin: str | None = None) -> PluginNames:
    """Derive (and check) the distribution, package and plugin names from ``NAME``.

    ``mt-toxic`` -> distribution ``mt-toxic``, package ``mt_toxic``, plugin ``toxic``. Raises
    :class:`UsageError` (one line, exit code 2) for a name that cannot work.
    """
    if not _NAME.match(name):
        raise UsageError(
            f"distribution name {name!r} (NAME) is not valid: use lowercase letters, digits and single '-' or '_' "
            "between them, starting with a letter (e.g. mt-toxic)"
        )
    package = name.replace("-", "_")
    short = plugin if plugin is not None else re.sub(r"^mt[-_]", "", name).replace("-", "_")
    fix = "pass another --plugin" if plugin is not None else f"pass --plugin NAME (the short name derived from {name!r} was {short!r})"
    if not _PLUGIN.match(short):
        raise UsageError(f"plugin short name {short!r} is not valid: use lowercase letters, digits and '_', starting with a letter; {fix}")
    if short in RESERVED_PLUGIN_NAMES:
        raise UsageError(f"plugin short name {short!r} is reserved for {RESERVED_PLUGIN_NAMES[short]}; {fix}")
    if keyword.iskeyword(package) or package in sys.stdlib_module_names or package in ("mtcore", "test", "tests", "conftest"):
        raise UsageError(f"plugin name {name!r} would make a package {package!r} that clashes with Python or mtcore; choose another name")
    if importlib.util.find_spec(package) is not None:
        raise UsageError(f"a module named {package!r} is already importable in this environment; choose another plugin name")
    taken = {ep.name for ep in entry_points(group=PROJECT)}
    if short in taken:
        fix = "pass another --plugin" if plugin is not None else "choose another name or pass --plugin with another short name"
        raise UsageError(f"an installed plugin already uses the short name {short!r}; {fix}")
    return PluginNames(distribution=name, package=package, plugin=short)


def _render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _template_files() -> list[tuple[Path, bytes]]:
    """Every template file as (path relative to the template root, contents)."""
    root = resources.files(TEMPLATE_PACKAGE).joinpath(*TEMPLATE_DIR)
    found: list[tuple[Path, bytes]] = []

    def walk(node, rel: Path) -> None:  # type: ignore[no-untyped-def]
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name == "__pycache__":
                continue
            if child.is_dir():
                walk(child, rel / child.name)
            else:
                found.append((rel / child.name, child.read_bytes()))

    walk(root, Path())
    if not found:
        raise UsageError("mtcore's plugin templates are missing (reinstall mtcore)")
    return found


def render_plugin(names: PluginNames, destination: Path) -> list[Path]:
    """Write the rendered template into ``destination`` (an existing empty folder)."""
    values = names.placeholders()
    written = []
    for rel, data in _template_files():
        parts = [names.package if part == PACKAGE_PLACEHOLDER else part for part in rel.parts]
        target = destination.joinpath(*parts)
        if target.name.endswith(TEMPLATE_SUFFIX):
            target = target.with_name(target.name[: -len(TEMPLATE_SUFFIX)])
            data = _render(data.decode("utf-8"), values).encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target.relative_to(destination))
    return written


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory; choose another --dir")
    if target.is_dir() and any(target.iterdir()):
        raise UsageError(f"directory {target} already exists and is not empty; choose another --dir or remove it")


def create_plugin(name: str, directory: Path | None = None, *, plugin: str | None = None) -> tuple[PluginNames, Path, list[Path]]:
    """Scaffold plugin ``name`` into ``directory`` (default ``./NAME``), atomically.

    Returns the names, the created folder and the files written (relative to it).
    """
    from mtcore.outputs import check_writable, make_parents, remove_empty, write_error

    names = plugin_names(name, plugin)
    target = Path(directory if directory is not None else name).expanduser().absolute()
    _check_target(target)
    check_writable(target, folder=True, what="--dir")
    created = make_parents(target.parent)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as exc:
        remove_empty(created)
        raise write_error(target.parent, exc) from None
    try:
        files = render_plugin(names, staging)
        share_modes(staging)  # mkdtemp makes a private folder
        _check_target(target)  # still free?
        if target.is_dir():
            target.rmdir()
        os.rename(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        remove_empty(created)
        if isinstance(exc, OSError):
            raise write_error(target, exc) from None
        raise
    return names, target, files


def new_plugin(
    name: str = typer.Argument(..., metavar="NAME", help="Distribution name, e.g. mt-toxic (package mt_toxic, plugin toxic)."),
    directory: Optional[Path] = typer.Option(None, "--dir", help="Folder to create (default: ./NAME); must not exist or be empty."),
    plugin: Optional[str] = typer.Option(None, "--plugin", help="Short plugin name used in task ids (default: NAME without 'mt-')."),
) -> None:
    """Scaffold an installable plugin: pyproject with the mtcore entry point, an example task with a sample, tests."""
    names, target, files = create_plugin(name, directory, plugin=plugin)
    shown = os.path.relpath(target) if not os.path.relpath(target).startswith("..") else str(target)
    print(f"created plugin {names.plugin!r} (distribution {names.distribution}, package {names.package}) in {shown}")
    for rel in sorted(files):
        print(f"  {rel.as_posix()}")
    print("next steps:")
    print(f"  pip install -e {shlex.quote(shown + '[test]')}     # [test]: pytest too")
    print(f"  mt list-tasks --plugin {names.plugin}")
    print(f"  cd {shlex.quote(str(shown))} && python -m pytest")


def register(app: typer.Typer) -> None:
    app.command("new-plugin")(new_plugin)
