"""Long phases show progress in a terminal (and stay quiet in logs): prediction and evaluation batches,
and ``datasets``' preparing / tokenizing bars."""

from __future__ import annotations

import sys

import pytest


class _Terminal:
    def __init__(self, stream, tty: bool):
        self.stream, self.tty = stream, tty

    def isatty(self) -> bool:
        return self.tty

    def __getattr__(self, name):
        return getattr(self.stream, name)


@pytest.mark.parametrize("tty", [True, False])
def test_batches_get_a_progress_bar_only_in_a_terminal(monkeypatch, tty):
    from mtcore.predict.predictor import progress_over

    monkeypatch.setattr(sys, "stderr", _Terminal(sys.stderr, tty))
    batches = list(range(40))
    shown = progress_over(batches, len(batches), "Predicting")
    assert (shown is not batches) == tty
    assert list(shown) == batches
    assert progress_over(batches[:5], 5, "Predicting") is not None and progress_over(batches[:5], 5, "x") == batches[:5]  # few: no bar
    assert progress_over(batches, 40, "x", show=False) is batches  # the other processes of a launch


@pytest.mark.parametrize("tty", [True, False])
def test_datasets_bars_stay_on_in_a_terminal_while_data_is_prepared(monkeypatch, tty):
    from datasets.utils.tqdm import are_progress_bars_disabled, enable_progress_bars

    from mtcore.predict.predictor import quiet_datasets
    from mtcore.train.build import quiet_progress_bars

    enable_progress_bars()
    monkeypatch.setattr(sys, "stderr", _Terminal(sys.stderr, tty))
    with quiet_progress_bars():
        assert are_progress_bars_disabled() is not tty
    with quiet_datasets():
        assert are_progress_bars_disabled() is not tty
    assert not are_progress_bars_disabled()
