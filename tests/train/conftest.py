"""Fixtures for the training-engine tests: a learnable synthetic multitask set, a tiny encoder, configs.

The synthetic set has three tasks of different kinds, written as JSON Lines and defined inline
in the config (``define:``):

* ``sent`` — text classification: a sentence holds one positive or one negative word;
* ``pair`` — pair classification: do the two segments name the same colour?
* ``mc``   — multiple choice: which of two choices is a fruit?
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FILL = "the a one some this that my your his her it is was has on in at".split()
POS, NEG = ["good", "great", "nice"], ["bad", "awful", "poor"]
COLORS = ["red", "blue", "green"]
FRUIT, OTHER = ["apple", "pear", "plum", "peach"], ["stone", "chair", "brick", "sock"]
WORDS = FILL + POS + NEG + COLORS + FRUIT + OTHER
REPO = Path(__file__).resolve().parents[2]


def _rows(kind: str, n: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        if kind == "sent":
            label = rng.randrange(2)
            words = [rng.choice(FILL) for _ in range(rng.randint(2, 5))]
            words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label else NEG))
            rows.append({"idx": i, "text": " ".join(words), "label": ["negative", "positive"][label]})
        elif kind == "pair":
            a, same = rng.choice(COLORS), rng.randrange(2)
            b = a if same else rng.choice([c for c in COLORS if c != a])
            rows.append({"idx": i, "premise": f"{rng.choice(FILL)} {a}", "hypothesis": f"{rng.choice(FILL)} {b}",
                         "label": ["different", "same"][same]})
        else:
            good, bad, label = rng.choice(FRUIT), rng.choice(OTHER), rng.randrange(2)
            rows.append({"idx": i, "text": " ".join(rng.choice(FILL) for _ in range(3)),
                         "choices": [bad, good] if label else [good, bad], "label": label})
    return rows


def write_synthetic(root: Path, n_train: int, n_val: int, seed: int = 0) -> list[dict[str, Any]]:
    """Write the three tasks' files under ``root``; return their inline task entries."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for kind in ("sent", "pair", "mc"):
        for split, n in (("train", n_train), ("val", n_val)):
            (root / f"{kind}_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(kind, n, rng)), encoding="utf-8")

    def files(kind: str) -> dict[str, str]:
        return {"train": str(root / f"{kind}_train.jsonl"), "validation": str(root / f"{kind}_val.jsonl")}

    return [
        {"define": {"name": "sent", "kind": "text_classification", "labels": ["negative", "positive"], "files": files("sent")}},
        {"define": {"name": "pair", "kind": "pair_classification", "labels": ["different", "same"],
                    "inputs": {"text": "premise", "text_pair": "hypothesis"}, "files": files("pair")}},
        {"define": {"name": "mc", "kind": "multiple_choice", "files": files("mc")}},
    ]


@pytest.fixture(scope="session")
def word_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT (hidden 64, 2 layers) whose vocabulary holds the synthetic words."""
    from mtcore.testing import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("word-encoder"), "bert", words=WORDS, hidden_size=64, num_layers=2, num_heads=2)


@pytest.fixture(scope="session")
def small_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT (hidden 32, 2 layers) with the synthetic words, for fast mechanics tests."""
    from mtcore.testing import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("small-encoder"), "bert", words=WORDS, hidden_size=32, num_layers=2, num_heads=2)


@pytest.fixture(scope="session")
def small_tasks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The synthetic tasks with 48 training and 16 validation rows each."""
    return write_synthetic(tmp_path_factory.mktemp("small-data"), 48, 16)


@pytest.fixture
def make_config(shared_make_config: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``make_config(**sections)``: a fast CPU config on the small synthetic set; sections replace defaults."""
    return shared_make_config


@pytest.fixture(scope="session")
def shared_make_config(small_encoder: Path, small_tasks: list[dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """:func:`make_config` for module- and session-scoped fixtures (each call builds a new config)."""

    def build(**sections: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "seed": 3,
            "cpu": True,
            "precision": "fp32",
            "encoder": {"path": str(small_encoder)},
            "tasks": copy.deepcopy(small_tasks),
            "optimizer": {"lr": 1e-3},
            "schedule": {"max_steps": 6, "warmup_steps": 1},
            "batching": {"batch_size": 8},
            "evaluation": {"every": None, "at_end": True},
            "checkpoint": {"every": 3, "keep_last": 2},
            "logging": {"every": 2, "progress": "none", "plot": False},
        }
        config.update(sections)
        return config

    return build


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def load_weights(model_dir: Path) -> dict[str, Any]:
    """Every tensor of a saved model directory (encoder and heads), keyed by file and name."""
    from safetensors.torch import load_file

    tensors = {}
    for path in sorted(model_dir.rglob("*.safetensors")):
        for name, tensor in load_file(str(path)).items():
            tensors[f"{path.relative_to(model_dir)}:{name}"] = tensor
    return tensors


def stopped_copy(full: Path, resumed: Path, checkpoint: str, step: int) -> None:
    """``resumed``: the run ``full`` as if it had stopped after ``checkpoint`` (at ``step``): that checkpoint, its
    config.yaml rewritten for the new folder, and the events up to ``step``; ``--resume`` continues it."""
    import shutil

    shutil.copytree(full / "checkpoints" / checkpoint, resumed / "checkpoints" / checkpoint)
    (resumed / "config.yaml").write_text((full / "config.yaml").read_text().replace(str(full), str(resumed)))
    kept = [e for e in read_events(full) if e.get("step", 0) <= step]
    (resumed / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in kept))


def resume_matches(config: dict[str, Any], root: Path, checkpoint: str, step: int) -> tuple[Path, Path]:
    """Train ``config`` into ``root/full``, copy it as stopped after ``checkpoint`` (at ``step``) into ``root/resumed``
    and ``--resume`` it there (both in this process, on one thread); asserts the final weights are bit-identical and
    returns both run folders."""
    import torch
    import yaml

    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    full, resumed = root / "full", root / "resumed"
    train_in_this_process(path, full)
    stopped_copy(full, resumed, checkpoint, step)
    train_in_this_process(path, resumed, resume=True)
    a, b = load_weights(full / "model"), load_weights(resumed / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return full, resumed


def assert_new_heads_on_the_saved_encoder(saved: dict[str, Any], cold: dict[str, Any], encoder: str, heads: str) -> None:
    """A run started from ``saved`` without its heads: the encoder's tensors (names starting ``encoder``) equal, some
    head tensor (names starting ``heads``) new."""
    import torch

    encoder_keys = [k for k in saved if k.startswith(encoder)]
    head_keys = [k for k in saved if k.startswith(heads)]
    assert encoder_keys and head_keys
    assert all(torch.allclose(saved[k], cold[k], atol=1e-6) for k in encoder_keys)
    assert any(not torch.allclose(saved[k], cold[k], atol=1e-3) for k in head_keys)  # new heads


def mt_command(*args: str) -> list[str]:
    """The ``mt`` console script of this interpreter, with arguments."""
    return [str(Path(sys.executable).parent / "mt"), *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT_")}
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    env.update(extra)
    return env


def kill_after_checkpoint(config: Path, run: Path, min_step: int, timeout: float = 120) -> None:
    """``mt train config`` into ``run``, slowed down, killed with SIGKILL inside a step after checkpoint ``min_step``."""
    import signal
    import subprocess
    import time

    process = subprocess.Popen(mt_command("train", str(config), "--output-dir", str(run), "debug.step_delay_s=0.05"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        deadline = time.time() + timeout
        while True:
            done = sorted(int(p.name.split("-")[1]) for p in (run / "checkpoints").glob("step-*") if (p / "state.json").is_file())
            if done and done[-1] >= min_step:
                break
            if process.poll() is not None:
                raise AssertionError(f"the run ended before checkpoint {min_step}: {process.stderr.read() if process.stderr else ''}")
            assert time.time() < deadline, "no checkpoint appeared in time"
            time.sleep(0.02)
        time.sleep(0.07)  # somewhere inside a later step
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()


def train_in_this_process(config: Path, run: Path, overrides: list[str] = (), resume: bool = False) -> None:
    """``mt train config OVERRIDES --output-dir run [--resume]`` in this process, on one thread as the ``mt``
    subprocesses run, without a second process's start-up."""
    import torch

    from mtcore import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(config, output_dir=run, overrides=list(overrides), resume=resume).train()
    finally:
        torch.set_num_threads(threads)


def accumulation_difference(make_config: Callable[..., dict[str, Any]], root: Path, loss: dict[str, Any]) -> float:
    """The largest weight difference between 2 micro-steps of 4 rows and one step of 8 rows (4 steps, no dropout) under
    loss strategy ``loss``: 0 up to rounding where the strategy weighs the whole step as one."""
    from mtcore import Trainer

    def train(name: str, overrides: list[str]) -> dict:
        config = make_config(tasks=[{**t, "head_options": {"dropout": 0.0}} for t in make_config()["tasks"]],
                             encoder={**make_config()["encoder"], "options": {"encoder_kwargs": {
                                 "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}},
                             loss=loss, schedule={"max_steps": 4, "warmup_steps": 1},
                             batching={"batch_size": 8, "group_by_length": False}, checkpoint={"every": None, "at_end": False},
                             evaluation={"every": None, "at_end": False})
        Trainer(config, output_dir=root / name, overrides=overrides).train()
        return load_weights(root / name / "model")

    accumulated = train("accumulated", ["optimizer.gradient_accumulation_steps=2", "batching.batch_size=4"])
    whole = train("whole", [])
    assert accumulated.keys() == whole.keys()
    from safetensors.torch import load_file

    initial = load_file(str(Path(make_config()["encoder"]["path"]) / "model.safetensors"))
    assert max((whole[f"encoder/model.safetensors:{k}"] - v).abs().max().item() for k, v in initial.items()) > 1e-3  # it trained
    return max((accumulated[k] - whole[k]).abs().max().item() for k in whole)


@pytest.fixture(scope="session")
def helpers() -> Any:
    """Helper functions for the tests (conftest modules are not importable under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(read_events=read_events, load_weights=load_weights, mt_command=mt_command,
                           assert_new_heads_on_the_saved_encoder=assert_new_heads_on_the_saved_encoder,
                           subprocess_env=subprocess_env, write_synthetic=write_synthetic, kill_after_checkpoint=kill_after_checkpoint,
                           train_in_this_process=train_in_this_process, stopped_copy=stopped_copy, resume_matches=resume_matches,
                           accumulation_difference=accumulation_difference, repo=REPO)


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (restored after): two paths compared to 1e-5 after a few AdamW steps
    (packed against padded) must not differ by how two threads split a reduction: Adam turns a 1e-9 difference
    in a near-zero gradient into one of up to the learning rate."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
