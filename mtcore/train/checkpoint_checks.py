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


def damaged(path: Path, what: str) -> ModelFileError:
    """The one line for a checkpoint file whose content cannot be used: the file, what is wrong, the fix."""
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
        raise damaged(path, f"holds {type(data).__name__}, not the run's counters")
    if "step" not in data:  # it would resume at step 0 on top of the later weights
        raise damaged(path, "has no step, the step the checkpoint was written at")
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value, annotation = data[field.name], str(field.type)
        base = annotation.split("[", 1)[0].split(" |", 1)[0]
        if value is None and "None" in annotation:
            continue
        kinds = _KINDS.get(base)
        if kinds is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds):
            raise damaged(path, f"{field.name} is {str(value)[:40]!r}, not {'a whole number' if base == 'int' else 'a ' + base}")


def check_sampler_state(state: Any, path: Path) -> None:
    """``sampler.json``: where the batch sampler stopped (``epoch`` and ``step`` whole numbers >= 0, ``tasks`` a list of
    ids, ``rows`` and ``sampler`` mappings), as :meth:`~mtcore.sampling.batch_sampler.MultitaskBatchSampler.state_dict`
    writes it."""
    if not isinstance(state, dict):
        raise damaged(path, f"holds {type(state).__name__}, not the sampler's position")
    for key in ("epoch", "step"):
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise damaged(path, f"{key} is {str(value)[:40]!r}, not a whole number >= 0" if key in state else f"has no {key}")
    tasks = state.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise damaged(path, f"tasks is {str(tasks)[:40]!r}, not the list of the run's task ids" if "tasks" in state else "has no tasks")
    for key in ("rows", "sampler"):
        if key in state and state[key] is not None and not isinstance(state[key], dict):
            raise damaged(path, f"{key} is {str(state[key])[:40]!r}, not a mapping")
    if isinstance(state.get("seed"), bool) or not isinstance(state.get("seed", 0), int):
        raise damaged(path, f"seed is {str(state.get('seed'))[:40]!r}, not a whole number")


def check_scheduler_state(state: Any, scheduler: Any, path: Path) -> None:
    """The learning-rate scheduler's state: each key the live scheduler's state has, of the same kind; a key it has not
    (another torch version's, such as ``verbose``) only as plain data, and never one naming another of its attributes
    (``optimizer``: ``load_state_dict`` would replace it)."""
    if not isinstance(state, dict):
        raise damaged(path, "its scheduler state is not a mapping")
    live = scheduler.state_dict()
    for key, value in state.items():
        if key in live:
            if not _same_kind(value, live[key]):
                raise damaged(path, f"its scheduler's {key} is {str(value)[:40]!r}, not a {type(live[key]).__name__}")
        elif not isinstance(key, str) or hasattr(scheduler, key) or not _plain(value):
            raise damaged(path, f"its scheduler state has {str(key)!r}, which would replace this run's scheduler's own")


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
        raise damaged(path, "not the random-generator states mtcore writes")


def task_labels(model: Any) -> dict[str, list[str]]:
    """Each task's labels, in the order of its head's outputs (recorded in a checkpoint's ``state.json``)."""
    tasks = getattr(getattr(model, "module", model), "tasks", None) or {}
    return {str(task_id): [str(label) for label in (info.get("labels") or [])] for task_id, info in tasks.items()}


def check_task_labels(directory: Path, model: Any, state_data: Any) -> None:
    """The checkpoint's heads were trained with the labels its ``state.json`` records: a task whose labels are other now (its
    plugin's list was edited or reordered, its data say others) is refused, or the head's outputs would be read as the wrong
    labels. Checkpoints written before the record are not checked."""
    from mtcore.errors import ConfigError

    recorded = state_data.get("task_labels") if isinstance(state_data, dict) else None
    if not isinstance(recorded, dict):
        return
    for task_id, labels in task_labels(model).items():
        old = recorded.get(task_id)
        if isinstance(old, list) and [str(label) for label in old] != labels:
            raise ConfigError(f"checkpoint {str(directory)!r}: task {task_id!r} was trained with the labels {_listed(old)} and has "
                              f"{_listed(labels)} now (its plugin or its labels changed since), so the head's outputs would be read "
                              "as other labels; use the plugin version and labels the run trained with, or start a new run")


def task_rows(sampler: Any) -> dict[str, str]:
    """Each task's training rows as :func:`~mtcore.train.data_digest.split_digest` reads them (recorded in a checkpoint's
    ``state.json``): their token ids, labels and every other column the batches are cut from, whatever file paths, times
    or plugin folder they came from; a split it cannot read (a stream) is left out. Computed once per sampler."""
    from mtcore.train.data_digest import split_digest

    known = getattr(sampler, "_data_digests", None)
    if known is None:
        split = getattr(sampler, "split", "train")
        known = {str(task_id): split_digest(getattr(data, "splits", {}).get(split))
                 for task_id, data in (getattr(sampler, "data", None) or {}).items()}
        try:
            sampler._data_digests = known
        except AttributeError:  # a sampler that takes no attributes: computed again next time
            pass
    return {task: digest for task, digest in known.items() if isinstance(digest, str)}


def check_task_data(directory: Path, sampler: Any, state_data: Any) -> None:
    """Warn when a task's training data are not the checkpoint's (the same number of rows, or resuming is refused
    earlier): a label or a text edited in its files, another plugin or mtcore version preparing them. The resumed run
    trains on the data as they are now, so it is not the run an uninterrupted one would have been."""
    import warnings

    recorded = state_data.get("task_rows") if isinstance(state_data, dict) else None
    if not isinstance(recorded, dict):
        return  # a checkpoint written before mtcore recorded them
    changed = [task for task, now in task_rows(sampler).items() if isinstance(recorded.get(task), str) and recorded[task] != now]
    if changed:
        warnings.warn(f"resuming {str(directory)!r} with other training data than it was written with: {', '.join(changed)} "
                      f"(its files were edited — a label or a text — or another plugin or mtcore version prepares them); the run "
                      f"goes on with the data as they are now, so it is not the run an uninterrupted one would have been",
                      UserWarning, stacklevel=3)


def _listed(labels: list[Any], limit: int = 8) -> str:
    shown = ", ".join(str(label) for label in labels[:limit])
    return f"[{shown}{', ...' if len(labels) > limit else ''}] ({len(labels)})"
