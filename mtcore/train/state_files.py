"""Nested training state (optimizer, scheduler, RNG states) as safetensors + JSON: no pickle.

:func:`save_state` writes ``<stem>.safetensors`` (every tensor of the structure) and
``<stem>.json`` (the structure itself, with ``{"$tensor": "t3"}`` where tensor ``t3`` was);
:func:`load_state` puts the two back together. Supported values: dicts (keys of any JSON type,
kept with their type: optimizer states are keyed by ``int``), lists, tuples, strings, numbers
(``nan`` and ``inf`` included), booleans, ``None``, tensors and NumPy scalars. Anything else is
a ``TypeError`` naming where it was, so a new kind of state cannot be saved half-way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtcore.errors import ModelFileError

_SCALARS = (str, int, float, bool, type(None))


def _encode(value: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous().clone()
        return {"$tensor": name}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, _SCALARS):
                raise TypeError(f"cannot save state at {where}: dict key {key!r} is a {type(key).__name__}")
        return {"$dict": [[key, _encode(item, tensors, f"{where}.{key}")] for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_encode(item, tensors, f"{where}[{i}]") for i, item in enumerate(value)]
        return {"$tuple": items} if isinstance(value, tuple) else items
    raise TypeError(f"cannot save state at {where}: a {type(value).__name__} is neither a tensor nor plain data")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(item, tensors) for item in value]
    if isinstance(value, dict):
        if "$tensor" in value:
            return tensors[value["$tensor"]]
        if "$tuple" in value:
            return tuple(_decode(item, tensors) for item in value["$tuple"])
        return {key: _decode(item, tensors) for key, item in value["$dict"]}
    return value


def save_state(value: Any, stem: Path) -> None:
    """Write ``value`` to ``stem.safetensors`` and ``stem.json`` (each via a temporary file)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(value, tensors, stem.name)
    weights, layout = stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")
    for path, write in ((weights, lambda p: save_file(tensors, str(p))),
                        (layout, lambda p: p.write_text(json.dumps(structure), encoding="utf-8"))):
        tmp = path.with_name(".tmp-" + path.name)
        write(tmp)
        os.replace(tmp, path)


def load_state(stem: Path) -> Any:
    """Read what :func:`save_state` wrote (tensors on the CPU); one-line ModelFileError when incomplete."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, layout = stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")
    for path in (weights, layout):
        if not path.is_file():
            raise ModelFileError(f"checkpoint file {str(path)!r} is missing; the checkpoint is incomplete, delete it or resume from an earlier one")
    path = weights  # the file being read, named in the error
    try:
        tensors = load_file(str(weights))
        path = layout
        return _decode(json.loads(layout.read_text(encoding="utf-8")), tensors)
    except (SafetensorError, ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: [[[[... thousands deep
        raise ModelFileError(f"checkpoint file {str(path)!r} is unreadable ({type(exc).__name__}); "
                             "delete the checkpoint or resume from an earlier one") from None
