"""A path with a name longer than the file system takes (255 bytes) was "unexpected OSError: [Errno 36] File name too
long: '<the whole name>'"; it is one line naming the path, shortened, and the fix (exit 2)."""

from __future__ import annotations

from pathlib import Path

from clitools import run_mt

REPO = Path(__file__).resolve().parents[1]
LONG = "n" * 300


def _one_line(result, path: str) -> None:
    assert result.returncode == 2, result.stderr
    shown = f"{path[:60]}...{path[-60:]}"
    assert result.stderr.strip() == f"error: {shown}: name too long (the file system takes at most 255 bytes a name); choose a shorter one"


def test_an_output_dir_with_a_too_long_name(tmp_path):
    out = tmp_path / LONG / "run"
    result = run_mt("train", str(REPO / "examples" / "quickstart.yaml"), "--output-dir", str(out),
                    env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, timeout=300)
    _one_line(result, str(out))
    assert list(tmp_path.iterdir()) == []


def test_a_model_dir_with_a_too_long_name(tmp_path):
    result = run_mt("evaluate", str(tmp_path / LONG), env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    _one_line(result, str(tmp_path / LONG))
