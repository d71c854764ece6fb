"""A launch that asks Accelerate for FSDP, DeepSpeed or Megatron-LM is refused in one line, before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mtcore.train.accelerator import UNSUPPORTED_LAUNCHES, check_launch


@pytest.mark.parametrize("variable", sorted(UNSUPPORTED_LAUNCHES))
def test_mt_train_under_an_fsdp_or_deepspeed_launch_is_one_line_and_leaves_nothing(variable: str, tmp_path: Path, make_config,
                                                                                   monkeypatch):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(make_config()), encoding="utf-8")
    monkeypatch.setenv(variable, "true")  # what accelerate launch --use_fsdp / --use_deepspeed sets
    result = CliRunner().invoke(app, ["train", str(tmp_path / "run.yaml"), "--output-dir", str(tmp_path / "run")])
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert f"asks for {UNSUPPORTED_LAUNCHES[variable]} ({variable} is set" in lines[0] and "torchrun --nproc_per_node" in lines[0]
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_a_plain_or_ddp_launch_passes():
    check_launch({})
    check_launch({"ACCELERATE_USE_FSDP": "false", "ACCELERATE_USE_DEEPSPEED": "0", "ACCELERATE_USE_CPU": "true"})
