"""RuTweetCorp read again under another spelling of its folder, and the split a saved model records."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from mtcore.testing.smoke import smoke_train


def corpus(root: Path) -> None:
    """positive.csv and negative.csv in RuTweetCorp's layout (';', every field quoted, no header, 12 columns)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, ttype in (("positive.csv", "1"), ("negative.csv", "-1")):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(20):
            writer.writerow([f"{ttype}{i}", "1386325927", f"user{i}", f"твит {ttype} {i}", ttype, "0", "0", "0", "7569", "62", "61", "0"])
        (root / name).write_text(buffer.getvalue(), encoding="utf-8")


def test_mokoron_same_folder_by_relative_path_and_symlink_after_absolute(registry, read_source, tmp_path, monkeypatch):
    folder = tmp_path / "mokoron"
    corpus(folder)
    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    task = registry.task("sentiment:mokoron")
    first = read_source(task, "local", ("train",), data_dir=str(folder))["train"]
    monkeypatch.chdir(tmp_path)
    # the rows come from the cache filled by the first read (keyed by resolved paths), which names the files absolutely
    for spelling in ("mokoron", os.path.join(".", "mokoron", ""), "link"):
        again = read_source(task, "local", ("train",), data_dir=spelling)["train"]
        assert list(again["idx"]) == list(first["idx"])


def test_saved_model_records_the_split_actually_made(tiny_encoder, tmp_path):
    result = smoke_train(["sentiment:mokoron", "sentiment:rusentiment"], encoder=tiny_encoder, output_dir=tmp_path / "run", steps=1,
                         overrides=["tasks.0.sources.sample.seed=7", "tasks.0.sources.sample.proportions={train: 0.5, validation: 0.25, test: 0.25}",
                                    "tasks.1.sources.sample.seed=3"])
    tasks = json.loads((result.output_dir / "model" / "mtcore.json").read_text(encoding="utf-8"))["tasks"]
    mokoron, rusentiment = tasks["sentiment:mokoron"]["sources"], tasks["sentiment:rusentiment"]["sources"]
    assert mokoron["sample"].endswith("split 50/25/25 with seed 7"), mokoron
    assert mokoron["local"].endswith("split 80/10/10 with seed 42"), mokoron  # the source not read keeps its defaults
    assert rusentiment["sample"].endswith("25% of train held out as validation (seed 3)"), rusentiment
