"""Fake installed plugins for tests: a package and its ``.dist-info`` (with ``entry_points.txt``) put on ``sys.path``,
which is all ``importlib.metadata`` needs (importable as ``authoring.plugin_paths``: tests/ is on the path)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

from mtcore.plugins import load_registry


class PluginPaths:
    """``put(root, package, files, ...)`` installs one; ``remove()`` takes every one put back off the path."""

    def __init__(self, module_prefix: str) -> None:
        self.module_prefix, self.added = module_prefix, []

    def put(self, root: Path, package: str, files: dict[str, str], *, group: str = "mtcore", ep_name: str | None = None) -> str:
        """Write ``files`` (paths inside the package -> text) and the dist-info; returns the plugin (entry point) name."""
        for name, text in files.items():
            path = root / package / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (root / package / "__init__.py").touch()
        dist = root / f"{package}-0.1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.1.0\n")
        plugin = ep_name or package.removeprefix("mt_")
        (dist / "entry_points.txt").write_text(f"[{group}]\n{plugin} = {package}.plugin\n")
        sys.path.insert(0, str(root))
        self.added.append(str(root))
        importlib.invalidate_caches()
        return plugin

    def remove(self) -> None:
        for path in self.added:
            sys.path.remove(path)
        for name in [m for m in sys.modules if m.startswith(self.module_prefix)]:
            del sys.modules[name]
        importlib.invalidate_caches()
        load_registry(refresh=True, warn=False)


def plugin_paths(module_prefix: str) -> Iterator[PluginPaths]:
    """For a fixture: ``yield from plugin_paths("mt_study_")``."""
    paths = PluginPaths(module_prefix)
    yield paths
    paths.remove()
