"""Shared fixtures: offline environment, installed fixture plugins, a way to run the real ``mt``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one torch thread per worker: -n auto runs a worker per core already
    os.environ.setdefault("OMP_NUM_THREADS", "1")

FIXTURE_PLUGINS = Path(__file__).parent / "fixtures" / "plugins"


@pytest.fixture(scope="session")
def fixture_plugins(tmp_path_factory) -> Path:
    """A directory where the test-only plugin distributions are really installed (pip --target)."""
    target = tmp_path_factory.mktemp("fixture-plugins")
    sources = tmp_path_factory.mktemp("fixture-plugin-sources")  # build outside the repo tree
    dists = []
    for path in sorted(FIXTURE_PLUGINS.iterdir()):
        if (path / "pyproject.toml").exists():
            dists.append(str(shutil.copytree(path, sources / path.name)))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(target), *dists],
        check=True, capture_output=True, text=True,
    )
    return target


@pytest.fixture(autouse=True)
def _user_registrations_stay_in_their_test():
    """What a test registers from Python (kept across registry refreshes, mtcore.plugins._user) is forgotten after it,
    so a later refresh in the same worker does not bring it back into another test."""
    import mtcore.plugins

    kept = dict(mtcore.plugins._user)
    yield
    mtcore.plugins._user.clear()
    mtcore.plugins._user.update(kept)
