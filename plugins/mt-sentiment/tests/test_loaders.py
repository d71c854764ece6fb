"""The sentiment sources read their real layouts, quirks included, and report bad rows in one line."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from mtcore.errors import ConfigError, DataError
from mtcore.task import Source


def write_mokoron(path: Path, tweets: list[str], ttype: str) -> Path:
    """A RuTweetCorp file: ';' separated, every field quoted, no header, 12 columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
    for i, text in enumerate(tweets):
        writer.writerow([str(4089 * 10**14 + i + (0 if ttype == "1" else 10**6)), "1386325927", f"user{i}", text, ttype, "0", "0", "0", "7569", "62", "61", "0"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def corpus(root: Path, positive: int = 30, negative: int = 20) -> None:
    tweets = [f"хорошо {i}" for i in range(positive)]
    tweets[0] = "радость; и ещё; точки с запятой"
    tweets[1] = "первая строка\nвторая строка"
    write_mokoron(root / "positive.csv", tweets, "1")
    write_mokoron(root / "negative.csv", [f"плохо {i}" for i in range(negative)], "-1")


def counts(data) -> dict[str, dict[int, int]]:
    return {split: dict(Counter(ds["labels"])) for split, ds in data.items()}


# ---- mokoron ---------------------------------------------------------------------------------
def test_mokoron_official_files_and_default_split(registry, read_source, tmp_path):
    corpus(tmp_path)
    task = registry.task("sentiment:mokoron")
    data = read_source(task, "local", data_dir=str(tmp_path))
    assert counts(data) == {"train": {1: 24, 0: 16}, "validation": {1: 3, 0: 2}, "test": {1: 3, 0: 2}}  # 80/10/10 per class
    texts = [row["text"] for split in data.values() for row in split]
    assert "радость; и ещё; точки с запятой" in texts and "первая строка\nвторая строка" in texts  # quote-aware reading
    ids = [row["idx"] for split in data.values() for row in split]
    assert len(set(ids)) == 50  # every tweet exactly once


def test_mokoron_split_is_reproducible_and_seeded(registry, read_source, tmp_path):
    corpus(tmp_path, 40, 40)
    task = registry.task("sentiment:mokoron")
    first = read_source(task, "local", ("test",), data_dir=str(tmp_path))["test"]
    again = read_source(task, "local", ("test",), data_dir=str(tmp_path))["test"]
    other = read_source(task, "local", ("test",), data_dir=str(tmp_path), seed=7)["test"]
    assert list(first["idx"]) == list(again["idx"]) and list(first["idx"]) != list(other["idx"])
    raw = read_source(task, "local", ("train",), raw=True, data_dir=str(tmp_path), proportions={"train": 0.5, "validation": 0.25, "test": 0.25})
    assert raw["train"].num_rows == 40
    assert "seed=42" in raw["train"].info.description and "train=40" in raw["train"].info.description


def test_mokoron_unknown_ttype_names_file_and_row(registry, read_source, tmp_path):
    corpus(tmp_path)
    path = tmp_path / "negative.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].replace('"-1"', '"0"')
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_source(registry.task("sentiment:mokoron"), "local", data_dir=str(tmp_path))
    message = str(info.value)
    assert "sentiment:mokoron" in message and str(path) in message and "row 4" in message and "ttype '0'" in message
    assert "\n" not in message


def test_mokoron_missing_column_names_file_and_row(registry, read_source, tmp_path):
    corpus(tmp_path)
    path = tmp_path / "positive.csv"
    with path.open("a", encoding="utf-8") as handle:
        handle.write('"1";"2";"user";"короткая строка"\n')
    with pytest.raises(DataError) as info:
        read_source(registry.task("sentiment:mokoron"), "local", data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 32" in message and "4 fields" in message and "\n" not in message


def test_mokoron_bad_proportions_are_a_config_error(registry, read_source, tmp_path):
    corpus(tmp_path)
    with pytest.raises(ConfigError, match="sum to 1"):
        read_source(registry.task("sentiment:mokoron"), "local", data_dir=str(tmp_path), proportions={"train": 0.9, "test": 0.2})


# ---- RuSentiment -----------------------------------------------------------------------------
def write_rusentiment(path: Path, rows: list[tuple[str, str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "text"])
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def test_rusentiment_files_and_held_out_validation(registry, read_source, tmp_path):
    labels = ["positive", "negative", "neutral", "speech", "skip"]
    write_rusentiment(tmp_path / "rusentiment_random_posts.csv", [(labels[i % 5], f"пост {i}\nвторая строка") for i in range(100)])
    write_rusentiment(tmp_path / "rusentiment_test.csv", [(labels[i % 5], f"тест {i}") for i in range(15)])
    task = registry.task("sentiment:rusentiment")
    data = read_source(task, "local", data_dir=str(tmp_path))
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 90, "validation": 10, "test": 15}
    assert counts(data)["validation"] == {i: 2 for i in range(5)}  # stratified
    assert data["train"][0]["text"].endswith("\nвторая строка")
    for split, text in (("train", "пост {}\nвторая строка"), ("validation", "пост {}\nвторая строка"), ("test", "тест {}")):
        assert all(row["text"] == text.format(row["idx"]) for row in data[split]), split  # idx: the row's place in its file
    assert sorted([*data["train"]["idx"], *data["validation"]["idx"]]) == list(range(100))
    whole = read_source(task, "local", ("train",), data_dir=str(tmp_path), validation_share=0)
    assert whole["train"].num_rows == 100


def test_rusentiment_unknown_label_names_file_and_row(registry, read_source, tmp_path):
    path = write_rusentiment(tmp_path / "rusentiment_test.csv", [("positive", "а"), ("sarcasm", "б")])
    with pytest.raises(DataError) as info:
        read_source(registry.task("sentiment:rusentiment"), "local", ("test",), data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 3" in message and "'sarcasm'" in message and "\n" not in message


def test_rusentiment_needs_data_dir(registry, read_source):
    with pytest.raises(DataError, match="needs data_dir"):
        read_source(registry.task("sentiment:rusentiment"), "local", ("train",))


# ---- the generic sentiment task --------------------------------------------------------------
def test_generic_sentiment_reads_user_columns(registry, read_source, tmp_path):
    (tmp_path / "reviews.jsonl").write_text(
        "".join(json.dumps({"review": t, "stars": s}, ensure_ascii=False) + "\n" for t, s in [("плохо", "bad"), ("супер", "good"), ("ок", "good")]),
        encoding="utf-8",
    )
    task = registry.task("sentiment:sentiment").replace(
        inputs={"text": "review", "label": "stars"}, labels=("bad", "good"),
        sources={"local": Source.local("auto", {"train": "reviews.jsonl"})},
    )
    data = read_source(task, "local", ("train",), data_dir=str(tmp_path))
    assert list(data["train"]["labels"]) == [0, 1, 1] and data["train"][1]["text"] == "супер"


def test_generic_sentiment_missing_column_names_file_and_row(registry, read_source, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nхорошо,positive\n", encoding="utf-8")
    task = registry.task("sentiment:sentiment").replace(inputs={"text": "body"}, sources={"local": Source.local("auto", {"train": "train.csv"})})
    with pytest.raises(DataError) as info:
        read_source(task, "local", ("train",), data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 2" in message and "'body'" in message and "\n" not in message


# ---- samples ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("task_id", "sizes", "classes"), [
    ("sentiment:mokoron", {"train": 150, "validation": 50, "test": 50}, 2),
    ("sentiment:rusentiment", {"train+validation": 220, "test": 60}, 5),  # a quarter of train held out
    ("sentiment:sentiment", {"train": 60, "validation": 50, "test": 50}, 3),
])
def test_sample_source_loads(registry, read_source, task_id, sizes, classes):
    data = read_source(registry.task(task_id), "sample")
    rows = {split: ds.num_rows for split, ds in data.items()}
    if "train+validation" in sizes:
        rows["train+validation"] = rows.pop("train") + rows["validation"]
        assert rows.pop("validation") >= 50
    assert rows == sizes
    assert set(data["train"]["labels"]) == set(range(classes))


def test_mokoron_missing_class_file_is_named_not_swapped_for_the_other(registry, read_source, tmp_path):
    corpus(tmp_path)
    (tmp_path / "negative.csv").unlink()
    with pytest.raises(DataError) as caught:
        read_source(registry.task("sentiment:mokoron"), "local", ("train",), data_dir=str(tmp_path))
    message = str(caught.value)
    assert "no file matches 'negative.csv'; RuTweetCorp needs both positive.csv and negative.csv (one per class)" in message, message
    assert "did you mean" not in message
