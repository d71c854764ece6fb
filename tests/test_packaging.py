"""The wheels carry what the packages need at run time: every data file (plugin samples, the
plugin template), py.typed and the ``mtcore`` entry points — a file left out of ``package-data``
works in an editable install and breaks after ``pip install``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECTS = {  # project folder -> its package
    ".": "mtcore",
    "plugins/mt-russian-superglue": "mt_russian_superglue",
    "plugins/mt-nli": "mt_nli",
    "plugins/mt-sentiment": "mt_sentiment",
}


def _package_files(package_dir: Path) -> set[str]:
    return {p.relative_to(package_dir.parent).as_posix() for p in package_dir.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _build_wheel(project: Path, package: str, tmp_path: Path) -> Path:
    """Build from a copy holding only what the build reads (the checkout is left untouched)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (project / name).exists():
            shutil.copy(project / name, source / name)
    shutil.copytree(project / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                           "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    return wheel


@pytest.mark.parametrize("folder", list(PROJECTS))
def test_wheel_holds_every_package_file_and_the_entry_points(folder, tmp_path):
    project, package = REPO / folder, PROJECTS[folder]
    wheel = _build_wheel(project, package, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    expected = _package_files(project / package)
    assert any(not name.endswith(".py") for name in expected)  # the check covers data files, not only modules
    missing = sorted(expected - names)
    assert not missing, f"left out of {wheel.name}: {missing[:10]} (add them to [tool.setuptools.package-data])"
    assert "[mtcore]" in entry_points
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the Apache-2.0 text (LICENSE) is not in the wheel"
