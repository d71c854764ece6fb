"""``mt cache``: what the data cache holds (which files, rows, size, age), and clearing old entries."""

from __future__ import annotations

import json
import os
import time

from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.data.task_data import load_raw
from mtcore.task import Source, Task


def _task() -> Task:
    return Task(name="reviews", kind="text_classification", labels=("neg", "pos"),
                sources={"local": Source.local("jsonl", {"train": "train.jsonl", "validation": "val.jsonl"})})


def test_mt_cache_lists_entries_by_their_files_and_clears_old_ones(tmp_path, write):
    data = tmp_path / "data"
    write.jsonl(data / "train.jsonl", [{"text": f"кот {i}", "label": "pos" if i % 2 else "neg"} for i in range(12)])
    write.jsonl(data / "val.jsonl", [{"text": "пёс", "label": "neg"}])
    cache = tmp_path / "cache"
    load_raw(_task(), "local", data_dir=data, splits=("train", "validation"), cache_dir=cache)
    runner = CliRunner()
    listed = runner.invoke(app, ["cache", "--cache-dir", str(cache), "--json"])
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)["entries"]
    assert sorted((e["source"].rsplit("/", 1)[-1], e["rows"]) for e in entries) == [("train.jsonl", 12), ("val.jsonl", 1)]
    table = runner.invoke(app, ["cache", "--cache-dir", str(cache)])
    assert table.exit_code == 0 and "2 cache entries" in table.stdout and "train.jsonl" in table.stdout
    old = next(e for e in entries if e["source"].endswith("val.jsonl"))
    folder = cache / "generator" / f"default-fingerprint={old['key']}"
    past = time.time() - 40 * 86400
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (past, past))
    cleared = runner.invoke(app, ["cache", "--cache-dir", str(cache), "--clear", "--older-than", "30"])
    assert cleared.exit_code == 0 and "removed 1 cache entries" in cleared.stdout and "1 kept" in cleared.stdout
    assert not folder.exists() and not list(cache.glob(f"*{old['key']}*.lock"))
    assert len(json.loads(runner.invoke(app, ["cache", "--cache-dir", str(cache), "--json"]).stdout)["entries"]) == 1
    refused = runner.invoke(app, ["cache", "--cache-dir", str(cache), "--older-than", "3"])
    assert refused.exit_code == 2 and "add --clear" in refused.stderr
    everything = runner.invoke(app, ["cache", "--cache-dir", str(cache), "--clear"])
    assert everything.exit_code == 0 and "removed 1 cache entries" in everything.stdout
    again = load_raw(_task(), "local", data_dir=data, splits=("train",), cache_dir=cache)  # a cleared cache is rebuilt
    assert again["train"].num_rows == 12
