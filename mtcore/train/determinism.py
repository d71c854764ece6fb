"""Bit-reproducible training on a GPU (config key ``deterministic``).

CPU runs of the same config are bit-identical already; on a GPU some kernels (cuBLAS's split
reductions, FlashAttention's backward, atomic adds) sum in an order that changes from run to
run. ``deterministic: true`` makes :class:`~mtcore.train.trainer.Trainer` run the whole run —
build and training loop — inside :func:`deterministic_run`, which, before the model is built
and moved to the device:

* sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in ``os.environ`` unless it is set already (cuBLAS
  needs it for deterministic matrix products). torch reads it once, at the first cuBLAS call of
  the process: when CUDA was used before (a Python user's earlier CUDA code, an earlier run in
  the same process) it may be too late, and a warning says so; set it in the environment before
  Python starts. The variable stays set after the run (cuBLAS has read it by then);
* ``torch.use_deterministic_algorithms(True)`` (not ``warn_only``): deterministic kernels where
  torch has them (FlashAttention's and the memory-efficient attention's backward, ``index_copy``,
  ``index_select``'s backward, ``scatter``; torch passes the flag to FlashAttention-3/4's backward
  too), a ``RuntimeError`` where it has none, which :func:`nondeterministic_error` turns into one
  line naming the operation;
* ``torch.backends.cudnn.benchmark = False`` and ``torch.backends.cudnn.deterministic = True``.

When ``train()`` returns or raises, the previous flags are restored (:func:`restore`), so a
Python process that goes on after ``Trainer(...).train()`` is left as it was.

No setting is refused beforehand: what mtcore runs — its heads' per-row cross-entropy, poolings,
padding-free ``index_select`` / ``index_copy``, SDPA, ``varlen_attn``, FlexAttention's Triton
backward, FA3/FA4 through torch, ``torch.compile`` (Inductor turns its own deterministic mode on) —
either has a deterministic kernel under the flag or is refused by torch at run time, which the
line above reports.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: The environment variable cuBLAS reads for its workspace, and the setting that makes it deterministic.
CUBLAS_VARIABLE = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_SETTING = ":4096:8"

#: What ``mt check`` prints for a config with ``deterministic: true``.
NOTE = ("the run is deterministic (deterministic: true): deterministic kernels only (torch.use_deterministic_algorithms, "
        "cuDNN deterministic, CUBLAS_WORKSPACE_CONFIG=:4096:8), so a GPU run repeats bit for bit but trains slower; an "
        "operation without a deterministic kernel stops the run in one line naming it")

#: torch's message for an operation without a deterministic implementation: "<op> does not have a deterministic ...".
_NO_KERNEL = re.compile(r"(\S+) does not have a deterministic implementation")


@dataclass(frozen=True)
class DeterminismState:
    """The process-wide flags :func:`enable` changes."""

    deterministic: bool
    warn_only: bool
    cudnn_benchmark: bool
    cudnn_deterministic: bool


def current_state() -> DeterminismState:
    """The flags as they are now."""
    import torch

    return DeterminismState(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                            bool(torch.backends.cudnn.benchmark), bool(torch.backends.cudnn.deterministic))


def enable() -> DeterminismState:
    """Turn deterministic kernels on for this process (see the module docstring); returns the flags as they were.

    Warns (one line) when CUDA was initialised before ``CUBLAS_WORKSPACE_CONFIG`` was set here: torch may have read
    the variable already, and then every cuBLAS call raises (or, for work done before, was not deterministic).
    """
    import torch

    previous = current_state()
    if not os.environ.get(CUBLAS_VARIABLE):
        os.environ[CUBLAS_VARIABLE] = CUBLAS_SETTING
        if torch.cuda.is_initialized():
            warnings.warn(f"deterministic: true, but CUDA was already used in this process before {CUBLAS_VARIABLE} was set, "
                          f"which cuBLAS may have read already; set {CUBLAS_VARIABLE}={CUBLAS_SETTING} in the environment "
                          "before Python starts", UserWarning, stacklevel=2)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    return previous


def restore(state: DeterminismState) -> None:
    """Put the flags back as :func:`enable` found them (the environment variable stays)."""
    import torch

    torch.use_deterministic_algorithms(state.deterministic, warn_only=state.warn_only)
    torch.backends.cudnn.benchmark = state.cudnn_benchmark
    torch.backends.cudnn.deterministic = state.cudnn_deterministic


def nondeterministic_error(error: BaseException) -> str | None:
    """The one line for ``error`` when it is torch refusing a non-deterministic kernel (the operation it names, and
    the fix), else None. Exceptions wrapping it (``torch.compile``'s) are looked through."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = " ".join(str(error).split())
        found = _NO_KERNEL.search(text)
        if found:
            return (f"deterministic: true, but torch has no deterministic implementation of {found.group(1)}, which this run "
                    "calls (torch.use_deterministic_algorithms refused it); set deterministic: false, or change the setting "
                    "that runs it (a task's head or head_options, the loss strategy, encoder.attn_implementation or "
                    "encoder.options)")
        if "uses CuBLAS" in text and CUBLAS_VARIABLE in text:
            return (f"deterministic: true, but cuBLAS did not get {CUBLAS_VARIABLE}={CUBLAS_SETTING} before its first call "
                    f"in this process (it is {os.environ.get(CUBLAS_VARIABLE)!r} now; CUDA code ran before the run set "
                    f"it?); set {CUBLAS_VARIABLE}={CUBLAS_SETTING} in the environment before Python starts, or set "
                    "deterministic: false")
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return None


@contextmanager
def deterministic_run(enabled: bool) -> Iterator[None]:
    """Run the block with deterministic kernels when ``enabled`` (:func:`enable`), then restore the flags, also when
    it raises. torch's refusal of a non-deterministic kernel inside becomes a one-line
    :class:`~mtcore.train.monitor.TrainingError` (exit code 1). Does nothing when not ``enabled``."""
    if not enabled:
        yield
        return
    previous = enable()
    try:
        yield
    except RuntimeError as error:
        line = nondeterministic_error(error)
        if line is None:
            raise
        from mtcore.train.monitor import TrainingError

        raise TrainingError(line) from error
    finally:
        restore(previous)
