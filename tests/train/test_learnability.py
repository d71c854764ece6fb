"""A tiny encoder learns three synthetic tasks of different kinds to >= 0.9 validation accuracy (CPU),
with padded length-grouped batches and with padding-free random batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtcore import Trainer


@pytest.mark.parametrize("batching", [{"batch_size": 16},
                                      {"batch_size": 16, "padding_free": True, "group_by_length": False}],
                         ids=["padded-grouped", "padding-free-random"])
def test_tiny_model_learns_three_kinds_of_task(tmp_path: Path, word_encoder: Path, helpers, batching):
    tasks = helpers.write_synthetic(tmp_path / "data", n_train=400, n_val=100, seed=0)
    config = {
        "seed": 0,
        "cpu": True,
        "precision": "fp32",
        "encoder": {"path": str(word_encoder)},
        "tasks": tasks,
        "sampler": {"name": "uniform"},
        "optimizer": {"lr": 1e-3, "weight_decay": 0.0},
        "schedule": {"max_steps": 800, "warmup_ratio": 0.05},
        "batching": batching,
        "evaluation": {"every": 200},
        "checkpoint": {"every": None, "keep_best": False},
        "logging": {"every": 100, "progress": "none", "plot": False},
    }
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    final = summary["final"]["metrics"]
    accuracies = {task: final[f"user:{task}/accuracy"] for task in ("sent", "pair", "mc")}
    assert all(value >= 0.9 for value in accuracies.values()), accuracies
    assert summary["steps"] == 800
    # the summary's per-task view agrees with the flat metrics
    assert summary["tasks"]["user:pair"]["final"]["accuracy"] == accuracies["pair"]
