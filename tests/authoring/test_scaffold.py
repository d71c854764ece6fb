"""``mt new-plugin``: a scaffolded plugin installs, passes its own tests, is listed and trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clitools import MT, clean_env, run_mt
from mtcore.cli import scaffold
from mtcore.errors import MtError, UsageError

NAME = "mt-authoring-demo"  # plugin "authoring_demo", package "mt_authoring_demo"
TASK_ID = "authoring_demo:authoring_demo"


def _pip_install_editable(project: Path, target: Path) -> Path:
    """``pip install -e`` into ``target`` (not the shared venv); returns a folder for PYTHONPATH.

    An editable install works through a ``.pth`` file, which Python reads only in site
    directories: the returned folder holds a ``sitecustomize.py`` making ``target`` one.
    """
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), "-e", str(project)], check=True, capture_output=True, text=True)
    boot = target.parent / "boot"
    boot.mkdir()
    (boot / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({str(target)!r})\n")
    return boot


@pytest.mark.parametrize("name, fragment", [
    ("Mt-Toxic", "distribution name 'Mt-Toxic' (NAME) is not valid"),
    ("9lives", "is not valid"),
    ("mt--toxic", "is not valid"),
    ("json", "clashes with Python"),
    ("class", "clashes with Python"),
    ("mt-", "is not valid"),
])
def test_invalid_names_are_refused_in_one_line_with_exit_2(tmp_path, name, fragment):
    done = run_mt("new-plugin", name, "--dir", str(tmp_path / "out"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert not (tmp_path / "out").exists()


def test_names_are_derived_from_the_distribution_name():
    names = scaffold.plugin_names("mt-toxic-comments")
    assert (names.distribution, names.package, names.plugin) == ("mt-toxic-comments", "mt_toxic_comments", "toxic_comments")
    assert scaffold.plugin_names("reviews", plugin="rv").plugin == "rv"
    with pytest.raises(UsageError, match="short name 'mtcore'"):
        scaffold.plugin_names("mt-unused-name", plugin="mtcore")  # mtcore's own entry point


def test_a_non_empty_target_is_refused_and_left_alone(tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    done = run_mt("new-plugin", NAME, "--dir", str(target))
    assert done.returncode == 2 and "not empty" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_an_empty_target_directory_is_used(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    names, created, files = scaffold.create_plugin(NAME, target)
    assert created == target.absolute()
    assert (target / "pyproject.toml").is_file() and (target / names.package / "plugin.py").is_file()
    assert not any(p.name.endswith(scaffold.TEMPLATE_SUFFIX) for p in target.rglob("*"))
    assert "{{" not in "".join(p.read_text() for p in target.rglob("*") if p.is_file())
    assert sorted(p.as_posix() for p in files) == sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())


def test_a_failed_scaffold_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(names, destination):
        (destination / "pyproject.toml").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(scaffold, "render_plugin", broken)
    with pytest.raises(MtError, match=r"^cannot write to .*plugin: disk full$"):  # one line, not 'unexpected OSError'
        scaffold.create_plugin(NAME, tmp_path / "deeper" / "plugin")
    assert list(tmp_path.iterdir()) == []  # not even the parent folder it made


def test_scaffolded_plugin_installs_passes_its_tests_is_listed_and_trains(tmp_path):
    project = tmp_path / "work" / NAME
    done = run_mt("new-plugin", NAME, "--dir", str(project))
    assert done.returncode == 0, done.stderr
    assert "pip install -e" in done.stdout and (project / "tests" / "test_plugin.py").is_file()
    boot = _pip_install_editable(project, tmp_path / "site")

    # its own tests (mtcore.testing: plugin checks + a smoke training with the tiny_encoder fixture)
    env = clean_env(PYTHONPATH=os.pathsep.join(filter(None, [str(boot), os.environ.get("PYTHONPATH", "")])),
                    HF_DATASETS_CACHE=str(tmp_path / "hf-cache"), OMP_NUM_THREADS="1")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env,
                           capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "2 passed" in tests.stdout

    # visible to mt; the install is editable: an edit of the source shows without reinstalling
    plugin_py = project / "mt_authoring_demo" / "plugin.py"
    plugin_py.write_text(plugin_py.read_text().replace('description="Example:', 'description="Edited:'))
    listed = run_mt("list-tasks", "--json", "--plugin", "authoring_demo", plugin_path=boot)
    assert listed.returncode == 0, listed.stderr
    tasks = json.loads(listed.stdout)
    assert [t["id"] for t in tasks] == [TASK_ID] and tasks[0]["description"].startswith("Edited:")

    # and trainable with the config it ships
    run_dir = tmp_path / "run"
    trained = subprocess.run([MT, "train", "train.yaml", "schedule.max_steps=3", "logging.every=1",
                              "checkpoint.every=null", "--output-dir", str(run_dir)], cwd=project, env=env,
                             capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 3
    assert set(summary["tasks"]) == {TASK_ID}
    assert {"accuracy", "f1_macro"} <= set(summary["tasks"][TASK_ID]["final"])


def test_a_taken_short_name_given_with_plugin_asks_for_another_plugin():
    with pytest.raises(UsageError, match=r"already uses the short name 'rsg'; pass another --plugin$"):
        scaffold.plugin_names("mt-brand-new", "rsg")
    with pytest.raises(UsageError, match=r"already uses the short name 'rsg'; choose another name or pass --plugin"):
        scaffold.plugin_names("mt-rsg")


def test_two_new_plugins_name_their_example_tasks_apart():
    """Every scaffold's task was named 'example': with two scaffolded plugins installed, the bare name was ambiguous and
    each plugin's own check_plugin test failed."""
    first, second = scaffold.plugin_names("mt-first-demo"), scaffold.plugin_names("mt-second-demo")
    assert (first.task, second.task) == ("first_demo", "second_demo")
    assert first.placeholders()["task"] == "first_demo"


def test_next_steps_quote_a_folder_with_spaces(tmp_path):
    """'cd my dir && python -m pytest' did not run as printed."""
    import shlex

    project = tmp_path / "my dir" / NAME
    done = run_mt("new-plugin", NAME, "--dir", str(project))
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.strip() for line in done.stdout.splitlines()[1:] if line.startswith("  ") and " " in line.strip()}
    assert shlex.split(lines["cd"])[1] == os.path.relpath(project) or shlex.split(lines["cd"])[1] == str(project)
    assert shlex.split(lines["pip"].split("#")[0])[3].removesuffix("[test]") in (os.path.relpath(project), str(project))
