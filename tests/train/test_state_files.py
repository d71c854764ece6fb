"""Training state files: safetensors + JSON round trips, and one-line errors for broken files."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from mtcore.errors import ModelFileError
from mtcore.train.checkpoint import capture_rng, restore_rng
from mtcore.train.state_files import load_state, save_state


def test_nested_state_round_trips_with_key_and_container_types(tmp_path):
    value = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}, 7: {}},
             "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 7], "fused": None, "amsgrad": False}],
             "nan": float("nan"), "inf": float("inf"), "np": np.int64(5), 1.5: "float key", None: "none key"}
    save_state(value, tmp_path / "opt")
    back = load_state(tmp_path / "opt")
    assert set(back["state"]) == {0, 7} and back["state"][7] == {}
    assert torch.equal(back["state"][0]["exp_avg"], value["state"][0]["exp_avg"])
    assert back["state"][0]["step"].shape == () and back["state"][0]["step"].item() == 3.0
    assert back["param_groups"][0]["betas"] == (0.9, 0.999) and back["param_groups"][0]["params"] == [0, 7]
    assert math.isnan(back["nan"]) and back["inf"] == float("inf") and back["np"] == 5
    assert back[1.5] == "float key" and back[None] == "none key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opt.json", "opt.safetensors"]


def test_rng_states_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_state(capture_rng(), tmp_path / "rng")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng(load_state(tmp_path / "rng"))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_unsupported_values_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match=r"cannot save state at x\.hook: a function"):
        save_state({"hook": lambda: 0}, tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_missing_or_broken_files_are_one_line_errors(tmp_path):
    save_state({"a": torch.ones(2)}, tmp_path / "s")
    (tmp_path / "s.json").write_text("{cut", encoding="utf-8")  # the file that is damaged is named
    with pytest.raises(ModelFileError, match=r"checkpoint file '.*s\.json' is unreadable \(JSONDecodeError\)"):
        load_state(tmp_path / "s")
    (tmp_path / "s.safetensors").write_bytes(b"half")
    with pytest.raises(ModelFileError, match=r"checkpoint file '.*s\.safetensors' is unreadable") as info:
        load_state(tmp_path / "s")
    assert "\n" not in str(info.value)
    (tmp_path / "s.json").unlink()
    with pytest.raises(ModelFileError, match=r"s\.json' is missing"):
        load_state(tmp_path / "s")


def test_truncated_checkpoint_weights_are_named_in_one_line(tmp_path):
    from mtcore.train.checkpoint import load_weights, save_weights

    model = torch.nn.Linear(4, 2)
    path = tmp_path / "model.safetensors"
    save_weights(model, path)
    path.write_bytes(path.read_bytes()[:40])  # a copy cut short
    with pytest.raises(ModelFileError) as info:
        load_weights(torch.nn.Linear(4, 2), path)
    message = str(info.value)
    assert message.startswith(f"checkpoint weights {str(path)!r} are unreadable (truncated or damaged: ") and "\n" not in message
    assert message.endswith("delete this checkpoint to resume from an earlier one")


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import safetensors.torch
    from safetensors import SafetensorError

    from mtcore.errors import MtError
    from mtcore.train.checkpoint import Checkpoints, save_weights

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })')

    monkeypatch.setattr(safetensors.torch, "save_model", full)
    accelerator = SimpleNamespace(is_main_process=True, wait_for_everyone=lambda: None)
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    with pytest.raises(MtError) as info:
        checkpoints.save(3, accelerator, lambda tmp: save_weights(torch.nn.Linear(2, 2), tmp / "model.safetensors"), lambda tmp: None)
    assert str(info.value) == (f"cannot write to {tmp_path / 'checkpoints' / 'step-000003'}: No space left on device; free some "
                               "space, or keep fewer checkpoints (checkpoint.keep_last)")
    assert list((tmp_path / "checkpoints").iterdir()) == []
