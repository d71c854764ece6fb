"""Importing the package and its plugin modules pulls in no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "datasets")
MODULES = ("mt_sentiment", "mt_sentiment.plugin", "mt_sentiment.tasks")


def test_plugin_modules_import_nothing_heavy():
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(MODULES)!r}: importlib.import_module(name)\n"
        "import mt_sentiment.plugin as p\n"
        "tasks = []\n"
        "p.mt_register_tasks(tasks.append)\n"
        f"print(json.dumps({{'heavy': [m for m in {list(HEAVY)!r} if m in sys.modules], 'tasks': len(tasks)}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "tasks": 3}
