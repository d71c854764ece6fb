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


def test_the_folder_mt_cache_names_pasted_back_and_a_json_clear(tmp_path, write):
    """`mt cache` says "... in CACHE/generator"; --cache-dir CACHE/generator listed 0 entries and a clear there removed
    nothing, exit 0. `--clear --json` printed text; `--older-than nan` removed nothing as a success."""
    write.jsonl(tmp_path / "data" / "train.jsonl", [{"text": "кот", "label": "pos"}])
    cache = tmp_path / "cache"
    load_raw(_task(), "local", data_dir=tmp_path / "data", splits=("train",), cache_dir=cache)
    runner = CliRunner()
    listed = runner.invoke(app, ["cache", "--cache-dir", str(cache / "generator"), "--json"])
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)["entries"]) == 1, listed.output
    nan = runner.invoke(app, ["cache", "--cache-dir", str(cache), "--clear", "--older-than", "nan"])
    assert nan.exit_code == 2 and "--older-than must be a number of days >= 0" in nan.stderr
    cleared = runner.invoke(app, ["cache", "--cache-dir", str(cache / "generator"), "--clear", "--json"])
    assert cleared.exit_code == 0, cleared.output
    report = json.loads(cleared.stdout)
    assert report["removed"] == 1 and report["kept"] == 0 and report["bytes"] > 0 and report["cache_dir"] == str(cache)


def test_a_cache_dir_that_is_no_folder_is_one_line_with_did_you_mean(tmp_path):
    """A typo listed "0 cache entries" and cleared "removed 0", exit 0: the real cache was never looked at."""
    (tmp_path / "hfcache").mkdir()
    (tmp_path / "afile").write_text("x")
    runner = CliRunner()
    typo = runner.invoke(app, ["cache", "--cache-dir", str(tmp_path / "hfcahce")])
    assert typo.exit_code == 2 and len(typo.stderr.strip().splitlines()) == 1, typo.output
    assert f"--cache-dir {tmp_path / 'hfcahce'}: no such folder (did you mean '{tmp_path / 'hfcache'}'?)" in typo.stderr
    a_file = runner.invoke(app, ["cache", "--cache-dir", str(tmp_path / "afile"), "--clear"])
    assert a_file.exit_code == 2 and "a file, not a folder" in a_file.stderr and (tmp_path / "afile").read_text() == "x"
    assert runner.invoke(app, ["cache", "--cache-dir", str(tmp_path / "hfcache")]).exit_code == 0  # an empty cache is a cache


def test_mt_cache_finds_the_folder_datasets_uses_without_importing_it(tmp_path):
    """``default_cache_dir`` repeats ``datasets.config``'s rule (to keep ``mt cache`` light): the two agree."""
    import subprocess
    import sys

    code = ("import datasets.config\nfrom mtcore.data.cache_entries import default_cache_dir\n"
            "print(default_cache_dir() == datasets.config.HF_DATASETS_CACHE, default_cache_dir())")
    for env in ({"HF_DATASETS_CACHE": str(tmp_path / "d")}, {"HF_HOME": str(tmp_path / "h")}, {"XDG_CACHE_HOME": str(tmp_path / "x")},
                {"HF_HOME": str(tmp_path / "h"), "XDG_CACHE_HOME": str(tmp_path / "x")}, {"HOME": str(tmp_path / "home")}):
        clean = {k: v for k, v in os.environ.items() if k not in ("HF_DATASETS_CACHE", "HF_HOME", "XDG_CACHE_HOME")}
        out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120)
        assert out.stdout.startswith("True "), (env, out.stdout, out.stderr[-500:])
        assert str(tmp_path) in out.stdout, out.stdout


def test_entries_deleted_while_they_are_listed_are_left_out(tmp_path, monkeypatch):
    """mt cache beside another mt cache --clear: 'unexpected FileNotFoundError' from a stat of a deleted file."""
    import shutil
    from pathlib import Path

    from mtcore.data import cache_entries as entries_module

    root = tmp_path / "cache"
    for key in ("a", "b"):
        version = root / "generator" / f"{entries_module.PREFIX}{key}" / "0.0.0"
        version.mkdir(parents=True)
        (version / "generator-train.arrow").write_bytes(b"x" * 10)
    real = Path.rglob

    def deleting(self, pattern):  # entry 'a' goes while it is listed
        found = list(real(self, pattern))
        if self.name.endswith("a"):
            shutil.rmtree(self)
        return iter(found)

    monkeypatch.setattr(Path, "rglob", deleting)
    listed = entries_module.cache_entries(root)
    assert [e.key for e in listed] == ["b"] and listed[0].bytes == 10
