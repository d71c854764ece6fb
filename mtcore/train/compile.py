"""``torch.compile`` for the shared encoder (config key ``compile``).

Only the encoder is compiled, in place (``nn.Module.compile``: parameter names and saved
weights stay the same); the small per-task heads stay eager, so switching tasks does not
recompile. Batches have many lengths: ``dynamic=True`` compiles one graph with a symbolic
length instead of one per length, and ``batching.pad_to_multiple_of`` (e.g. 64) keeps the
number of distinct shapes small when ``dynamic`` is off.
"""

from __future__ import annotations

from typing import Any


def compile_encoder(model: Any, *, dynamic: bool | None = True, mode: str | None = None, backend: str = "inductor") -> Any:
    """Compile ``model.encoder`` in place and return ``model``."""
    import torch

    model.encoder.compile(dynamic=dynamic, mode=mode, backend=backend)
    # more distinct shapes (lengths x batch sizes x tasks) than the default limit of 8 before falling back to eager
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    return model
