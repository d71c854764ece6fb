"""The NLI sources read their real layouts, quirks included, and report bad rows in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtcore.errors import DataError
from mtcore.task import Source

XNLI_HEADER = ["language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
               "sentence1", "sentence2", "promptID", "pairID", "genre", "label1", "label2", "label3", "label4", "label5",
               "sentence1_tokenized", "sentence2_tokenized", "match"]


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def xnli_eval_file(path: Path, rows: list[tuple[str, str, str, str, str]]) -> Path:
    """rows: (language, gold_label, sentence1, sentence2, pairID)."""
    lines = ["\t".join(XNLI_HEADER)]
    for language, gold, s1, s2, pair_id in rows:
        values = dict.fromkeys(XNLI_HEADER, "")
        values.update(language=language, gold_label=gold, sentence1=s1, sentence2=s2, pairID=pair_id, promptID="1", genre="fiction")
        lines.append("\t".join(values[h] for h in XNLI_HEADER))
    return write_text(path, "\n".join(lines) + "\n")


def write_xnli(root: Path) -> None:
    write_text(root / "XNLI-MT-1.0/multinli/multinli.train.ru.tsv",
               "premise\thypo\tlabel\n"
               'Он сказал: "привет.\tОн поздоровался.\tentailment\n'   # a stray quote: must not swallow the next line
               "Кот спит.\tКот бегает.\tcontradictory\n"
               "Идёт дождь.\tСейчас осень.\tneutral\n")
    xnli_eval_file(root / "XNLI-1.0/xnli.dev.tsv", [
        ("en", "neutral", "A man.", "A person.", "1"),
        ("ru", "entailment", "Мужчина идёт.", "Человек идёт.", "2"),
        ("de", "contradiction", "Ein Mann.", "Eine Frau.", "3"),
        ("ru", "contradiction", 'Она "улыбнулась.', "Она плачет.", "4"),
    ])
    xnli_eval_file(root / "XNLI-1.0/xnli.test.tsv", [("ru", "neutral", "Дом.", "Большой дом.", "10"), ("fr", "neutral", "Maison.", "Grande.", "11")])


# ---- XNLI ------------------------------------------------------------------------------------
def test_xnli_official_files(registry, read_source, tmp_path):
    write_xnli(tmp_path)
    task = registry.task("nli:xnli-ru")
    data = read_source(task, "local", data_dir=str(tmp_path))
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 3, "validation": 2, "test": 1}
    assert list(data["train"]["labels"]) == [0, 2, 1]  # "contradictory" is contradiction
    assert data["train"][0]["text"] == 'Он сказал: "привет.'  # quoting disabled: the quote is text
    assert list(data["validation"]["labels"]) == [0, 2] and list(data["validation"]["idx"]) == [2, 4]  # only language == ru
    assert data["validation"][1]["text"] == 'Она "улыбнулась.'


def test_xnli_rows_of_neither_layout_are_refused(registry, read_source, tmp_path):
    path = write_text(tmp_path / "XNLI-1.0/xnli.dev.tsv", "lang\ttext\nru\tx\n")
    with pytest.raises(DataError) as info:
        read_source(registry.task("nli:xnli-ru"), "local", ("validation",), data_dir=str(tmp_path))
    message = str(info.value)
    assert "nli:xnli-ru" in message and str(path) in message and "row 2" in message and "\n" not in message


def test_xnli_missing_column_names_file_and_row(registry, read_source, tmp_path):
    path = write_text(tmp_path / "XNLI-1.0/xnli.test.tsv", "language\tsentence1\tgold_label\nru\tА.\tneutral\n")
    with pytest.raises(DataError) as info:
        read_source(registry.task("nli:xnli-ru"), "local", ("test",), data_dir=str(tmp_path))
    assert str(path) in str(info.value) and "row 2" in str(info.value) and "'sentence2'" in str(info.value)


def test_xnli_unknown_label_names_file_and_row(registry, read_source, tmp_path):
    path = write_text(tmp_path / "XNLI-MT-1.0/multinli/multinli.train.ru.tsv", "premise\thypo\tlabel\nА.\tБ.\tneutral\nВ.\tГ.\tunsure\n")
    with pytest.raises(DataError) as info:
        read_source(registry.task("nli:xnli-ru"), "local", ("train",), data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 3" in message and "'unsure'" in message and "\n" not in message


def test_xnli_without_russian_rows_says_so(registry, read_source, tmp_path):
    xnli_eval_file(tmp_path / "XNLI-1.0/xnli.dev.tsv", [("en", "neutral", "A.", "B.", "1")])
    with pytest.raises(DataError, match="language == 'ru'"):
        read_source(registry.task("nli:xnli-ru"), "local", ("validation",), data_dir=str(tmp_path))


def test_xnli_hub_route(registry, read_source, tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"premise": Value("string"), "hypothesis": Value("string"),
                         "label": ClassLabel(names=["entailment", "neutral", "contradiction"])})
    for split, n in (("train", 4), ("validation", 2), ("test", 3)):
        target = tmp_path / "xnli" / "ru" / f"{split}-00000-of-00001.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_list([{"premise": f"П{i}", "hypothesis": f"Г{i}", "label": i % 3} for i in range(n)], features=features).to_parquet(str(target))
    configs = "".join(f"  - split: {s}\n    path: ru/{s}-*\n" for s in ("train", "validation", "test"))
    write_text(tmp_path / "xnli" / "README.md", f"---\nconfigs:\n- config_name: ru\n  data_files:\n{configs}---\n")  # as on the hub
    task = registry.task("nli:xnli-ru")
    assert task.sources["hub"].options["name"] == "ru"
    data = read_source(task, "hub", path=str(tmp_path / "xnli"))  # the real options, path replaced
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 4, "validation": 2, "test": 3}
    assert list(data["train"]["labels"]) == [0, 1, 2, 0]


# ---- HeadlineCause ---------------------------------------------------------------------------
def headline_rows(labels: list[int], prefix: str = "x") -> list[dict]:
    return [{"left_url": f"u{i}l", "right_url": f"u{i}r", "left_title": f"Левый {i}", "right_title": f"Правый {i}",
             "left_timestamp": 100 + i, "right_timestamp": 200 + i, "label": label, "result": "", "agreement": 1.0,
             "id": f"{prefix}{i}", "has_link": False} for i, label in enumerate(labels)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    return write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def test_headline_cause_raw_files(registry, read_source, tmp_path):
    write_jsonl(tmp_path / "ru/full/train.jsonl", headline_rows([0, 3, 6, 1]))
    write_jsonl(tmp_path / "ru/full/val.jsonl", headline_rows([5, 4]))
    write_jsonl(tmp_path / "ru/full/test.jsonl", headline_rows([2]))
    data = read_source(registry.task("nli:headline-cause-full"), "local", data_dir=str(tmp_path))
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 4, "validation": 2, "test": 1}
    assert list(data["train"]["labels"]) == [0, 3, 6, 1] and list(data["train"]["idx"]) == ["x0", "x1", "x2", "x3"]
    assert data["train"][0]["text"] == "Левый 0" and data["train"][0]["text_pair"] == "Правый 0"


def test_swap_augmentation_only_touches_train(registry, read_source, tmp_path):
    write_jsonl(tmp_path / "ru/simple/train.jsonl", headline_rows([0, 1, 2]))
    write_jsonl(tmp_path / "ru/simple/val.jsonl", headline_rows([1, 2]))
    task = registry.task("nli:headline-cause-simple")
    data = read_source(task, "local", ("train", "validation"), data_dir=str(tmp_path), swap_augment=True)
    train = data["train"]
    assert train.num_rows == 6 and data["validation"].num_rows == 2
    assert list(train["labels"]) == [0, 1, 2, 0, 2, 1]
    assert train[4]["text"] == "Правый 1" and train[4]["text_pair"] == "Левый 1" and train[4]["idx"] == "x1:swap"
    plain = read_source(task, "local", ("train",), data_dir=str(tmp_path))
    assert plain["train"].num_rows == 3  # off by default
    from mt_nli import with_swap_augment

    assert read_source(with_swap_augment(task), "local", ("train",), data_dir=str(tmp_path))["train"].num_rows == 6


def test_headline_cause_unknown_label_names_file_and_row(registry, read_source, tmp_path):
    path = write_jsonl(tmp_path / "ru/simple/train.jsonl", headline_rows([0, 1, 7]))
    with pytest.raises(DataError) as info:
        read_source(registry.task("nli:headline-cause-simple"), "local", ("train",), data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 3" in message and "7" in message and "\n" not in message


def test_headline_cause_hub_route(registry, read_source, tmp_path):
    from datasets import Dataset

    root = tmp_path / "headline_cause"
    for split, labels in (("train", [0, 1, 2, 1]), ("validation", [2]), ("test", [0, 0])):
        target = root / "ru_simple" / split / "0000.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_list(headline_rows(labels, prefix=split)).to_parquet(str(target))
    task = registry.task("nli:headline-cause-simple")
    data = read_source(task, "hub", path=str(root), swap_augment=True)
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 8, "validation": 1, "test": 2}
    assert list(data["train"]["labels"]) == [0, 1, 2, 1, 0, 2, 1, 2]


# ---- the generic nli task --------------------------------------------------------------------
def test_generic_nli_reads_user_files_with_renamed_fields(registry, read_source, tmp_path):
    write_text(tmp_path / "my" / "train.csv", "s1,s2,gold\nА,Б,entailment\nВ,Г,contradictory\nД,Е,neutral\n")
    write_text(tmp_path / "my" / "dev.csv", "s1,s2,gold\nЖ,З,neutral\n")
    task = registry.task("nli:nli").replace(
        inputs={"text": "s1", "text_pair": "s2", "label": "gold"},
        sources={"local": Source.local("auto", {"train": "my/train.csv", "validation": "my/dev.csv"})},
    )
    data = read_source(task, "local", ("train", "validation"), data_dir=str(tmp_path))
    assert list(data["train"]["labels"]) == [0, 2, 1] and list(data["validation"]["labels"]) == [1]
    assert data["train"][1]["text"] == "В" and data["train"][1]["text_pair"] == "Г"


def test_generic_nli_default_file_names_any_format(registry, read_source, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"premise": "А", "hypothesis": "Б", "label": "entailment"},
                                           {"premise": "В", "hypothesis": "Г", "label": "neutral"}])
    write_text(tmp_path / "validation.tsv", "premise\thypothesis\tlabel\nД\tЕ\tcontradiction\n")
    write_text(tmp_path / "test.csv", "premise,hypothesis\nЖ,З\n")
    data = read_source(registry.task("nli:nli"), "local", data_dir=str(tmp_path))
    assert list(data["train"]["labels"]) == [0, 1] and list(data["validation"]["labels"]) == [2] and list(data["test"]["labels"]) == [-1]


def test_generic_nli_missing_field_names_file_and_row(registry, read_source, tmp_path):
    path = write_text(tmp_path / "train.jsonl", '{"premise": "А", "hypothesis": "Б", "label": "neutral"}\n{"premise": "В", "label": "neutral"}\n')
    task = registry.task("nli:nli").replace(sources={"local": Source.local("auto", {"train": "train.jsonl"})})
    with pytest.raises(DataError) as info:
        read_source(task, "local", ("train",), data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 2" in message and "'hypothesis'" in message and "\n" not in message


# ---- samples ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("task_id", "sizes", "classes"), [
    ("nli:xnli-ru", {"train": 60, "validation": 50, "test": 50}, 3),
    ("nli:headline-cause-simple", {"train": 50, "validation": 50, "test": 50}, 3),
    ("nli:headline-cause-full", {"train": 50, "validation": 50, "test": 50}, 7),
    ("nli:nli", {"train": 60, "validation": 50, "test": 50}, 3),
])
def test_sample_source_loads(registry, read_source, task_id, sizes, classes):
    data = read_source(registry.task(task_id), "sample")
    assert {split: ds.num_rows for split, ds in data.items()} == sizes
    assert set(data["train"]["labels"]) == set(range(classes))


def test_swap_augmentation_with_a_holdout_swaps_only_the_pairs_left_in_train(registry, tmp_path):
    """Without a val file, holdout carves validation out of the real pairs first; only the rest are swapped (a
    swapped copy, or the mirror of a validation pair, in validation or train would leak)."""
    from mtcore.data.task_data import load_raw
    from mt_nli import with_swap_augment

    write_jsonl(tmp_path / "ru/simple/train.jsonl", headline_rows([0, 1, 2] * 7))
    task = with_swap_augment(registry.task("nli:headline-cause-simple"))
    raw = load_raw(task, "local", data_dir=tmp_path, splits=("train", "validation"), holdout=0.3,
                   cache_dir=tmp_path / "cache")
    validation, train = list(raw["validation"]["id"]), list(raw["train"]["id"])
    assert raw.held_out == len(validation) == 6 and not any(i.endswith(":swap") for i in validation)
    real = [i for i in train if not i.endswith(":swap")]
    assert len(real) == 15 and sorted(train) == sorted(real + [f"{i}:swap" for i in real])
    assert not {f"{i}:swap" for i in validation} & set(train) and not set(validation) & set(real)
    plain = load_raw(task, "local", data_dir=tmp_path, splits=("train", "validation"), holdout=0.3, cache_dir=tmp_path / "cache")
    assert list(plain["validation"]["id"]) == validation  # the same rows every time
