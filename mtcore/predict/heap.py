"""A fixed mmap threshold for glibc's ``malloc`` while a file is predicted chunk after chunk.

glibc serves a block of 128 KiB or more with its own ``mmap``, handed back to the system when freed,
but freeing such a block raises that threshold to the block's size (up to 32 MiB: its "dynamic mmap
threshold"). torch's CPU tensors are plain ``malloc`` blocks; the first forward pass frees
activations of a few MiB, and from then on every block below that size comes from the heap. An
extractive-QA chunk (windows of 384 tokens) mixes such short-lived activations and score matrices
with blocks that live until the chunk ends (each batch's logits, the decoded windows), so the freed
space is left in pieces too small for the next chunk's blocks and the heap grows on: in one process,
15 chunks of 200 QA rows left 154 MB in use and 222 MB free in glibc's heap (``mallinfo2``), and
RSS grew ~11 MB a chunk; with the threshold fixed at :data:`MMAP_THRESHOLD`, 10 MB free and RSS flat
(``benchmarks/predict_memory.py``, ``docs/benchmarks.md``). ``malloc_trim`` does not help: the
space is fragmented, not free at the heap's top.

:func:`fix_mmap_threshold` sets the threshold once (``mallopt(M_MMAP_THRESHOLD)``, which also turns
the dynamic threshold off) for the process; nothing is done on another C library, or when the user
set one (``MALLOC_MMAP_THRESHOLD_``, or ``glibc.malloc.mmap_threshold`` in ``GLIBC_TUNABLES``).
"""

from __future__ import annotations

import os

#: Blocks of this size or more are mapped, and unmapped when freed (glibc starts at 128 KiB).
MMAP_THRESHOLD = 1 << 20
#: ``mallopt``'s parameter number for it (``<malloc.h>``).
M_MMAP_THRESHOLD = -3

_fixed: bool | None = None  # None: not tried yet


def user_threshold() -> bool:
    """Whether the environment already sets glibc's mmap threshold (then it is left alone)."""
    return "MALLOC_MMAP_THRESHOLD_" in os.environ or "glibc.malloc.mmap_threshold" in os.environ.get("GLIBC_TUNABLES", "")


def fix_mmap_threshold() -> bool:
    """Set glibc's mmap threshold to :data:`MMAP_THRESHOLD` for this process, once; whether it is set."""
    global _fixed
    if _fixed is None:
        _fixed = False
        try:
            glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
        except (AttributeError, ValueError, OSError):
            glibc = ""
        if glibc.startswith("glibc") and not user_threshold():
            import ctypes

            try:
                mallopt = ctypes.CDLL(None).mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _fixed = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return _fixed
