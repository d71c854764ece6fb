"""The ``mt export`` command that a run refusing a model with task-specific top layers suggests is one ``mt export``
accepts. The bug: the hint said ``mt export MODEL --task TASK --output-dir DIR``; ``mt export`` takes the output
folder as its second argument and has no ``--output-dir``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer

from mtcore.cli.app import app
from mtcore.errors import ConfigError


def test_the_task_layers_hint_names_an_export_command_that_parses():
    from mtcore.train.warm_start import _check_task_layers

    with pytest.raises(ConfigError) as info:
        _check_task_layers(SimpleNamespace(task_layers=None), 1, "runs/split/model")
    found = re.search(r"\((mt export [^,]+), then encoder\.path: DIR\)", str(info.value))
    assert found, str(info.value)
    words = shlex.split(found.group(1))
    values = {"MODEL": "runs/split/model", "DIR": "exported/sent", "TASK": "user:sent"}
    export = typer.main.get_command(app).commands["export"]
    context = export.make_context("export", [values.get(word, word) for word in words[2:]])  # click's own parsing
    assert context.params["path"] == Path("runs/split/model") and context.params["out_dir"] == Path("exported/sent")
    assert context.params["task"] == "user:sent"
