"""Two "processes" of a DDP run as two threads: each gets a ``reduce_mean`` that averages a tensor over both, as the
training loop's all-reduce does, so a loss strategy's DDP path is tested without starting processes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_two_ranks(rank_run: Callable[[int, Callable[[Any], Any]], Any], timeout: float = 30) -> list[Any]:
    """``rank_run(rank, reduce_mean)`` for ranks 0 and 1 at once; what each returned (None: it did not finish)."""
    barrier, shared, out = threading.Barrier(2), {}, [None, None]

    def reduce_mean_for(rank: int) -> Callable[[Any], Any]:
        def reduce_mean(tensor: Any) -> Any:
            shared[rank] = tensor
            barrier.wait()
            mean = (shared[0] + shared[1]) / 2
            barrier.wait()
            return mean
        return reduce_mean

    def target(rank: int) -> None:
        out[rank] = rank_run(rank, reduce_mean_for(rank))

    threads = [threading.Thread(target=target, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return out
