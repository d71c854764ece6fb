"""What a checkpoint's files hold, checked before the live objects take it: a damaged or edited file (a value of
another type, a key no such object has, a state of another shape) is one :class:`~mtcore.errors.ModelFileError`
naming the file, not an "unexpected TypeError" steps later, and never replaces an attribute of the live learning-rate
scheduler (its ``load_state_dict`` updates ``__dict__`` with whatever it is given)."""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path
from typing import Any

from mtcore.errors import ModelFileError

_FIX = "a damaged or edited file: delete the checkpoint or resume from an earlier one"


def _bad(path: Path, what: str) -> ModelFileError:
    return ModelFileError(f"checkpoint file {str(path)!r}: {what} ({_FIX})")


def _same_kind(value: Any, like: Any) -> bool:
    """Whether ``value`` may stand where the live object has ``like`` (numbers for numbers, lists for lists and tuples)."""
    if like is None or value is None:
        return True
    if isinstance(like, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(like, bool)
    if isinstance(like, numbers.Number):
        return isinstance(value, numbers.Number)
    if isinstance(like, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(like))


#: What each annotation of the run's counters takes (``None`` too where it is optional).
_KINDS = {"int": (int,), "float": (int, float), "bool": (bool,), "dict": (dict,)}


def check_train_state(data: Any, path: Path, cls: type) -> None:
    """``state.json``: a mapping whose known fields hold values of their fields' kinds (``step`` a whole number, ...)."""
    if not isinstance(data, dict):
        raise _bad(path, f"holds {type(data).__name__}, not the run's counters")
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value, annotation = data[field.name], str(field.type)
        base = annotation.split("[", 1)[0].split(" |", 1)[0]
        if value is None and "None" in annotation:
            continue
        kinds = _KINDS.get(base)
        if kinds is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds):
            raise _bad(path, f"{field.name} is {str(value)[:40]!r}, not {'a whole number' if base == 'int' else 'a ' + base}")


def check_scheduler_state(state: Any, scheduler: Any, path: Path) -> None:
    """The learning-rate scheduler's state: each key the live scheduler's state has, of the same kind; a key it has not
    (another torch version's, such as ``verbose``) only as plain data, and never one naming another of its attributes
    (``optimizer``: ``load_state_dict`` would replace it)."""
    if not isinstance(state, dict):
        raise _bad(path, "its scheduler state is not a mapping")
    live = scheduler.state_dict()
    for key, value in state.items():
        if key in live:
            if not _same_kind(value, live[key]):
                raise _bad(path, f"its scheduler's {key} is {str(value)[:40]!r}, not a {type(live[key]).__name__}")
        elif not isinstance(key, str) or hasattr(scheduler, key) or not _plain(value):
            raise _bad(path, f"its scheduler state has {str(key)!r}, which would replace this run's scheduler's own")


def _plain(value: Any) -> bool:
    """A number, text, true/false, null, or a list of them."""
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, (bool, int, float, str))


def check_rng(state: Any, path: Path) -> None:
    """An ``rng-<rank>`` state: Python's, NumPy's and torch's generator states in the shapes :func:`capture_rng` writes."""
    import torch

    try:
        version, internal, gauss = state["python"]
        numpy_state = state["numpy"]
        ok = (isinstance(version, int) and len(internal) == 625 and isinstance(numpy_state, dict)
              and isinstance(numpy_state["keys"], torch.Tensor) and numpy_state["keys"].numel() == 624
              and isinstance(state["torch"], torch.Tensor))
    except (TypeError, KeyError, ValueError, IndexError):
        ok = False
    if not ok:
        raise _bad(path, "not the random-generator states mtcore writes")
