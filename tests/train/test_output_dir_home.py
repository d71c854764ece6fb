"""``~`` in the run folder (``output_dir: ~/runs/x`` in YAML, an ``output_dir=`` override, a quoted ``-o '~/x'``) is the
home folder, for every file of the run: it put model/ under $HOME and the rest in a folder named '~' here."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


def test_a_tilde_output_dir_is_the_home_folder_for_the_whole_run(tmp_path: Path, make_config, monkeypatch):
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir(), here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    config = here / "run.yaml"
    config.write_text(yaml.safe_dump({**make_config(schedule={"max_steps": 2, "warmup_steps": 1}), "output_dir": "~/runs/a"}))
    for extra, run in (([], home / "runs" / "a"), (["-o", "~/runs/b"], home / "runs" / "b")):
        result = CliRunner().invoke(app, ["train", str(config), *extra])
        assert result.exit_code == 0, result.output
        assert (run / "model" / "mtcore.json").is_file() and (run / "summary.json").is_file() and (run / "metrics.jsonl").is_file()
    assert list(here.iterdir()) == [config]  # no folder named '~' beside it
