"""Tiny Russian SuperGLUE files in the official layout (``<Task>/train.jsonl, val.jsonl, test.jsonl``)."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = "кот собака дом река лес город машина книга солнце море".split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_rsg(root: Path, sizes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """DaNetQA (JSON bool labels) and TERRa (string labels); test files have no labels."""
    rng = random.Random(seed)
    sizes = sizes or {"train": 30, "val": 8, "test": 5}
    for split, n in sizes.items():
        labelled = split != "test"
        _write(root / "DaNetQA" / f"{split}.jsonl", [
            {"idx": i, "question": _sentence(rng, 4) + "?", "passage": _sentence(rng, 20), **({"label": i % 2 == 0} if labelled else {})}
            for i in range(n)])
        _write(root / "TERRa" / f"{split}.jsonl", [
            {"idx": i, "premise": _sentence(rng, 10), "hypothesis": _sentence(rng, 5),
             **({"label": ("entailment", "not_entailment")[i % 2]} if labelled else {})}
            for i in range(n)])
    return root


def rsg_data_files(root: Path, folder: str) -> dict[str, str]:
    return {split: str(root / folder / f"{name}.jsonl") for split, name in [("train", "train"), ("validation", "val"), ("test", "test")]}
