"""``deterministic: true`` (:mod:`mtcore.train.determinism`): torch's deterministic flags while the run trains, the
previous flags back afterwards (also after a failure), a kernel torch refuses as one line, and the ``mt check`` note.

The flags are observed from inside the run by a head registered from Python (:class:`ProbeHead`), which records
them at every training forward; with ``head_options: {put: true}`` it also calls ``Tensor.put_`` (no
``accumulate``), which torch refuses under ``use_deterministic_algorithms`` on the CPU too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from mtcore.model.heads.base import Head, HeadOutput
from mtcore.model.heads.losses import classification_loss
from mtcore.train.trainer import Trainer

SEEN: list[dict[str, object]] = []


def flags() -> dict[str, object]:
    import os

    return {"deterministic": torch.are_deterministic_algorithms_enabled(), "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark, "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


class ProbeHead(Head):
    """A CLS classification head that records :func:`flags` at each training forward (and calls ``put_`` with ``put``)."""

    def __init__(self, hidden_size: int, num_labels: int, put: bool = False) -> None:
        super().__init__(hidden_size, num_labels)
        self.out = nn.Linear(hidden_size, num_labels)
        self.put = put

    def forward(self, hidden_states, attention_mask, *, pooler_output=None, labels=None, num_choices=None):
        if self.training:
            SEEN.append(flags())
            if self.put:  # no deterministic implementation, on any device
                torch.zeros(4, device=hidden_states.device).put_(torch.tensor([0], device=hidden_states.device), hidden_states[0, 0, :1])
        logits = self.out(hidden_states[:, 0])
        loss = classification_loss(logits, labels, training=self.training) if labels is not None else None
        return HeadOutput(logits=logits, loss=loss)


@pytest.fixture
def probe(monkeypatch):
    """ProbeHead registered as ``probe``; the process's flags and CUBLAS_WORKSPACE_CONFIG put back after the test."""
    from mtcore import plugins

    plugins.register_component("head", "probe", ProbeHead, "records the determinism flags", kinds=("text_classification",))
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "unset")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")  # absent now, and removed again at the end
    before = flags()
    SEEN.clear()
    yield
    torch.use_deterministic_algorithms(bool(before["deterministic"]), warn_only=bool(before["warn_only"]))
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before["cudnn_benchmark"], before["cudnn_deterministic"]
    for registry in plugins._cache.values():
        registry.components["head"].pop("user:probe", None)


def probe_config(make_config, deterministic: bool = True, put: bool = False, steps: int = 2) -> dict:
    """One text-classification task through ProbeHead, a few steps, no evaluation or checkpoint."""
    task = {**make_config()["tasks"][0], "head": "probe", "head_options": {"put": put}}
    return make_config(tasks=[task], deterministic=deterministic, schedule={"max_steps": steps, "warmup_steps": 0},
                       evaluation={"every": None, "at_end": False}, checkpoint={"every": None, "at_end": False})


def test_the_flags_are_on_while_the_run_trains_and_as_before_after_it(tmp_path: Path, make_config, probe):
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = True, False  # a user's own choice: kept
    Trainer(probe_config(make_config), output_dir=tmp_path / "run").train()
    assert SEEN and all(seen == {"deterministic": True, "warn_only": False, "cudnn_benchmark": False, "cudnn_deterministic": True,
                                 "cublas": ":4096:8"} for seen in SEEN), SEEN
    after = flags()
    assert (after["deterministic"], after["cudnn_benchmark"], after["cudnn_deterministic"]) == (False, True, False)
    assert after["cublas"] == ":4096:8"  # the environment variable stays (documented)
    assert "deterministic: true" in (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8")


def test_a_set_cublas_variable_is_kept_and_deterministic_false_changes_nothing(tmp_path: Path, make_config, probe, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    Trainer(probe_config(make_config), output_dir=tmp_path / "on").train()
    assert SEEN and {seen["cublas"] for seen in SEEN} == {":16:8"}
    SEEN.clear()
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    Trainer(probe_config(make_config, deterministic=False), output_dir=tmp_path / "off").train()
    assert SEEN and not any(seen["deterministic"] or seen["cudnn_deterministic"] or seen["cublas"] for seen in SEEN), SEEN
    assert "deterministic: false" in (tmp_path / "off" / "config.yaml").read_text(encoding="utf-8")


def test_a_kernel_torch_refuses_is_one_line_and_the_flags_are_restored_after_the_failure(tmp_path: Path, make_config, probe):
    from mtcore.train.monitor import TrainingError

    torch.use_deterministic_algorithms(True, warn_only=True)  # a user's own setting before the run
    with pytest.raises(TrainingError, match=r"no deterministic implementation of put_, .*; set deterministic: false, or change"):
        Trainer(probe_config(make_config, put=True), output_dir=tmp_path / "run").train()
    assert SEEN and SEEN[0]["warn_only"] is False  # the run raised: warn_only was off while it trained
    after = flags()
    assert (after["deterministic"], after["warn_only"]) == (True, True)


def test_mt_train_prints_the_refused_kernel_in_one_line(tmp_path: Path, make_config, probe):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(probe_config(make_config, put=True)), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(tmp_path / "run.yaml"), "--output-dir", str(tmp_path / "run")])
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "torch has no deterministic implementation of put_" in lines[0] and "set deterministic: false" in lines[0]
    assert "unexpected" not in result.output and "Traceback" not in result.output
    assert not torch.are_deterministic_algorithms_enabled()


def test_two_deterministic_runs_give_bit_identical_weights(tmp_path: Path, make_config, helpers, probe):
    config = make_config(deterministic=True, schedule={"max_steps": 3, "warmup_steps": 1}, checkpoint={"every": None},
                         evaluation={"every": None, "at_end": False})
    first, second = (helpers.load_weights(Path(Trainer(config, output_dir=tmp_path / name).train()["run_dir"]) / "model")
                     for name in ("a", "b"))
    assert first.keys() == second.keys() and first
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_mt_check_notes_a_deterministic_run(tmp_path: Path, make_config):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(make_config()), encoding="utf-8")
    on = CliRunner().invoke(app, ["check", str(tmp_path / "run.yaml"), "deterministic=true", "--no-data"])
    assert on.exit_code == 0, on.output
    notes = [line for line in on.output.splitlines() if line.startswith("note: the run is deterministic (deterministic: true)")]
    assert len(notes) == 1 and "slower" in notes[0] and "bit for bit" in notes[0]
    off = CliRunner().invoke(app, ["check", str(tmp_path / "run.yaml"), "--no-data"])
    assert off.exit_code == 0 and "deterministic" not in off.output


def test_resume_with_deterministic_changed_is_refused(tmp_path: Path, make_config):
    from mtcore.errors import ConfigError

    config = make_config(schedule={"max_steps": 4, "warmup_steps": 1}, checkpoint={"every": 2}, evaluation={"every": None, "at_end": False})
    run = tmp_path / "run"
    Trainer(config, output_dir=run).train()
    (run / "summary.json").unlink()  # as if it had stopped after its last checkpoint
    with pytest.raises(ConfigError, match=r"config key 'deterministic' changed \(False -> True\)"):
        Trainer({**config, "deterministic": True}, output_dir=run, resume=True).train()


def test_the_gpu_only_refusals_read_as_one_line(probe, monkeypatch):
    """What torch raises only on a GPU, by its exact text: cuBLAS without its workspace setting (also when wrapped, as
    torch.compile does), and a CUDA kernel; and the warning when CUDA ran before the variable was set."""
    import warnings

    from mtcore.train import determinism

    cublas = ("Deterministic behavior was enabled with either `torch.use_deterministic_algorithms(True)` or "
              "`at::Context::setDeterministicAlgorithms(true)`, but this operation is not deterministic because it uses CuBLAS "
              "and you have CUDA >= 10.2. To enable deterministic behavior in this case, you must set an environment variable "
              "before running your PyTorch application: CUBLAS_WORKSPACE_CONFIG=:4096:8 or CUBLAS_WORKSPACE_CONFIG=:16:8. For "
              "more information, go to https://docs.nvidia.com/cuda/cublas/index.html#results-reproducibility")
    wrapped = RuntimeError("backend compiler failed")
    wrapped.__cause__ = RuntimeError(cublas)
    for error in (RuntimeError(cublas), wrapped):
        line = determinism.nondeterministic_error(error)
        assert line and "CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment before Python starts" in line, line
    kernel = RuntimeError("nll_loss2d_forward_out_cuda_template does not have a deterministic implementation, but you set "
                          "'torch.use_deterministic_algorithms(True)'. You can turn off determinism just for this operation")
    assert "implementation of nll_loss2d_forward_out_cuda_template," in determinism.nondeterministic_error(kernel)
    assert determinism.nondeterministic_error(RuntimeError("CUDA out of memory")) is None

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        previous = determinism.enable()
    determinism.restore(previous)
    assert [str(w.message) for w in caught if "CUDA was already used" in str(w.message)], [str(w.message) for w in caught]
