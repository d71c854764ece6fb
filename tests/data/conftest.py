"""Fixtures for the data pipeline tests: tiny tokenizers, a private cache, files in official layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _quiet_datasets():
    import datasets

    datasets.disable_progress_bars()
    yield


def _encoder(tmp_path_factory, arch: str):
    from transformers import AutoConfig, AutoTokenizer

    from mtcore.testing import build_tiny_encoder

    path = build_tiny_encoder(tmp_path_factory.mktemp(arch) / "enc", arch, words=["кот", "спит", "yes", "no"])
    return AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path)


@pytest.fixture(scope="session")
def bert(tmp_path_factory):
    """(tokenizer, config) of a tiny BERT: segment embeddings, token_type_ids used."""
    return _encoder(tmp_path_factory, "bert")


@pytest.fixture(scope="session")
def roberta(tmp_path_factory):
    """(tokenizer, config) of a tiny RoBERTa: type_vocab_size 1, no token_type_ids."""
    return _encoder(tmp_path_factory, "roberta")


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


class Writer:
    """Write test files exactly as given (parents created)."""

    @staticmethod
    def jsonl(path: Path, rows: list[dict], *, bom: bool = False) -> Path:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return Writer.text(path, ("\ufeff" if bom else "") + text)

    @staticmethod
    def text(path: Path, text: str, encoding: str = "utf-8") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode(encoding))
        return path

    @staticmethod
    def parquet(path: Path, columns: dict) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), str(path))
        return path


@pytest.fixture
def write() -> type[Writer]:
    return Writer
