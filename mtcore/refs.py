"""Lazy ``"module:attr"`` references, so plugins can point at code without importing it."""

from __future__ import annotations

import importlib
from typing import Any

from mtcore.errors import PluginError


def resolve(ref: Any) -> Any:
    """Return ``ref`` itself, or the object a ``"package.module:attr.sub"`` string names."""
    if not isinstance(ref, str):
        return ref
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(f"bad reference {ref!r}: expected 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {module_name!r} (from reference {ref!r}): {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{module_name!r} has no attribute {attr!r} (from reference {ref!r})") from None
    return obj


def describe(ref: Any) -> str:
    """A printable name for a reference or a callable."""
    if isinstance(ref, str):
        return ref
    module = getattr(ref, "__module__", "?")
    return f"{module}:{getattr(ref, '__qualname__', repr(ref))}"


def lazy_getattr(package: str, table: dict[str, str]) -> Any:
    """A module ``__getattr__`` (PEP 562) that imports ``table[name]`` on first access.

    Usage in a package ``__init__``: ``__getattr__ = lazy_getattr(__name__, {"Name": "pkg.module"})``.
    """
    import importlib

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
