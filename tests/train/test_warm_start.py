"""Starting a run from a model mtcore saved (``encoder.path: RUN/model``, ``encoder.load_heads``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mtcore import Trainer
from mtcore.errors import ConfigError

FROZEN = {"lr": 1e-12, "head_lr": 1e-12, "weight_decay": 0.0}  # one step that moves nothing measurably


def _start_event(helpers, run: Path) -> dict:
    return next(e for e in helpers.read_events(run) if e["event"] == "start")


def test_a_saved_model_starts_the_next_run_with_its_encoder_and_matching_heads(tmp_path: Path, make_config, helpers):
    first = tmp_path / "multi"
    Trainer(make_config(schedule={"max_steps": 4, "warmup_steps": 0}, checkpoint={"every": None}), output_dir=first).train()
    trained = helpers.load_weights(first / "model")

    def continue_from(name: str, load_heads: bool, **changes) -> dict:
        config = make_config(encoder={"path": str(first / "model"), "load_heads": load_heads}, optimizer=FROZEN,
                             schedule={"max_steps": 1, "warmup_steps": 0}, checkpoint={"every": None})
        config["tasks"][0].update(changes)
        Trainer(config, output_dir=tmp_path / name).train()
        return helpers.load_weights(tmp_path / name / "model")

    warm = continue_from("warm", True)
    assert warm.keys() == trained.keys()
    for key, value in trained.items():
        assert torch.allclose(value, warm[key], atol=1e-6), key  # encoder and every head came from the saved model
    notes = _start_event(helpers, tmp_path / "warm")["notes"]
    assert any("trained heads of" in n and "user:sent" in n and "user:pair" in n and "user:mc" in n for n in notes)

    helpers.assert_new_heads_on_the_saved_encoder(trained, continue_from("cold", False), "encoder/", "heads/")

    changed = continue_from("changed", True, head="mlp")
    notes = _start_event(helpers, tmp_path / "changed")["notes"]
    assert any("task 'user:sent' differs from the saved one (head: 'mtcore:mlp' here, 'mtcore:classification' saved)" in n for n in notes)
    same = continue_from("same", True, head="mtcore:classification",  # a qualified name, a default option, and options of the loss
                         head_options={"pooling": "cls", "class_weights": "balanced", "label_smoothing": 0.1,  # and of
                                       "dropout": 0.3})  # training only: the same head
    assert [k for k in trained if not torch.allclose(trained[k], same[k], atol=1e-6)] == []
    continue_from("pooled", True, head_options={"pooling": "mean"})
    notes = _start_event(helpers, tmp_path / "pooled")["notes"]
    assert any("task 'user:sent' differs from the saved one (head_options.pooling: 'mean' here, 'cls' saved)" in n for n in notes)
    assert not any(k.startswith("heads/user--sent") and k in trained and changed[k].shape == trained[k].shape
                   and torch.allclose(changed[k], trained[k]) for k in changed)


def test_load_heads_needs_a_model_mtcore_saved(make_config, tmp_path: Path, small_encoder):
    config = make_config(encoder={"path": str(small_encoder), "load_heads": True})
    with pytest.raises(ConfigError, match=r"^config key 'encoder.load_heads' needs 'encoder.path' to be a model directory saved by mtcore"):
        Trainer(config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
