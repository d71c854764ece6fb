"""``mt new-config``: a starter config for the installed tasks, which mt check passes as written (a packaging audit:
after pip install there was no config to run, examples/ being in the checkout only)."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_default_config_takes_a_sampled_task_of_each_plugin_and_passes_mt_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = _cli("new-config")
    assert written.exit_code == 0, written.output
    config = yaml.safe_load((tmp_path / "mtcore.yaml").read_text(encoding="utf-8"))
    ids = [entry["id"] for entry in config["tasks"]]
    assert {i.split(":")[0] for i in ids} == {"rsg", "nli", "sentiment"} and all(e["source"] == "sample" for e in config["tasks"])
    assert "tiny" in config["encoder"] and "next: mt check mtcore.yaml && mt train mtcore.yaml" in written.stdout
    checked = _cli("check", "mtcore.yaml", "--no-data")
    assert checked.exit_code == 0 and "config ok" in checked.stdout, checked.output
    again = _cli("new-config")
    assert again.exit_code == 2 and "mtcore.yaml exists; choose another name, or add --force" in again.stderr
    assert _cli("new-config", "--force").exit_code == 0


def test_named_tasks_an_encoder_and_stdout(tmp_path):
    encoder = tmp_path / "my models" / "rubert"
    encoder.mkdir(parents=True)
    printed = _cli("new-config", "-", "--task", "terra", "-t", "nli:xnli-ru", "--encoder", str(encoder))
    assert printed.exit_code == 0, printed.output
    config = yaml.safe_load(printed.stdout)
    assert [e["id"] for e in config["tasks"]] == ["rsg:terra", "nli:xnli-ru"] and config["encoder"] == {"path": str(encoder)}
    unknown = _cli("new-config", "-", "--task", "rsg:terrra")
    assert unknown.exit_code == 2 and "did you mean 'rsg:terra'" in unknown.stderr
    folder = _cli("new-config", tmp_path)
    assert folder.exit_code == 2 and "is a folder; give a file name" in folder.stderr


def test_stdout_header_and_plugins_left_out(monkeypatch):
    printed = _cli("new-config", "-")
    assert printed.exit_code == 0 and printed.stdout.startswith("# mt train CONFIG.yaml\n")
    monkeypatch.setenv("MT_LOAD_PLUGINS", "mtcore")
    none = _cli("new-config", "-")
    assert none.exit_code == 2 and "MT_LOAD_PLUGINS leaves out the installed plugin(s)" in none.stderr


def test_an_encoder_folder_that_is_not_there_is_refused_before_writing(tmp_path, monkeypatch):
    """It wrote path: ./nofolder, exit 0, and the mt check the header asks for failed."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["new-config", "m.yaml", "--encoder", "./nofolder"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --encoder: there is no folder './nofolder'"), result.stderr
    assert not (tmp_path / "m.yaml").exists()
