"""Chunked prediction fixes glibc's mmap threshold (:mod:`mtcore.predict.heap`): a freed block no longer moves the next
blocks of its size into the heap, where a file of many extractive-QA chunks grew the heap chunk after chunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mtcore.predict import heap

# malloc and free an 8 MiB block (glibc maps it, and raises its mmap threshold to 8 MiB when it is freed), optionally
# fix the threshold, then malloc 2 MiB: whether that block was mapped (mallinfo's mapped-block count went up)
PROBE = """
import ctypes, json, sys
from mtcore.predict import heap
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                    "uordblks", "fordblks", "keepcost")]
libc.mallinfo.restype = Info
libc.free(libc.malloc(8 << 20))
fixed = heap.fix_mmap_threshold() if sys.argv[1] == "fix" else False
before = libc.mallinfo().hblks
block = libc.malloc(2 << 20)
print(json.dumps({"fixed": fixed, "mapped": libc.mallinfo().hblks > before}))
libc.free(block)
"""


def _probe(mode: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not (getattr(os, "confstr_names", {}).get("CS_GNU_LIBC_VERSION") and
                         (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")), reason="glibc's malloc only")
def test_a_freed_block_does_not_move_the_next_into_the_heap():
    assert _probe("plain") == {"fixed": False, "mapped": False}  # glibc's dynamic threshold: the heap serves it
    assert _probe("fix") == {"fixed": True, "mapped": True}


def test_chunked_prediction_fixes_the_threshold(monkeypatch):
    from mtcore.predict import chunks
    from mtcore.task import Task

    task = Task(name="qa", kind="extractive_qa", plugin="t", max_length=384, stride=128)
    calls = []
    monkeypatch.setattr(heap, "fix_mmap_threshold", lambda: calls.append(1) or True)
    assert list(chunks.predict_chunks(None, "t:qa", task, [], batch_size=1, origin="x")) == []
    assert calls == [1]


def test_a_threshold_the_user_set_is_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert heap.user_threshold()
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")
    assert heap.user_threshold()
