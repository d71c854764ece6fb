"""``optimizer.head_lrs``: a task's head trains at its own learning rate (others at ``head_lr``)."""

from __future__ import annotations

import pytest
import torch
from clitools import run_mt

from mtcore.errors import ConfigError
from mtcore.model import MultitaskModel
from mtcore.task import Task
from mtcore.testing import build_tiny_encoder, smoke_train
from mtcore.train.config import OptimizerConfig
from mtcore.train.optim import build_optimizer

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    encoder = build_tiny_encoder(tmp_path_factory.mktemp("enc"), "bert", words=["a", "b"], hidden_size=16, num_layers=1, num_heads=2)
    tasks = [Task(name=name, kind="text_classification", labels=("x", "y")) for name in ("small", "large")]
    return MultitaskModel(str(encoder), tasks)


def test_a_heads_own_lr_gets_its_own_groups_and_every_parameter_once(model):
    config = OptimizerConfig(lr=1e-5, head_lr=1e-3, head_lrs={"small": 5e-2}, weight_decay=0.01)
    groups = {g["name"]: g for g in build_optimizer(model, config, CPU).param_groups}
    small = {id(p) for p in model.heads["small"].parameters()}
    assert {id(p) for p in groups["heads.small"]["params"] + groups["heads.small_no_decay"]["params"]} == small
    assert groups["heads.small"]["lr"] == groups["heads.small_no_decay"]["lr"] == 5e-2
    assert groups["heads.small_no_decay"]["weight_decay"] == 0.0 and groups["heads.small"]["weight_decay"] == 0.01
    assert groups["heads"]["lr"] == 1e-3 and not small & {id(p) for p in groups["heads"]["params"] + groups["heads_no_decay"]["params"]}
    listed = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(listed) == sorted(id(p) for p in model.parameters() if p.requires_grad)


def test_a_name_that_is_no_task_of_the_run_is_one_line_with_did_you_mean(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("encoder: {tiny: bert}\ntasks: [rsg:terra, rsg:parus]\noptimizer: {head_lrs: {terr: 0.01}}\n")
    result = run_mt("check", str(config), "--no-data")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: config key 'optimizer.head_lrs.terr': 'terr' is not a task of this run (did you mean")
    assert run_mt("check", str(config), "optimizer.head_lrs={terra: 0}", "--no-data").returncode == 2  # must be > 0
    twice = run_mt("check", str(config), "optimizer.head_lrs={terra: 0.01, rsg:terra: 0.02}", "--no-data")  # the last one won
    assert twice.returncode == 2 and "task 'rsg:terra' is named twice in optimizer.head_lrs" in twice.stderr


def test_a_run_trains_the_named_head_at_its_rate(tmp_path):
    """With lr 0 everywhere else, only the TERRa head moves."""
    import safetensors.torch

    run = smoke_train(["rsg:terra", "rsg:parus"], output_dir=tmp_path / "run", steps=2, evaluate=False,
                      overrides=["optimizer.lr=1e-12", "optimizer.head_lr=1e-12", "optimizer.head_lrs.terra=0.05",
                                 "schedule.name=constant", "optimizer.weight_decay=0"]).output_dir
    start = smoke_train(["rsg:terra", "rsg:parus"], output_dir=tmp_path / "start", steps=2, evaluate=False,
                        overrides=["optimizer.lr=1e-12", "optimizer.head_lr=1e-12", "schedule.name=constant",
                                   "optimizer.weight_decay=0"]).output_dir
    for head in ("rsg--terra", "rsg--parus"):
        moved = safetensors.torch.load_file(run / "model" / "heads" / f"{head}.safetensors")
        still = safetensors.torch.load_file(start / "model" / "heads" / f"{head}.safetensors")
        changed = any(not torch.allclose(moved[name], still[name], atol=1e-6) for name in moved)
        assert changed == (head == "rsg--terra"), head
    moved = safetensors.torch.load_file(run / "model" / "encoder" / "model.safetensors")
    still = safetensors.torch.load_file(start / "model" / "encoder" / "model.safetensors")
    assert moved and all(torch.allclose(moved[n], still[n], atol=1e-6) for n in moved)


def test_unknown_head_in_the_python_api_is_named(model):
    with pytest.raises((ConfigError, ValueError), match="not a task of this run|not a head of this model"):
        build_optimizer(model, OptimizerConfig(head_lrs={"nope": 1e-3}), CPU)
