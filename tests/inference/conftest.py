"""Fixtures for inference tests: a tiny trained run, tiny saved models, the CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inference.support import NLI, REVIEWS, SENTIMENT, make_model
from mtcore.testing import build_tiny_encoder

SAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "mt-russian-superglue" / "mt_russian_superglue" / "sample"


@pytest.fixture(scope="session")
def rsg_sample() -> Path:
    """The RSG plugin's shipped sample files (official layout)."""
    return SAMPLE


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A run directory of the real engine: TERRa + PARus samples, tiny BERT, a few steps."""
    from mtcore.testing import smoke_train

    result = smoke_train(["rsg:terra", "rsg:parus"], output_dir=tmp_path_factory.mktemp("runs") / "run", steps=4, batch_size=4)
    return result.output_dir


@pytest.fixture(scope="session")
def make_small_run():
    """``make_small_run(dir)``: a 4-step TERRa + PARus run evaluated and checkpointed at steps 2 and 4."""
    from mtcore.testing import smoke_train

    def make(output_dir: Path) -> Path:
        overrides = ["evaluation.every=2", "checkpoint.every=2", "checkpoint.keep_last=3", "optimizer.lr=5e-3"]
        return smoke_train(["rsg:terra", "rsg:parus"], output_dir=output_dir, steps=4, batch_size=4, overrides=overrides).output_dir

    return make


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory):
    """``tiny_encoders[arch]``: a tiny encoder directory, built on first use."""

    class _Cache(dict):
        def __missing__(self, arch: str) -> Path:
            path = build_tiny_encoder(tmp_path_factory.mktemp(f"enc-{arch}"), arch, words=["good", "bad", "movie"])
            self[arch] = path
            return path

    return _Cache()


@pytest.fixture(scope="session")
def bert_model_dir(tiny_encoders, tmp_path_factory) -> Path:
    """A saved tiny BERT model with two pooler-pooled classification tasks (exportable)."""
    model = make_model(tiny_encoders["bert"], SENTIMENT, NLI)
    return model.save_pretrained(tmp_path_factory.mktemp("models") / "bert")


@pytest.fixture()
def reviews_file(tmp_path) -> Path:
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in REVIEWS), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def cli():
    """``cli(*args, input=None) -> Result`` running ``mt`` in-process (stdout and stderr kept apart)."""
    from mtcore.cli.app import app

    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return run
