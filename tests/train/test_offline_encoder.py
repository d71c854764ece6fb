"""A hub encoder that is not cached, with the hub switched off (HF_HUB_OFFLINE=1, as in these tests): one line that says
offline mode is on, nothing written."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


def test_an_uncached_hub_encoder_offline_is_one_line_saying_offline_mode_is_on(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"path": "no-such-org/no-such-encoder"}, "tasks": [{"id": "rsg:terra", "source": "sample"}]}))
    result = CliRunner().invoke(app, ["train", str(config), "-o", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert result.stderr.strip() == ("error: encoder 'no-such-org/no-such-encoder' is not in the local Hugging Face cache and offline "
                                     "mode is on (HF_HUB_OFFLINE=1): download it once online, or point encoder.path at a local model folder")
    assert not (tmp_path / "run").exists()
