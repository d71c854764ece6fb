"""Helpers for running the real ``mt`` command in tests (importable: tests/ is on pythonpath)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MT = str(Path(sys.executable).parent / "mt")
def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MT_")}
    env.update(extra)
    return env


def run_mt(*args: str, plugin_path: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed ``mt`` console script in a subprocess."""
    full_env = clean_env(**(env or {}))
    if plugin_path is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_path), full_env.get("PYTHONPATH", "")]))
    return subprocess.run([MT, *args], capture_output=True, text=True, env=full_env, timeout=timeout)
