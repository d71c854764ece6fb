"""``encoder.path`` naming a training checkpoint (``RUN/checkpoints/step-N``), also of a run without ``model/``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from mtcore import Trainer
from mtcore.errors import ConfigError

FROZEN = {"lr": 1e-12, "head_lr": 1e-12, "weight_decay": 0.0}  # one step that moves nothing measurably


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, small_encoder, small_tasks) -> Path:
    """A 4-step run checkpointed at steps 2 and 4, then stripped of model/ and summary.json (as a preempted run is)."""
    config = {"seed": 3, "cpu": True, "precision": "fp32", "encoder": {"path": str(small_encoder)}, "tasks": small_tasks,
              "optimizer": {"lr": 1e-3}, "schedule": {"max_steps": 4, "warmup_steps": 0}, "batching": {"batch_size": 8},
              "checkpoint": {"every": 2, "keep_last": 3}, "logging": {"every": 2, "progress": "none", "plot": False}}
    run = tmp_path_factory.mktemp("stopped") / "run"
    Trainer(config, output_dir=run).train()
    shutil.rmtree(run / "model")
    (run / "summary.json").unlink()
    return run


def _state(model_dir: Path) -> dict[str, torch.Tensor]:
    from mtcore.model import MultitaskModel

    return MultitaskModel.from_pretrained(model_dir).state_dict()


def test_a_checkpoint_starts_the_next_run_with_its_encoder_and_with_load_heads_its_heads(stopped_run, tmp_path, make_config, helpers):
    from safetensors.torch import load_file

    checkpoint = stopped_run / "checkpoints" / "step-000002"
    saved = load_file(str(checkpoint / "model.safetensors"))

    def start(name: str, load_heads: bool) -> dict[str, torch.Tensor]:
        config = make_config(encoder={"path": str(checkpoint), "load_heads": load_heads}, optimizer=FROZEN,
                             schedule={"max_steps": 1, "warmup_steps": 0}, checkpoint={"every": None})
        Trainer(config, output_dir=tmp_path / name).train()
        return _state(tmp_path / name / "model")

    warm = start("warm", True)
    assert len(saved) > 10 and all(torch.allclose(warm[k], saved[k], atol=1e-6) for k in saved), "encoder and heads from the checkpoint"
    notes = next(e for e in helpers.read_events(tmp_path / "warm") if e["event"] == "start")["notes"]
    assert any(f"the encoder weights of checkpoint {checkpoint} (step 2)" in n for n in notes)
    assert any("trained heads of" in n and "user:sent" in n for n in notes)

    helpers.assert_new_heads_on_the_saved_encoder(saved, start("cold", False), "encoder.", "heads.")

    # a checkpoint of the new run is rebuilt (mt evaluate / predict) through the checkpoint it started from
    from mtcore.predict.locate import load_model, locate

    rebuilt = load_model(locate(tmp_path / "warm" / "checkpoints" / "step-000001"), "cpu").state_dict()
    assert all(torch.equal(rebuilt[k], warm[k]) for k in warm)


def test_a_run_directory_without_a_model_names_its_latest_checkpoint(stopped_run, tmp_path, make_config):
    with pytest.raises(ConfigError, match=r"^config key 'encoder.path': .* is a run directory without a model/ yet .* start from its "
                                          r"latest checkpoint \('.*step-000004'\)"):
        Trainer(make_config(encoder={"path": str(stopped_run)}), output_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^config key 'encoder.path': there is no checkpoint .*step-000003.* the latest is '.*step-000004'"):
        Trainer(make_config(encoder={"path": str(stopped_run / "checkpoints" / "step-000003")}), output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
