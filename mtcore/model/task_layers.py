"""Task-specific top layers: the encoder's last ``k`` transformer layers copied once per task.

::

    encoder: {path: DeepPavlov/rubert-base-cased, task_layers: 2}

With ``task_layers: k`` the embeddings and the first ``L - k`` layers stay shared, and every task
(every head) gets its own copy of the last ``k`` layers, starting from the pretrained weights
(partial sharing: "hard sharing of the bottom, task-specific top", as in Ruder 2017's overview,
a common baseline in multitask NLP). A task's batches run through the shared layers and then
through its own top layers, which only its loss trains; the learning rate of the copies is the
encoder's (with ``layer_decay``, that of the layer each copies).

Mechanics: the encoder keeps its own last ``k`` layers (the *templates*, frozen, never run while
a task is active, and saved as they were loaded in ``encoder/``), and the copies live in
``model.task_layers[task_id]``. :meth:`TaskLayers.active` puts a task's copies into the encoder's
layer list for one forward pass and puts the templates back after it, so the encoder's own code
(padding-free, SDPA, gradient checkpointing, any architecture with a list of layers) runs
unchanged. A saved model writes each task's copies to ``task_layers/<file>.safetensors`` (the head file's name: ``rsg:terra`` ->
``rsg--terra``) and
records ``k`` in ``mtcore.json``; ``mt export`` writes a task's plain model with its own top
layers in place, so the export is a standard model with ``L`` layers.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from mtcore.errors import ConfigError, ModelFileError

#: The folder of a saved model that holds the task-specific layers.
TASK_LAYERS_DIR = "task_layers"


def check_count(value: Any, layers: int | None = None, where: str = "task_layers") -> int:
    """``value`` as a number of task-specific top layers (0: none), checked against the encoder's ``layers``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where} must be a whole number of top layers >= 0 (0: every layer shared), not {value!r}")
    if layers is not None and value >= layers:
        raise ConfigError(f"{where}={value} but the encoder has {layers} layers: at least one must stay shared; "
                          f"give at most {layers - 1}")
    return value


def layer_stack(encoder: nn.Module) -> tuple[str, nn.ModuleList]:
    """The encoder's list of transformer layers (as ``freeze_layers`` finds it), or a ConfigError for task_layers."""
    from mtcore.model.encoder import find_layers

    try:
        return find_layers(encoder)
    except ConfigError:
        raise ConfigError(f"task_layers: cannot find the list of transformer layers of encoder {type(encoder).__name__}; "
                          "leave task_layers out") from None


class TaskLayers(nn.Module):
    """The task-specific copies of the encoder's top layers, keyed by task id (a ``ModuleDict`` inside).

    :param encoder: the shared encoder (its layer list is found as for ``freeze_layers``).
    :param count: how many top layers each task gets (>= 1, fewer than the encoder has).
    """

    def __init__(self, encoder: nn.Module, count: int) -> None:
        super().__init__()
        name, stack = layer_stack(encoder)
        self.count = check_count(count, len(stack))
        self.stack_name: str = name
        self.first: int = len(stack) - self.count
        self.copies = nn.ModuleDict()
        object.__setattr__(self, "_stack", stack)  # not a submodule: the encoder owns it
        object.__setattr__(self, "_templates", list(stack)[self.first:])
        # the copies train where the encoder's layers would (freeze_encoder / freeze_layers keep them frozen too)
        self._trainable = [[p.requires_grad for p in template.parameters()] for template in self._templates]
        for template in self._templates:
            template.requires_grad_(False)

    def add(self, task_id: str) -> None:
        """Give ``task_id`` its own copies of the templates (the encoder's pretrained top layers)."""
        if task_id in self.copies:
            raise ConfigError(f"task {task_id!r} already has task-specific layers in this model")
        # the copies share the templates' config objects: a later set_attn_implementation (enable_padding_free) reaches them too
        shared = {id(config): config for template in self._templates for module in template.modules()
                  if (config := getattr(module, "config", None)) is not None and not isinstance(config, nn.Module)}
        own = nn.ModuleList(copy.deepcopy(template, dict(shared)) for template in self._templates)
        for layer, flags in zip(own, self._trainable):
            for param, flag in zip(layer.parameters(), flags):
                param.requires_grad_(flag)
        self.copies[task_id] = own

    def layer_names(self) -> list[str]:
        """The encoder's names of the task-specific positions, e.g. ``encoder.layer.10`` (prefix ``stack_name``)."""
        return [f"{self.stack_name}.{self.first + j}" for j in range(self.count)]

    @contextlib.contextmanager
    def active(self, task_id: str) -> Iterator[None]:
        """Within the block, the encoder's top layers are ``task_id``'s copies."""
        own = self.copies[task_id]
        for j, layer in enumerate(own):
            self._stack[self.first + j] = layer
        try:
            yield
        finally:
            for j, template in enumerate(self._templates):
                self._stack[self.first + j] = template

    def install(self, task_id: str) -> None:
        """Make ``task_id``'s copies the encoder's own top layers for good (an export's working copy: the encoder
        is then that task's plain model, and :meth:`active` for that task changes nothing)."""
        own = self.copies[task_id]
        for j, layer in enumerate(own):
            self._stack[self.first + j] = layer
        object.__setattr__(self, "_templates", list(own))

    def extra_repr(self) -> str:
        return f"count={self.count}, positions={self.first}..{self.first + self.count - 1} of {self.stack_name}"


# ---- saving and loading -------------------------------------------------------------------------
def manifest_entry(task_layers: TaskLayers) -> dict[str, Any]:
    """What ``mtcore.json`` records of the task layers (under ``encoder.task_layers``)."""
    return {"count": task_layers.count, "layers": task_layers.layer_names(), "dir": TASK_LAYERS_DIR}


def save(task_layers: TaskLayers, root: Path, task_id: str, file_name: str) -> str:
    """Write ``task_id``'s copies to ``root/task_layers/<file_name>``; returns the path relative to ``root``."""
    from safetensors.torch import save_file

    from mtcore.model.serialization import head_state

    (root / TASK_LAYERS_DIR).mkdir(exist_ok=True)
    rel = f"{TASK_LAYERS_DIR}/{file_name}"
    save_file(head_state(task_layers.copies[task_id]), str(root / rel), metadata={"format": "pt", "task": task_id})
    return rel


def load(task_layers: TaskLayers, root: Path, task_id: str, rel: Any) -> None:
    """Load ``task_id``'s copies from the file ``rel`` names (keys, shapes and task checked)."""
    from mtcore.model.serialization import MANIFEST_NAME, load_head_weights

    if not rel:
        raise ModelFileError(f"{root / MANIFEST_NAME}: task {task_id!r} lists no task_layers_file though the model has task-specific "
                             "layers (damaged manifest)")
    load_head_weights(root, task_id, {"head_file": rel}, task_layers.copies[task_id], what="task-specific layers")


def parameter_groups(task_layers: TaskLayers, encoder_lr: float, weight_decay: float, layer_decay: float | None) -> list[dict[str, Any]]:
    """Optimizer groups of the copies: the encoder's learning rate (with ``layer_decay``, that of the layer each
    copies: ``encoder_lr * layer_decay ** (count - 1 - j)`` for copy ``j``), no weight decay on biases and norms."""
    from mtcore.model.param_groups import split_decay

    by_power: dict[int, tuple[list[nn.Parameter], list[nn.Parameter]]] = {}
    for own in task_layers.copies.values():
        for j, layer in enumerate(own):
            power = task_layers.count - 1 - j if layer_decay not in (None, 1) else 0
            decay, plain = split_decay(layer)
            into = by_power.setdefault(power, ([], []))
            into[0].extend(decay)
            into[1].extend(plain)
    groups = []
    for power, (decay, plain) in sorted(by_power.items()):
        name = "task_layers" if layer_decay in (None, 1) else f"task_layers.layer{task_layers.first + task_layers.count - 1 - power}"
        lr = encoder_lr * (layer_decay ** power if layer_decay not in (None, 1) else 1.0)
        groups += [{"name": name, "params": decay, "lr": lr, "weight_decay": weight_decay},
                   {"name": f"{name}_no_decay", "params": plain, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
