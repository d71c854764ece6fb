"""Sources: official layouts (RSG, XNLI, Mokoron), the hub's Parquet layout, shipped samples, and their errors."""

from __future__ import annotations

import re

import pytest

from mtcore.data import readers
from mtcore.data.prepare import prepare_split
from mtcore.data.sources import dataset_from_rows, files_fingerprint, rows_from_files
from mtcore.data.task_data import load_raw
from mtcore.errors import ConfigError, DataError
from mtcore.task import Source, Task

RSG_FILES = {"train": "{t}/train.jsonl", "validation": "{t}/val.jsonl", "test": "{t}/test.jsonl"}


def rsg_source(task_dir: str) -> Source:
    return Source.local("jsonl", {split: spec.format(t=task_dir) for split, spec in RSG_FILES.items()})


def parus_choices(example: dict) -> dict:
    """PARus as multiple choice: premise + a cause/effect connective, the two choices."""
    connective = {"cause": "потому что", "effect": "поэтому"}[example["question"]]
    return {**example, "text": f"{example['premise']} {connective}", "choices": [example["choice1"], example["choice2"]]}


DANETQA = Task(name="danetqa", kind="pair_classification", labels=("false", "true"), label_values=(False, True),
               inputs={"text": "question", "text_pair": "passage"}, sources={"local": rsg_source("DaNetQA")}, plugin="rsg")
TERRA = Task(name="terra", kind="pair_classification", labels=("entailment", "not_entailment"),
             inputs={"text": "premise", "text_pair": "hypothesis"}, sources={"local": rsg_source("TERRa")}, plugin="rsg")
PARUS = Task(name="parus", kind="multiple_choice", preprocess=(parus_choices,), sources={"local": rsg_source("PARus")}, plugin="rsg")


@pytest.fixture
def rsg_dir(tmp_path, write):
    """The all-tasks zip unpacked: ``combined/<Task>/`` plus a ``__MACOSX/`` folder."""
    root = tmp_path / "RussianSuperGLUE"
    combined = root / "combined"
    write.jsonl(combined / "DaNetQA" / "train.jsonl", [
        {"question": "Есть ли вода?", "passage": "Вода есть.", "idx": 0, "label": True},
        {"question": "Кот спит?", "passage": "Кот бегает.", "idx": 1, "label": False},
        {"question": "Снег белый?", "passage": "Снег бел.", "idx": 2, "label": True},
    ], bom=True)
    write.jsonl(combined / "DaNetQA" / "val.jsonl", [{"question": "Да?", "passage": "Да.", "idx": 0, "label": True}], bom=True)
    write.jsonl(combined / "DaNetQA" / "test.jsonl", [{"question": "Нет?", "passage": "Нет.", "idx": 0},
                                                      {"question": "Ну?", "passage": "Ну.", "idx": 1}], bom=True)
    write.jsonl(combined / "TERRa" / "train.jsonl", [
        {"premise": "Кот спит.", "hypothesis": "Кот отдыхает.", "idx": 0, "label": "entailment"},
        {"premise": "Кот спит.", "hypothesis": "Кот бежит.", "idx": 1, "label": "not_entailment"},
    ])
    write.jsonl(combined / "TERRa" / "val.jsonl", [{"premise": "A.", "hypothesis": "B.", "idx": 0, "label": "not_entailment"}])
    write.jsonl(combined / "PARus" / "train.jsonl", [
        {"premise": "Мальчик упал.", "choice1": "Он споткнулся.", "choice2": "Он спал.", "question": "cause", "idx": 0, "label": 0},
        {"premise": "Пошёл дождь.", "choice1": "Все открыли зонты.", "choice2": "Все загорали.", "question": "effect", "idx": 1, "label": 0},
        {"premise": "Стало темно.", "choice1": "Взошло солнце.", "choice2": "Село солнце.", "question": "cause", "idx": 2, "label": 1},
    ])
    write.jsonl(combined / "PARus" / "val.jsonl", [
        {"premise": "Лёд растаял.", "choice1": "Было тепло.", "choice2": "Было холодно.", "question": "cause", "idx": 0, "label": 0}])
    for task_dir in ("DaNetQA", "TERRa", "PARus"):
        write.text(root / "__MACOSX" / "combined" / task_dir / "._train.jsonl", "\x00\x05\x16\x07Mac OS X")
    return root


def prepared(task, split, raw):
    return prepare_split(raw[split], task, split, origin=f"local {split}")


def test_rsg_danetqa_bool_labels_bom_and_hidden_test_labels(rsg_dir, cache_dir):
    raw = load_raw(DANETQA, "local", data_dir=rsg_dir, splits=("train", "validation", "test"), cache_dir=cache_dir)
    assert {split: ds.num_rows for split, ds in raw.items()} == {"train": 3, "validation": 1, "test": 2}
    train = prepared(DANETQA, "train", raw)
    assert list(train["text"]) == ["Есть ли вода?", "Кот спит?", "Снег белый?"]
    assert list(train["text_pair"]) == ["Вода есть.", "Кот бегает.", "Снег бел."]
    assert list(train["labels"]) == [1, 0, 1]
    assert list(train["idx"]) == [0, 1, 2]
    test = prepared(DANETQA, "test", raw)
    assert list(test["labels"]) == [-1, -1] and list(test["text"]) == ["Нет?", "Ну?"]


def test_rsg_terra_string_labels_and_parus_int_labels_as_multiple_choice(rsg_dir, cache_dir):
    raw = load_raw(TERRA, "local", data_dir=rsg_dir / "combined", cache_dir=cache_dir)
    assert list(prepared(TERRA, "train", raw)["labels"]) == [0, 1]
    assert list(prepared(TERRA, "validation", raw)["labels"]) == [1]
    raw = load_raw(PARUS, "local", data_dir=rsg_dir, cache_dir=cache_dir)
    train = prepared(PARUS, "train", raw)
    assert list(train["text"]) == ["Мальчик упал. потому что", "Пошёл дождь. поэтому", "Стало темно. потому что"]
    assert list(train["choices"]) == [["Он споткнулся.", "Он спал."], ["Все открыли зонты.", "Все загорали."],
                                      ["Взошло солнце.", "Село солнце."]]
    assert list(train["labels"]) == [0, 0, 1]


def test_second_load_of_local_files_is_a_cache_hit(rsg_dir, cache_dir, monkeypatch):
    first = load_raw(TERRA, "local", data_dir=rsg_dir, cache_dir=cache_dir)["train"]

    def no_reading(*args, **kwargs):
        raise AssertionError("the files were read again")

    # the key hashes the code a loader's module imports: a reader from another module would be another key
    no_reading.__module__ = "mtcore.data.readers"
    monkeypatch.setattr("mtcore.data.sources.iter_rows", no_reading)
    second = load_raw(TERRA, "local", data_dir=rsg_dir, cache_dir=cache_dir)["train"]
    assert second.cache_files == first.cache_files and second.cache_files
    assert second[0]["premise"] == "Кот спит."


XNLI_DEV = Task(name="xnli", kind="pair_classification", labels=("entailment", "neutral", "contradiction"),
                inputs={"text": "sentence1", "text_pair": "sentence2", "label": "gold_label"}, id_field="pairID",
                label_aliases={"contradictory": "contradiction"}, plugin="nli",
                sources={"local": Source.local("tsv", {"validation": "XNLI-1.0/xnli.dev.tsv", "train": "XNLI-MT-1.0/multinli/multinli.train.ru.tsv"},
                                               quoting="none", row_filter="tests_data_filters:keep_russian")})


def test_xnli_dev_mixed_languages_and_xnli_mt_contradictory(tmp_path, write, cache_dir, monkeypatch):
    write.text(tmp_path / "tests_data_filters.py", "def keep_russian(row):\n    return row.get('language', 'ru') == 'ru'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    write.text(tmp_path / "XNLI-1.0" / "xnli.dev.tsv",
               "language\tgold_label\tsentence1\tsentence2\tpairID\n"
               'en\tneutral\tHe said "hi\tHe spoke.\t1\n'
               'ru\tcontradiction\tОн сказал "привет\tОн молчал.\t2\n'
               'ru\tentailment\tКот спит.\tКот "отдыхает".\t3\n')
    write.text(tmp_path / "XNLI-MT-1.0" / "multinli" / "multinli.train.ru.tsv",
               'premise\thypo\tlabel\nОн "пришёл\tОн ушёл.\tcontradictory\nОна поёт.\tОна молчит.\tcontradictory\nДом.\tЗдание.\tentailment\n')
    task = XNLI_DEV.replace(inputs={"text": "sentence1", "text_pair": "sentence2", "label": "gold_label"})
    raw = load_raw(task, "local", data_dir=tmp_path, splits=("validation",), cache_dir=cache_dir)
    dev = prepared(task, "validation", raw)
    assert list(dev["text"]) == ['Он сказал "привет', "Кот спит."]
    assert list(dev["text_pair"]) == ["Он молчал.", 'Кот "отдыхает".']
    assert list(dev["labels"]) == [2, 0] and list(dev["idx"]) == ["2", "3"]
    mt = XNLI_DEV.replace(inputs={"text": "premise", "text_pair": "hypo", "label": "label"}, id_field=None)
    train = prepared(mt, "train", load_raw(mt, "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir))
    assert list(train["text"]) == ['Он "пришёл', "Она поёт.", "Дом."]
    assert list(train["labels"]) == [2, 2, 0]


MOKORON_COLUMNS = ["id", "tdate", "tname", "ttext", "ttype", "trep", "trtw", "tfav", "tstcount", "tfoll", "tfrien", "listcount"]


def load_mokoron(task, splits, /, *, data_dir, cache_dir=None):
    """A plugin-style loader: two header-less files, the label is the file; built on the public helpers."""
    from datasets import DatasetDict

    paths = [f"{data_dir}/positive.csv", f"{data_dir}/negative.csv"]

    def rows():
        for path in paths:
            for number, row in readers.iter_rows(path, "csv", sep=";", header=None, names=MOKORON_COLUMNS):
                yield path, number, {"text": row["ttext"], "label": "positive" if row["ttype"] == "1" else "negative", "id": row["id"]}

    data = dataset_from_rows(rows, fingerprint=files_fingerprint(paths, "mokoron"), what="mokoron", cache_dir=cache_dir)
    return DatasetDict({split: data for split in splits})


def test_mokoron_style_loader_with_multiline_quoted_tweets(tmp_path, write, cache_dir):
    def line(tweet_id, text, ttype):
        fields = [tweet_id, "1386325944", "user", text, ttype, "0", "0", "0", "7569", "62", "61", "0"]
        return ";".join('"' + f.replace('"', '""') + '"' for f in fields) + "\n"

    write.text(tmp_path / "positive.csv", line("1", "Ура; пятница :)", "1") + line("2", "две\nстроки \"в кавычках\"", "1"))
    write.text(tmp_path / "negative.csv", line("3", "опять дождь :(", "-1"))
    task = Task(name="mokoron", kind="text_classification", labels=("negative", "positive"), id_field="id", plugin="sentiment",
                sources={"local": Source("local", load_mokoron)})
    raw = load_raw(task, "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)
    train = prepared(task, "train", raw)
    assert list(train["text"]) == ["Ура; пятница :)", "две\nстроки \"в кавычках\"", "опять дождь :("]
    assert list(train["labels"]) == [1, 1, 0] and list(train["idx"]) == ["1", "2", "3"]
    assert list(raw["train"]["_mt_row"]) == [1, 2, 1]  # the second tweet starts on line 2 of positive.csv


def test_hub_parquet_export_layout_read_from_a_local_folder(tmp_path, write, cache_dir):
    hub = tmp_path / "russian_super_glue"
    for split, labels in (("train", [1, 0, 1]), ("validation", [0, 1, 0]), ("test", [-1, -1, -1])):
        write.parquet(hub / "danetqa" / split / "0000.parquet",
                      {"question": ["q1", "q2", "q3"], "passage": ["p1", "p2", "p3"], "idx": [0, 1, 2], "label": labels})
    task = DANETQA.replace(sources={"hub": Source.hub(str(hub), revision="refs/convert/parquet", data_dir="danetqa")})
    raw = load_raw(task, "hub", splits=("train", "validation", "test"), cache_dir=cache_dir)
    assert list(prepared(task, "train", raw)["labels"]) == [1, 0, 1]
    assert list(prepared(task, "test", raw)["labels"]) == [-1, -1, -1]
    assert list(prepared(task, "validation", raw)["text_pair"]) == ["p1", "p2", "p3"]


def test_hub_class_label_ids_go_through_their_names(tmp_path, cache_dir):
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"premise": Value("string"), "hypothesis": Value("string"),
                         "label": ClassLabel(names=["not_entailment", "entailment"])})
    for split in ("train", "validation"):
        path = tmp_path / "hub" / "terra" / split / "0000.parquet"
        path.parent.mkdir(parents=True)
        Dataset.from_dict({"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [0, 1]}, features=features).to_parquet(str(path))
    task = TERRA.replace(sources={"hub": Source.hub(str(tmp_path / "hub"), data_dir="terra", splits={"validation": "validation"})})
    raw = load_raw(task, "hub", cache_dir=cache_dir)
    assert list(prepared(task, "train", raw)["labels"]) == [1, 0]  # hub id 0 is "not_entailment" = task class 1


def test_hub_offline_says_so_in_one_line(cache_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    task = DANETQA.replace(sources={"hub": Source.hub("RussianNLP/russian_super_glue", revision="refs/convert/parquet", data_dir="danetqa")})
    with pytest.raises(DataError) as err:
        load_raw(task, "hub", cache_dir=cache_dir)
    message = str(err.value)
    assert "\n" not in message and "'RussianNLP/russian_super_glue'" in message and "offline" in message
    assert "source 'local' with data_dir=" in message and "source 'sample'" in message


def test_sample_shipped_inside_a_package(tmp_path, write, cache_dir, monkeypatch):
    write.text(tmp_path / "mt_sample_pkg" / "__init__.py", "")
    write.jsonl(tmp_path / "mt_sample_pkg" / "samples" / "terra" / "train.jsonl",
                [{"premise": "Кот спит.", "hypothesis": "Кот отдыхает.", "label": "entailment", "idx": 0}], bom=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    task = TERRA.replace(sources={"sample": Source.sample("mt_sample_pkg", "jsonl", {"train": "samples/terra/train.jsonl"})})
    raw = load_raw(task, "sample", splits=("train",), cache_dir=cache_dir)
    assert list(prepared(task, "train", raw)["text_pair"]) == ["Кот отдыхает."]
    with pytest.raises(DataError, match=r"^task 'rsg:terra': source 'sample' \(sample files shipped in mt_sample_pkg\) has no 'validation' split \(it has train\)"):
        load_raw(task, "sample", cache_dir=cache_dir)


def test_source_choice_errors(rsg_dir, cache_dir):
    with pytest.raises(ConfigError, match=r"unknown source 'locl' for task 'rsg:terra' \(did you mean 'local'\?\); it has: local"):
        load_raw(TERRA, "locl", data_dir=rsg_dir)
    with pytest.raises(ConfigError, match=r"task 'rsg:terra' has no 'hub' source; it has: local"):
        load_raw(TERRA, "hub")
    with pytest.raises(DataError, match=r"task 'rsg:terra': the local source \(local jsonl files\) needs data_dir=<folder with the downloaded files> \(train: TERRa/train.jsonl, validation: TERRa/val.jsonl, test: TERRa/test.jsonl\)$"):
        load_raw(TERRA, "local")
    with pytest.raises(DataError, match=r"^task 'rsg:terra', .*: no file matches 'TERRa/test.jsonl'"):
        load_raw(TERRA, "local", data_dir=rsg_dir, splits=("test",), cache_dir=cache_dir)
    with pytest.raises(ConfigError, match=r"unknown split 'dev'"):
        load_raw(TERRA, "local", data_dir=rsg_dir, splits=("dev",))


def test_rows_from_files_keeps_file_and_row(tmp_path, write, cache_dir):
    a = write.jsonl(tmp_path / "a.jsonl", [{"x": 1}, {"x": 2}])
    b = write.jsonl(tmp_path / "b.jsonl", [{"x": 3.5, "y": "new field"}])
    data = dataset_from_rows(rows_from_files([a, b]), fingerprint=files_fingerprint([a, b]), what="ab", cache_dir=cache_dir)
    assert list(data["x"]) == [1.0, 2.0, 3.5] and list(data["y"]) == [None, None, "new field"]
    assert list(data["_mt_file"]) == [str(a), str(a), str(b)] and list(data["_mt_row"]) == [1, 2, 1]


def test_id_made_by_a_preprocessing_step(tmp_path, write, cache_dir):
    write.jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": "yes", "n": 1}, {"text": "b", "label": "no", "n": 2}])
    task = Task(name="ids", kind="text_classification", labels=("no", "yes"), preprocess=(lambda ex: {**ex, "idx": f"q{ex['n']}"},),
                sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
    train = prepared(task, "train", load_raw(task, "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir))
    assert list(train["idx"]) == ["q1", "q2"] and list(train["labels"]) == [1, 0]


def test_a_file_rewritten_in_place_with_its_old_size_and_time_gets_a_new_cache_key(tmp_path):
    """cp -p / rsync -a / unzip put the old modification time back; the cache must still see the edit."""
    import os
    import time

    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": "pos"}\n', encoding="utf-8")
    before = path.stat()
    key = files_fingerprint([path])
    time.sleep(0.01)
    path.write_text('{"text": "a", "label": "neg"}\n', encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    assert files_fingerprint([path]) != key


def test_a_row_filter_module_edited_between_runs_is_not_served_from_the_cache(tmp_path, write, cache_dir, monkeypatch):
    """A 'module:function' row_filter is keyed by its code and its module's source (helpers, constants)."""
    import importlib
    import sys

    module = tmp_path / "mt_filter_edit_test.py"
    module.write_text("KEEP = 'ru'\n\ndef _lang(row):\n    return row['lang']\n\ndef keep(row):\n    return _lang(row) == KEEP\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("mt_filter_edit_test")
    data = tmp_path / "data"
    write.jsonl(data / "train.jsonl", [{"text": "кот", "lang": "ru", "label": "a"}, {"text": "cat", "lang": "en", "label": "b"}])
    task = Task(name="f", kind="text_classification", labels=("a", "b"),
                sources={"local": Source.local("jsonl", {"train": "train.jsonl"}, row_filter="mt_filter_edit_test:keep")})
    assert [r["text"] for r in load_raw(task, "local", data_dir=data, splits=("train",), cache_dir=cache_dir)["train"]] == ["кот"]
    module.write_text("KEEP = 'en'\n\ndef _lang(row):\n    return row['lang']\n\ndef keep(row):\n    return _lang(row) == KEEP\n")
    sys.modules.pop("mt_filter_edit_test")  # a new run imports the edited module
    importlib.import_module("mt_filter_edit_test")
    assert [r["text"] for r in load_raw(task, "local", data_dir=data, splits=("train",), cache_dir=cache_dir)["train"]] == ["cat"]


def test_a_task_reading_other_fields_of_the_same_files_is_not_served_the_cached_rows(tmp_path, write, cache_dir, bert):
    """The raw rows depend on which fields the task reads: one it does not read may mix types (kept
    as text), one it reads may not. Changing only the task's inputs (or adding preprocessing, which
    may read any field) must not reuse rows cached for the old inputs, whose mixed field became text."""
    from mtcore.data import load_task_data
    from mtcore.yaml_tasks import tasks_from_yaml

    write.jsonl(tmp_path / "train.jsonl", [{"review": "good", "title": "Great", "label": "pos"},
                                           {"review": "bad", "title": 1984, "label": "neg"}])

    def define(inputs: dict) -> Task:
        definition = {"name": "reviews", "kind": "text_classification", "labels": ["neg", "pos"], "inputs": inputs,
                      "files": {"train": "train.jsonl"}}
        return tasks_from_yaml({"tasks": [definition]}, base_dir=tmp_path)[0]

    def load(task):
        return load_task_data(task, bert[0], source="sample", splits=("train",), cache_dir=cache_dir)

    reviews = define({"text": "review"})
    assert load(reviews).num_rows("train") == 2  # 'title' is not read: 1984 is kept as text
    mixed = "train.jsonl row 2: field 'title' holds 1984 (integer) but row 1 holds 'Great' (text); a field must hold one type in every row"
    with pytest.raises(DataError, match=re.escape(mixed)):  # the same files, the text now read from 'title'
        load(define({"text": "title"}))
    with pytest.raises(DataError, match=re.escape(mixed)):  # a preprocessing step may read any field
        load(reviews.replace(preprocess=(lambda row: {**row, "text": f"{row['title']}: {row['review']}"},)))
    assert load(reviews).num_rows("train") == 2


def test_a_hub_path_changed_in_the_config_is_the_one_errors_name():
    from mtcore.source import merge_sources

    hub = Source.hub("RussianNLP/russian_super_glue", revision="refs/convert/parquet", data_dir="muserc")
    merged = merge_sources({"hub": hub}, {"hub": {"path": "/data/rsg-export"}})["hub"]
    assert merged.description == "hub /data/rsg-export (muserc)" and merged.options["revision"] == "refs/convert/parquet"
    same = merge_sources({"hub": hub}, {"hub": {"revision": "main"}})["hub"]
    assert same.description == hub.description  # the path is unchanged: so is what errors call it


def test_a_hub_path_that_is_a_missing_folder_says_so_not_offline(tmp_path):
    from mtcore.data.sources import load_hub

    task = Task(name="x", kind="text_classification", labels=("a", "b"))
    with pytest.raises(DataError, match="the hub source's path .*hub2' is a folder that does not exist"):
        load_hub(task, ["train"], path=str(tmp_path / "hub2"), data_dir="muserc", cache_dir=tmp_path / "c")
