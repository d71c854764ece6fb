"""``torch.compile`` for the shared encoder (config key ``compile``).

Only the encoder is compiled, in place (``nn.Module.compile``: parameter names and saved
weights stay the same); the small per-task heads stay eager, so switching tasks does not
recompile. Batches have many lengths: ``dynamic=True`` compiles one graph with a symbolic
length instead of one per length, and ``batching.pad_to_multiple_of`` (e.g. 64) keeps the
number of distinct shapes small when ``dynamic`` is off.

``regional=True`` compiles each transformer layer instead of the whole encoder (PyTorch's
"regional compilation" recipe): the layers share their code, so one layer's graph serves all of
them and compilation takes a fraction of the time (a BERT-base run waits seconds, not minutes).
The embeddings and the pooler, a few small kernels, then run eagerly. Encoders without a list of
identical layers are compiled whole.

With task-specific top layers (``encoder.task_layers``), ``regional=True`` compiles every task's copies
as well; a whole-encoder graph (``regional: false``) is compiled once per task (its top layers differ).
"""

from __future__ import annotations

from typing import Any


def compile_encoder(model: Any, *, dynamic: bool | None = True, mode: str | None = None, backend: str = "inductor",
                    regional: bool = True) -> Any:
    """Compile ``model.encoder`` (or, with ``regional``, each of its layers) in place and return ``model``."""
    import torch

    layers = repeated_layers(model.encoder) if regional else []
    own = getattr(model, "task_layers", None)  # task-specific copies run in the encoder's place: compiled alike
    copies = [layer for task in own.copies.values() for layer in task] if own is not None else []
    for module in (layers + copies if layers else [model.encoder]):
        module.compile(dynamic=dynamic, mode=mode, backend=backend)
    # more distinct shapes (lengths x batch sizes x tasks) than the default limit of 8 before falling back to eager
    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"  # torch < 2.7
    setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 64))
    return model


def repeated_layers(encoder: Any) -> list[Any]:
    """The encoder's transformer layers: the modules of its longest ``nn.ModuleList`` of modules of
    one class, or of every such list of that length (XLM-style parallel ``attentions``/``ffns``); [] if none."""
    from torch import nn

    lists = [list(m) for m in encoder.modules() if isinstance(m, nn.ModuleList) and len(m) > 1 and len({type(x) for x in m}) == 1]
    longest = max((len(layers) for layers in lists), default=0)
    return [module for layers in lists if len(layers) == longest for module in layers]
