"""Host-side batch building: the collator's time per batch (padding, masks, labels), which evaluation and
``mt predict`` wait on for every batch and training overlaps with the GPU only when the step is longer.

Run: ``.venv/bin/python benchmarks/collate_speed.py [--threads 2] [--repeats 50] [--smoke]``. Prints JSON, then a
markdown table: milliseconds per batch (the best of three rounds of ``--repeats`` calls) for text, token and
multiple-choice batches of random token ids (lengths uniform between a quarter of the longest and the longest).
"""

from __future__ import annotations

import argparse
import platform
import random
import time

from bench_common import print_report

SHAPES = [(16, 128), (64, 256), (256, 128)]  # rows x longest


def batches(rows: int, longest: int, rng: random.Random) -> dict[str, list[dict]]:
    def ids() -> list[int]:
        return [rng.randint(5, 30000) for _ in range(rng.randint(longest // 4, longest))]

    text = [{"input_ids": ids(), "labels": rng.randint(0, 2)} for _ in range(rows)]
    token = [{"input_ids": row["input_ids"], "labels": [rng.randint(-100, 8) for _ in row["input_ids"]]} for row in text]
    choices = [{"input_ids": [ids() for _ in range(4)], "labels": rng.randint(0, 3)} for _ in range(max(1, rows // 4))]
    return {"text_classification": text, "token_classification": token, "multiple_choice": choices}


def time_call(collate, rows: list[dict], repeats: int) -> float:
    collate(rows)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            collate(rows)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="one small shape, few repeats (the test's mode)")
    args = parser.parse_args()
    import torch

    from mtcore.data.collate import Collator

    if args.threads:
        torch.set_num_threads(args.threads)
    shapes, repeats = ([(8, 32)], 2) if args.smoke else (SHAPES, args.repeats)
    rng = random.Random(0)
    results = []
    for rows, longest in shapes:
        for kind, batch in batches(rows, longest, rng).items():
            collate = Collator(pad_token_id=0, kind=kind)
            out = collate(batch)
            results.append({"kind": kind, "rows": len(batch), "longest": longest, "padded": list(out["input_ids"].shape),
                            "ms_per_batch": round(time_call(collate, batch, repeats), 4)})
    report = {"setup": {"threads": torch.get_num_threads(), "repeats": repeats, "torch": torch.__version__,
                        "python": platform.python_version(), "machine": platform.machine()}, "results": results}
    print_report(report, ["task kind", "rows", "longest", "padded shape", "ms per batch"],
                 [[r["kind"], r["rows"], r["longest"], " x ".join(map(str, r["padded"])), f"{r['ms_per_batch']:.3f}"] for r in results])


if __name__ == "__main__":
    main()
