"""Lazy ``"module:attr"`` references, so plugins can point at code without importing it."""

from __future__ import annotations

import importlib
from typing import Any

from mtcore.errors import PluginError


class BadReference(PluginError):
    """A ``"module:attr"`` reference that does not resolve. ``reason`` says why without repeating
    the reference, for messages that name it themselves."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def resolve(ref: Any) -> Any:
    """Return ``ref`` itself, or the object a ``"package.module:attr.sub"`` string names.

    A reference that does not resolve raises :class:`BadReference` (a :class:`PluginError`).
    """
    if not isinstance(ref, str):
        return ref
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise BadReference(f"bad reference {ref!r}: expected 'package.module:attribute'", "expected 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        hint = near_module(exc.name) if isinstance(exc, ModuleNotFoundError) and exc.name else ""
        raise BadReference(f"cannot import {module_name!r} (from reference {ref!r}): {exc}{hint}",
                              f"cannot import {module_name!r}: {exc}{hint}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BadReference(f"{module_name!r} has no attribute {attr!r} (from reference {ref!r})",
                                  f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def near_attribute(ref: Any, callables: bool = False) -> str:
    """``" (did you mean 'AttentionPoolHead'?)"`` for a ``"module:Attr"`` whose module imports but lacks ``Attr``
    (``callables``: only the module's public callables are suggested, for a reference to a function)."""
    from mtcore.errors import did_you_mean

    if not isinstance(ref, str) or ":" not in ref:
        return ""
    module_name, _, attr = ref.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split(".")[:-1]:
            obj = getattr(obj, part)
    except Exception:
        return ""
    last = attr.split(".")[-1]
    if hasattr(obj, last):
        return ""
    names = [n for n in dir(obj) if not n.startswith("_") and (not callables or callable(getattr(obj, n, None)))]
    return did_you_mean(last, names, n=1)


def resolve_function(ref: Any) -> Any:
    """:func:`resolve` for a reference to a function (a ``preprocess`` step): a misspelt name gets a
    "did you mean" over its module's public callables, as registry references do."""
    try:
        return resolve(ref)
    except BadReference as exc:
        hint = near_attribute(ref, callables=True)
        if not hint:
            raise
        raise BadReference(f"{exc.reason}{hint} (from reference {ref!r})", f"{exc.reason}{hint}") from None


def near_module(missing: str) -> str:
    """``" (did you mean 'pkg.plugin'?)"`` for a missing ``pkg.plugn`` whose package exists, else ``""``."""
    import pkgutil

    from mtcore.errors import did_you_mean

    parent, _, child = missing.rpartition(".")
    try:
        path = getattr(importlib.import_module(parent), "__path__", None) if parent else None
    except Exception:
        return ""
    if path is None:
        return ""
    hint = did_you_mean(child, [m.name for m in pkgutil.iter_modules(path)], n=1)
    return hint.replace("'", f"'{parent}.", 1) if hint else ""


def reference_problem(ref: Any) -> str | None:
    """Why ``ref`` does not name a callable (it does not resolve, importing its module raises, or it
    names something else), without repeating the reference; ``None`` when it does. Imports the module."""
    try:
        obj = resolve_function(ref)
    except BadReference as exc:
        return exc.reason
    except Exception as exc:  # the module itself raises on import (a SyntaxError, a failing top-level line)
        text = " ".join(str(exc).split())
        return f"importing {str(ref).partition(':')[0]!r} raised {type(exc).__name__}" + (f": {text}" if text else "")
    if not callable(obj):
        return f"it names a {type(obj).__name__}, not a function"
    return None


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


def library_roots() -> set[str]:
    """The folders of Python itself and of installed libraries (stdlib, site-packages, the interpreter's prefixes)."""
    import sys
    import sysconfig

    paths = sysconfig.get_paths()
    return {root for root in (*(paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")), sys.prefix, sys.base_prefix) if root}


def inside(path: str, root: str) -> bool:
    import os

    path, root = os.path.abspath(path), os.path.abspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def plugin_code(module: str) -> bool:
    """Whether ``module`` (a dotted name) may be run because a model file names it: any but a module of Python's own
    library (``os``, ``this``, ``antigravity``, ``builtins``): a model folder is data, and naming such code in it must
    not run it, while a step of a plugin, of an installed package or of the user's own module runs as when the
    model was trained. Nothing is imported to decide."""
    import importlib.util
    import sys
    import sysconfig

    top = module.split(".", 1)[0]
    if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()):
        return False
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return True  # not importable: resolving it says so
    if spec is None:
        return True
    if spec.origin in ("built-in", "frozen"):
        return False
    where = spec.origin or next(iter(spec.submodule_search_locations or ()), None)
    paths = sysconfig.get_paths()
    stdlib = {paths[key] for key in ("stdlib", "platstdlib") if paths.get(key)}
    purelib = {paths[key] for key in ("purelib", "platlib") if paths.get(key)}
    return where is None or not any(inside(where, root) for root in stdlib) or any(inside(where, root) for root in purelib)
