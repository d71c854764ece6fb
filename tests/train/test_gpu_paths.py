"""Code paths that only run on a GPU, checked on the CPU by standing in for what CUDA reports
(found by a review of the CUDA-only branches: T4/V100 cards, fewer GPUs at resume, fp16's scaler)."""

from __future__ import annotations

import gc
import types
from pathlib import Path

import pytest
import torch
import yaml

from mtcore.errors import ConfigError, UsageError


def test_auto_precision_takes_fp16_where_bf16_is_only_emulated(monkeypatch):
    """torch's is_bf16_supported() says yes on a T4 or V100 (emulated bf16, no tensor cores)."""
    from mtcore.train.precision import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", cuda=True) == "fp16"
    with pytest.raises(ConfigError, match="this GPU has no bf16 support"):
        resolve_precision("bf16", cuda=True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere and newer
    assert resolve_precision("auto", cuda=True) == "bf16"


def test_precision_is_resolved_for_the_gpu_asked_for_not_the_current_one(monkeypatch):
    """mt evaluate --device cuda:1 on a machine whose cuda:0 is an H100 and cuda:1 a T4."""
    from mtcore.train.precision import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # what cuda:0 says
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: {0: (9, 0), 1: (7, 5)}[index])
    monkeypatch.setattr(torch.version, "hip", None)
    assert resolve_precision("auto", cuda=True, device=torch.device("cuda:1")) == "fp16"
    with pytest.raises(ConfigError, match="GPU cuda:1 has no bf16 support"):
        resolve_precision("bf16", cuda=True, device=torch.device("cuda:1"))
    assert resolve_precision("bf16", cuda=True, device=torch.device("cuda:0")) == "bf16"
    assert resolve_precision("auto", cuda=True, device=torch.device("cuda")) == "bf16"  # no index: the current GPU


def test_padding_free_attention_avoids_flashattention_on_gpus_older_than_ampere(monkeypatch):
    from mtcore.model import padding_free

    monkeypatch.setattr(padding_free, "_FLASH_GPU", True)
    monkeypatch.setattr(padding_free, "_VARLEN_KERNEL", (object(), True))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    q = types.SimpleNamespace(is_cuda=True, dtype=torch.bfloat16, shape=(10, 2, 64))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    padding_free.note_device(torch.device("cuda", 0))
    assert padding_free._flash_varlen_usable(q, 0.0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # T4: FlashAttention refuses it
    padding_free.note_device(torch.device("cuda", 0))
    assert not padding_free._flash_varlen_usable(q, 0.0)
    padding_free.note_device(torch.device("cpu"))  # a CPU device changes nothing
    assert not padding_free._flash_varlen_usable(q, 0.0)


def test_resume_restores_the_gpu_rng_states_of_the_gpus_there_are(monkeypatch):
    """A checkpoint written with 2 GPUs visible, resumed with 1 (CUDA_VISIBLE_DEVICES, a smaller allocation)."""
    from mtcore.train.checkpoint import capture_rng, restore_rng

    state = capture_rng()
    state["cuda"] = [torch.ByteTensor([1, 2]), torch.ByteTensor([3, 4])]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda new_state, device="cuda": restored.append((new_state.tolist(), device)))
    restore_rng(state)
    assert restored == [([1, 2], 0)]


def test_a_skipped_fp16_step_does_not_advance_the_schedule():
    """A fused AdamW is always called by the grad scaler and skips inside: the scale's drop tells."""
    from mtcore.train.loop import step_skipped

    class Scaler:
        def __init__(self, after):
            self.after = after

        def get_scale(self):
            return self.after

    called = types.SimpleNamespace(step_was_skipped=False)
    assert step_skipped(called, Scaler(32768.0), 65536.0)  # inf gradients: the scale halved
    assert not step_skipped(called, Scaler(65536.0), 65536.0)
    assert not step_skipped(called, Scaler(131072.0), 65536.0)  # the scale grew: a normal step
    assert step_skipped(types.SimpleNamespace(step_was_skipped=True), None, None)
    assert not step_skipped(called, None, None)  # bf16 / fp32: no scaler


def test_float16_weights_are_refused_under_fp16_before_training():
    from mtcore.train.precision import check_weights_dtype

    with pytest.raises(ConfigError, match="config key 'encoder.options.dtype': float16 weights cannot train in precision fp16"):
        check_weights_dtype("fp16", {"dtype": "float16"})
    check_weights_dtype("bf16", {"dtype": "float16"})
    check_weights_dtype("fp16", {"dtype": "bfloat16"})


def test_a_run_trained_in_fp16_is_evaluated_in_fp32_on_a_cpu(tmp_path: Path, make_config):
    from mtcore import Trainer
    from mtcore.predict.evaluate import evaluate_path

    run = tmp_path / "run"
    summary = Trainer(make_config(schedule={"max_steps": 2}), output_dir=run).train()
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["precision"] = "fp16"  # what a GPU run in fp16 writes
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    report = evaluate_path(run)
    assert report.metrics == pytest.approx({k: v for k, v in summary["final"]["metrics"].items()}, abs=1e-6)
    with pytest.raises(UsageError, match="--precision fp16 needs a CUDA GPU and the device is cpu"):  # the option, not a config key
        evaluate_path(run, precision="fp16")


def test_seeds_free_each_finished_model_at_once(tmp_path: Path, make_config):
    from mtcore.model import MultitaskModel
    from mtcore.train.seeds import train_seeds

    gc.collect()
    gc.disable()  # only what is freed explicitly goes
    try:
        train_seeds(make_config(schedule={"max_steps": 2}, checkpoint={"every": None}), tmp_path / "seeds", [1, 2])
        alive = [o for o in gc.get_objects() if isinstance(o, MultitaskModel)]
    finally:
        gc.enable()
    assert alive == []


def test_trainer_model_after_a_bf16_run_predicts_in_float32_like_the_saved_model(tmp_path: Path, make_config):
    from mtcore import Trainer
    from mtcore.model import MultitaskModel

    trainer = Trainer(make_config(precision="bf16", schedule={"max_steps": 2}, checkpoint={"every": None}), output_dir=tmp_path / "run")
    trainer.train()
    rows = [{"text": "the good one"}, {"text": "a bad one it is"}]
    live = trainer.model.predict("user:sent", rows)
    saved = MultitaskModel.from_pretrained(tmp_path / "run" / "model").predict("user:sent", rows)
    assert live.probabilities == saved.probabilities
