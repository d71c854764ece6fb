"""A tiny-encoder-<arch>/ left in an output folder is reused only when it is what encoder.tiny asks for (a paths
audit: a config asking hidden size 64 silently trained the 32-wide one there; a folder of something else ended in
'unexpected OSError: Directory not empty')."""

from __future__ import annotations

import shutil

import pytest

from mtcore.errors import ConfigError


def _config(hidden):
    return {"encoder": {"tiny": {"arch": "bert", "hidden_size": hidden, "num_layers": 1, "num_heads": 2}},
            "tasks": [{"id": "rsg:terra", "source": "sample", "max_length": 32}], "schedule": {"max_steps": 1, "warmup_steps": 0},
            "batching": {"batch_size": 4}, "evaluation": {"every": None, "at_end": False}, "checkpoint": {"every": None, "at_end": False},
            "logging": {"progress": "none", "plot": False}}


def test_a_leftover_demo_encoder_of_other_settings_or_a_foreign_folder_is_one_line(tmp_path):
    from mtcore import Trainer

    Trainer(_config(32), output_dir=tmp_path / "first").train()
    shutil.copytree(tmp_path / "first" / "tiny-encoder-bert", tmp_path / "second" / "tiny-encoder-bert")
    with pytest.raises(ConfigError, match=r"tiny-encoder-bert holds a demo encoder of other settings: hidden_size 32 "
                                          r"\(encoder.tiny asks 64\); delete that folder"):
        Trainer(_config(64), output_dir=tmp_path / "second").train()
    (tmp_path / "third" / "tiny-encoder-bert").mkdir(parents=True)
    (tmp_path / "third" / "tiny-encoder-bert" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"is in the way of the demo encoder \(encoder.tiny\)"):
        Trainer(_config(32), output_dir=tmp_path / "third").train()
    assert (tmp_path / "third" / "tiny-encoder-bert" / "notes.txt").read_text() == "mine"
    Trainer(_config(32), output_dir=tmp_path / "second").train()  # the same settings: reused
