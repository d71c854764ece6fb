"""Where a GPU training step's time goes: a few extra steps under ``torch.profiler``.

Used by ``gpu_bench.py`` (``--diagnose`` on by default in ``gpu.sh``): after a variant's timed
steps it profiles a few more (after a synchronisation, so that no earlier step's kernels are
counted) and reports, per step, the kernels' total device time, the share of those steps' wall
time that the GPU was busy, the device time by kind of kernel (matmul, attention, Triton-fused,
other) and the costliest kernels. A busy share near 100% means the kernels themselves are the
limit (look at the kinds); a low one means the host (Python, kernel launches, data) keeps the GPU
waiting. Every batch comes from one task, so a few steps may have another task mix than the
timed ones: compare kinds within one diagnosis, and profile several steps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

#: Kernel name fragments -> kind (first match wins; names lower-cased).
KINDS = (
    ("attention", ("flash", "fmha", "attention", "varlen")),
    ("matmul", ("gemm", "cutlass", "cublas", "nvjet", "sm90_xmma", "wgmma")),
    ("triton (fused)", ("triton_",)),
    ("optimizer", ("adam", "multi_tensor")),
    ("copy/fill", ("memcpy", "memset", "copy_", "fill")),
)


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    for kind, fragments in KINDS:
        if any(fragment in lowered for fragment in fragments):
            return kind
    return "other"


def profiler(device: Any) -> Any:
    import torch

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    return torch.profiler.profile(activities=activities)


def print_tables(name: str, prof: Any, device: Any) -> None:
    """The profiled steps' costliest operators: host time (dispatch, Python) and device time."""
    table = prof.key_averages()
    print(f"--- profile of {name}: by self host time", file=sys.stderr)
    print(table.table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=60), file=sys.stderr)
    if device.type == "cuda":
        print(f"--- profile of {name}: by device time", file=sys.stderr)
        print(table.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60), file=sys.stderr)


def diagnose(run_step: Callable[[int], None], steps: int, device: Any, timed_ms_per_step: float, top: int = 8) -> dict[str, Any]:
    """Profile ``steps`` calls of ``run_step(k)``; kernel time per step, busy share, kinds, top kernels."""
    import torch
    from torch.autograd import DeviceType

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()  # kernels still queued from earlier steps must not be counted
    with profiler(device) as prof:
        started = time.perf_counter()
        for k in range(steps):
            run_step(k)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
    total_us = sum(e.self_device_time_total for e in kernels)
    by_kind: dict[str, float] = {}
    for e in kernels:
        kind = kernel_kind(e.key)
        by_kind[kind] = by_kind.get(kind, 0.0) + e.self_device_time_total
    kernel_ms = total_us / 1000 / steps
    costliest = sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)[:top]
    return {
        "profiled_steps": steps,
        "profiled_ms_per_step": round(1000 * wall / steps, 2),
        "kernel_ms_per_step": round(kernel_ms, 2) if cuda else None,
        "kernels_per_step": round(sum(e.count for e in kernels) / steps, 1) if cuda else None,
        # kernel time over the profiled steps' own wall time (the profiler slows the host a little,
        # so this errs low); the timed steps may have a different task mix than these few steps
        "gpu_busy": round(kernel_ms / (1000 * wall / steps), 3) if cuda and wall else None,
        "kernel_ms_vs_timed_step": round(kernel_ms / timed_ms_per_step, 3) if cuda and timed_ms_per_step else None,
        "kinds_ms_per_step": {k: round(v / 1000 / steps, 2) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
        "top_kernels": [{"name": e.key[:90], "ms_per_step": round(e.self_device_time_total / 1000 / steps, 2),
                         "calls_per_step": round(e.count / steps, 1)} for e in costliest],
    }
