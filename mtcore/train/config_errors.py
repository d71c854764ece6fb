"""A config's mistakes as one line each: the dotted key, what it takes, and "did you mean".

:func:`format_error` turns one pydantic error into a line such as
``config key 'optimizer.lrr' is not allowed (did you mean 'optimizer.lr'?)``; a key put in the wrong
section (``layer_decay=0.8``), joined to its section as other tools spell it (``eval_every``), or
an option of a sampler or loss strategy given bare (``temperature=2``) is pointed to where it
belongs. :func:`validation_error` is the :class:`~mtcore.errors.ConfigError` of a whole
``ValidationError`` (its first problem, and how many more).
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from mtcore.errors import ConfigError
from mtcore.train.config import TrainConfig
from mtcore.train.overrides import NO_DEFAULT, model_at, schema_at

__all__ = ["format_error", "validation_error"]


def _split_synonym(value: Any, choices: Iterable[Any]) -> str:
    """``" (did you mean 'validation'?)"`` for another name of a split (``dev``, ``val``, ``eval``: what files are named)."""
    from mtcore.data.files import splits_named

    named = [split for split in sorted(splits_named(str(value))) if split in set(choices)] if isinstance(value, str) else []
    return " (did you mean " + " or ".join(repr(split) for split in named) + "?)" if named else ""


def _suggest(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """``" (did you mean 'optimizer.lr'?)"`` from bare candidate names, or ``""``."""
    candidates = list(candidates)
    close = difflib.get_close_matches(str(name), candidates, n=3, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[c] for c in difflib.get_close_matches(str(name).lower(), list(lowered), n=3, cutoff=0.6)]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(prefix + c) for c in close) + "?)"


def _section_keys(model: type[BaseModel] = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key of the config's sections (``optimizer.layer_decay``, ``schedule.max_steps``, ...)."""
    keys = []
    for name in model.model_fields:
        keys.append(prefix + name)
        sub = model_at([*prefix.split(".")[:-1], name]) if prefix else model_at([name])
        if sub is not None and name != "tasks":
            keys.extend(_section_keys(sub, f"{prefix}{name}."))
    return keys


def _elsewhere(name: str, exact_only: bool = False) -> str:
    """``" (did you mean 'optimizer.layer_decay'?)"`` for a key that belongs to another section (``layer_decay=0.8``,
    ``optimizer.max_steps``, ``max_length=64``: a task's own, ``tasks.0.max_length``): the sections' keys with that
    name, or (unless ``exact_only``) close to it."""
    from mtcore.train.config import TaskEntry

    keys = [key for key in _section_keys() if "." in key] + [f"tasks.0.{field}" for field in TaskEntry.model_fields]
    exact = [key for key in keys if key.rsplit(".", 1)[1] == name] or _joined(name, keys)
    if exact:
        option = _component_option(name) if len(exact) == 1 else ""  # temperature: distill's, or a sampler's option
        if option:
            return f" (did you mean {exact[0]!r} or " + option.removeprefix(" (did you mean ")
        return " (did you mean " + " or ".join(map(repr, exact[:2])) + "?)"
    if exact_only:
        return ""
    by_name: dict[str, list[str]] = {}
    for key in keys:
        by_name.setdefault(key.rsplit(".", 1)[1], []).append(key)
    close = difflib.get_close_matches(name, list(by_name), n=2, cutoff=0.8)
    found = [key for match in close for key in by_name[match]][:2]
    return " (did you mean " + " or ".join(map(repr, found)) + "?)" if found else _component_option(name)


# Other tools' words for a section, as the first part of a joined key (``eval_every``, ``save_steps``).
_SECTION_WORDS = {"eval": "evaluation", "evaluation": "evaluation", "save": "checkpoint", "ckpt": "checkpoint",
                  "checkpoint": "checkpoint", "log": "logging", "logging": "logging"}


def _joined(name: str, keys: list[str]) -> list[str]:
    """``['evaluation.every']`` for a section and its key joined into one name (``eval_every``, ``save_every``,
    ``logging_steps``, ``checkpoint_keep_last``), as other tools spell them; ``[]`` when ``name`` is not one."""
    head, _, rest = name.lower().partition("_")
    section = _SECTION_WORDS.get(head)
    rest = "every" if rest == "steps" else rest  # Hugging Face's eval_steps, save_steps, logging_steps
    wanted = f"{section}.{rest}" if section and rest else ""
    return [key for key in keys if key == wanted]


def _component_option(name: str) -> str:
    """``" (did you mean 'sampler.options.temperature'? an option of sampler 'temperature')"`` for an option of a
    registered sampler or loss strategy given as a config key (``temperature=2``), or ``""``."""
    import inspect

    try:
        from mtcore.plugins import load_registry

        registry = load_registry(warn=False)
        for kind in ("sampler", "loss"):
            for component in registry.components.get(kind, {}).values():
                try:
                    factory = component.load()
                    names = set(getattr(factory, "defaults", None) or {}) | {
                        param.name for param in inspect.signature(factory).parameters.values()
                        if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL)
                        and param.name not in ("self", "sizes", "seed", "task_ids", "tasks")}
                except Exception:  # noqa: BLE001 - a hint never hides the error it is for
                    continue
                if name in names:
                    return f" (did you mean '{kind}.options.{name}'? an option of {kind} {component.name!r})"
    except Exception:  # noqa: BLE001
        return ""
    return ""


def _literal_choices(loc: tuple[Any, ...]) -> list[str]:
    def collect(tp: Any) -> list[str]:
        if typing.get_origin(tp) is typing.Literal:
            return [str(a) for a in typing.get_args(tp)]
        return [c for arg in typing.get_args(tp) for c in collect(arg)]

    return collect(schema_at(loc)[0]) if loc else []


#: What a config key of each pydantic type takes, for the message about a null (empty) value.
_EXPECTED = {"float_type": "a number", "int_type": "a whole number", "bool_type": "true or false", "string_type": "text",
             "list_type": "a list", "tuple_type": "a list", "dict_type": "a mapping", "model_type": "a mapping of keys"}


def _null_error(key: str, loc: tuple[Any, ...], kind: str) -> str:
    """``optimizer.lr: null`` (or ``optimizer.lr=``): what the key takes, and its default."""
    default = schema_at(loc)[1] if loc else NO_DEFAULT
    if isinstance(default, BaseModel):
        fix = "; give its keys, or leave the section out for its defaults"
    elif default is not NO_DEFAULT and default is not None:
        shown = json.dumps(list(default) if isinstance(default, tuple) else default)
        fix = f"; give {_EXPECTED[kind]}, or leave the key out for the default ({shown})"
    else:
        fix = f"; give {_EXPECTED[kind]}"
    return f"config key {key!r} is empty (null){fix}"


def _key(loc: Iterable[Any]) -> str:
    return ".".join(str(p) for p in loc)


def format_error(error: Mapping[str, Any]) -> str:
    """One line for one pydantic error dict, naming the dotted config key."""
    loc = tuple(p for p in error.get("loc", ()) if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
    kind = error.get("type", "")
    value = error.get("input")
    if loc and loc[-1] == "[key]":  # a mapping's key is wrong: name the mapping
        loc = loc[:-2]
        error = {**error, "msg": "a key: " + str(error.get("msg", "invalid value"))[:1].lower() + str(error.get("msg", ""))[1:]}
    key = _key(loc)
    if kind == "extra_forbidden":
        parent = model_at(loc[:-1])
        prefix = _key(loc[:-1]) + "." if len(loc) > 1 else ""
        hint = (_elsewhere(str(loc[-1]), exact_only=True)  # batch_size: batching.batch_size, not the close 'batching'
                or _suggest(str(loc[-1]), parent.model_fields if parent else [], prefix) or _elsewhere(str(loc[-1])))
        if not hint and parent is not None:
            hint = "; allowed here: " + ", ".join(parent.model_fields)
        return f"config key {key!r} is not allowed{hint}"
    if kind == "missing":
        return f"config key {key!r} is required"
    if kind == "literal_error":
        choices = _literal_choices(loc)
        shown = ", ".join(repr(c) for c in choices) if choices else error.get("ctx", {}).get("expected", "")
        return f"config key {key!r}: {value!r} is not one of {shown}{_suggest(str(value), choices) or _split_synonym(value, choices)}"
    if value is None and kind in _EXPECTED and key:
        return _null_error(key, loc, kind)
    message = str(error.get("msg", "invalid value"))
    message = re.sub(r"a valid dictionary or instance of \w+", "a mapping of keys", message.removeprefix("Value error, "))
    message = message[:1].lower() + message[1:]
    where = f"config key {key!r}: " if key else "config: "
    shown = "" if isinstance(value, (dict, list)) or value is None or kind.startswith("value_error") else f" (got {value!r})"
    if isinstance(value, bool) and kind.startswith("string"):
        shown += "; YAML reads yes/no/on/off/true/false as booleans: quote the word ('yes')"
    if isinstance(value, datetime.date) and kind.startswith("string"):
        shown = f" (got the date {value}); YAML reads {value} as a date: quote it ('{value}')"
    return f"{where}{message}{shown}"


def validation_error(exc: ValidationError) -> ConfigError:
    """A :class:`ConfigError` with the first problem of a pydantic ValidationError."""
    errors = exc.errors()
    first = errors[0]
    if first.get("type") == "missing":  # 'encodr:' for 'encoder:': the misspelt key, with its "did you mean", says more
        wanted = str(first.get("loc", ("",))[-1])
        misspelt = [e for e in errors if e.get("type") == "extra_forbidden" and e.get("loc")[:-1] == first.get("loc")[:-1]
                    and difflib.get_close_matches(str(e["loc"][-1]), [wanted], n=1, cutoff=0.6)]
        first = misspelt[0] if misspelt else first
    line = format_error(first)
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ConfigError(line)
