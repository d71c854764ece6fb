"""The ``lr`` of a ``train`` event is the rate that step trained at. It was read after the schedule's step: the next
step's (a linear schedule without warmup logged 7.5e-4 for a first step at 1e-3, and 0.0 for the last)."""

from __future__ import annotations

import pytest

from mtcore import Trainer

from .conftest import read_events


@pytest.mark.parametrize("warmup, expected", [(0, [1e-3, 7.5e-4, 5e-4, 2.5e-4]), (2, [0.0, 5e-4, 1e-3, 5e-4])])
def test_the_logged_lr_is_the_one_the_step_trained_at(tmp_path, make_config, warmup, expected):
    config = make_config(optimizer={"lr": 1e-3}, schedule={"name": "linear", "max_steps": 4, "warmup_steps": warmup},
                         logging={"every": 1, "progress": "none", "plot": False}, checkpoint={"every": None})
    Trainer(config, output_dir=tmp_path / "run").train()
    logged = {e["step"]: e["lr"] for e in read_events(tmp_path / "run") if e["event"] == "train"}
    assert [logged[step] for step in (1, 2, 3, 4)] == pytest.approx(expected)
