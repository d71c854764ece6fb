"""The three sources read data in their real layouts, with every quirk of the official files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtcore.errors import DataError

BOM = "\ufeff"


def write_jsonl(path: Path, rows: list[dict], *, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((BOM if bom else "") + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def danetqa_rows(n: int, labelled: bool = True) -> list[dict]:
    rows = [{"question": f"Вопрос {i}?", "passage": f"Текст {i}.", "idx": i} for i in range(n)]
    if labelled:
        for i, row in enumerate(rows):
            row["label"] = i % 3 == 0
    return rows


def terra_rows(n: int, labelled: bool = True) -> list[dict]:
    rows = [{"premise": f"Посылка {i}.", "hypothesis": f"Гипотеза {i}.", "idx": i} for i in range(n)]
    if labelled:
        for i, row in enumerate(rows):
            row["label"] = "entailment" if i % 2 else "not_entailment"
    return rows


# ---- local: the official files ---------------------------------------------------------------
def test_danetqa_per_task_layout_with_bom(registry, read_source, tmp_path):
    write_jsonl(tmp_path / "DaNetQA" / "train.jsonl", danetqa_rows(7), bom=True)
    write_jsonl(tmp_path / "DaNetQA" / "val.jsonl", danetqa_rows(4))
    write_jsonl(tmp_path / "DaNetQA" / "test.jsonl", danetqa_rows(3, labelled=False))
    data = read_source(registry.task("rsg:danetqa"), "local", data_dir=str(tmp_path))
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 7, "validation": 4, "test": 3}
    assert list(data["train"]["labels"]) == [1 if i % 3 == 0 else 0 for i in range(7)]  # JSON bools -> class ids
    assert list(data["test"]["labels"]) == [-1, -1, -1]  # hidden test labels: unlabelled, kept for prediction
    assert data["train"][0]["text"] == "Вопрос 0?" and data["train"][0]["text_pair"] == "Текст 0."
    assert list(data["validation"]["idx"]) == [0, 1, 2, 3]


def test_terra_combined_layout_ignores_macosx(registry, read_source, tmp_path):
    base = tmp_path / "RussianSuperGLUE"
    write_jsonl(base / "combined" / "TERRa" / "train.jsonl", terra_rows(6))
    write_jsonl(base / "combined" / "TERRa" / "val.jsonl", terra_rows(2), bom=True)
    write_jsonl(base / "combined" / "TERRa" / "test.jsonl", terra_rows(5, labelled=False))
    litter = base / "__MACOSX" / "combined" / "TERRa"
    litter.mkdir(parents=True)
    for name in ("._train.jsonl", "train.jsonl"):
        (litter / name).write_bytes(b"\x00\x05\x16\x07 Mac OS X resource fork")
    data = read_source(registry.task("rsg:terra"), "local", data_dir=str(base))
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 6, "validation": 2, "test": 5}
    assert list(data["train"]["labels"]) == [1, 0, 1, 0, 1, 0]


def test_data_dir_may_be_the_task_folder_or_its_grandparent(registry, read_source, tmp_path):
    folder = tmp_path / "downloads" / "combined" / "TERRa"
    write_jsonl(folder / "train.jsonl", terra_rows(3))
    task = registry.task("rsg:terra")
    assert read_source(task, "local", ("train",), data_dir=str(folder))["train"].num_rows == 3
    assert read_source(task, "local", ("train",), data_dir=str(tmp_path / "downloads"))["train"].num_rows == 3


def test_parus_local_builds_choices(registry, read_source, tmp_path):
    rows = [{"premise": "Пошёл дождь.", "choice1": "Улицы намокли.", "choice2": "Солнце взошло.", "question": "effect", "label": 0, "idx": 0},
            {"premise": "Я промок.", "choice1": "Светило солнце.", "choice2": "Я забыл зонт.", "question": "cause", "label": 1, "idx": 1}]
    write_jsonl(tmp_path / "PARus" / "train.jsonl", rows)
    write_jsonl(tmp_path / "PARus" / "test.jsonl", [{k: v for k, v in r.items() if k != "label"} for r in rows])
    data = read_source(registry.task("rsg:parus"), "local", ("train", "test"), data_dir=str(tmp_path))
    assert data["train"][1]["choices"] == ["Светило солнце.", "Я забыл зонт."]
    assert data["train"][1]["text"] == "Я промок, потому что" and data["train"][0]["text"] == "Пошёл дождь, поэтому"
    assert list(data["train"]["labels"]) == [0, 1] and list(data["test"]["labels"]) == [-1, -1]


def test_rcb_accepts_rows_without_negation(registry, read_source, tmp_path):
    rows = [
        {"premise": "Он знал, что идёт дождь.", "hypothesis": "Идёт дождь.", "verb": "знать", "negation": "no_negation", "label": "entailment", "idx": 0},
        {"premise": "Он думал, что идёт снег.", "hypothesis": "Идёт снег.", "verb": "думать", "label": "neutral", "idx": 1},
        {"premise": "Он не верил, что всё так.", "hypothesis": "Всё так.", "verb": "верить", "negation": "negation", "label": "contradiction", "idx": 2},
    ]
    write_jsonl(tmp_path / "RCB" / "train.jsonl", rows)
    raw = read_source(registry.task("rsg:rcb"), "local", ("train",), raw=True, data_dir=str(tmp_path))
    assert list(raw["train"]["negation"]) == ["no_negation", None, "negation"]
    data = read_source(registry.task("rsg:rcb"), "local", ("train",), data_dir=str(tmp_path))
    assert list(data["train"]["labels"]) == [0, 2, 1]


def test_lidirus_single_labelled_file_any_case(registry, read_source, tmp_path):
    rows = [{"sentence1": f"А {i}.", "sentence2": f"Б {i}.", "knowledge": "", "lexical-semantics": "", "logic": "Negation",
             "predicate-argument-structure": "", "idx": i, "label": "not_entailment" if i else "entailment"} for i in range(4)]
    write_jsonl(tmp_path / "combined" / "LiDiRus" / "LiDiRuS.jsonl", rows, bom=True)
    data = read_source(registry.task("rsg:lidirus"), "local", ("train", "validation", "test"), data_dir=str(tmp_path))
    assert list(data) == ["test"]  # the diagnostic has a test split only
    assert list(data["test"]["labels"]) == [0, 1, 1, 1]  # ... and it is labelled


def test_missing_file_names_what_was_looked_for(registry, read_source, tmp_path):
    write_jsonl(tmp_path / "DaNetQA" / "train.jsonl", danetqa_rows(2))
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:danetqa"), "local", ("train", "validation"), data_dir=str(tmp_path))
    message = str(info.value)
    assert "'validation'" in message and "DaNetQA/val.jsonl" in message and "combined/DaNetQA/val.jsonl" in message
    assert "\n" not in message


def test_an_official_zip_not_yet_unpacked_is_named(registry, read_source, tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "DaNetQA.zip", "w") as packed:
        packed.writestr("DaNetQA/train.jsonl", "")
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:danetqa"), "local", ("train",), data_dir=str(tmp_path))
    assert str(info.value).endswith(f"; {tmp_path / 'DaNetQA.zip'} is here, still packed: unpack it there "
                                    f"(unzip {tmp_path / 'DaNetQA.zip'} -d {tmp_path})"), info.value
    (tmp_path / "DaNetQA.zip").rename(tmp_path / "TERRa.zip")  # another task's zip is no fix for this one
    with pytest.raises(DataError, match="download the task from russiansuperglue.com"):
        read_source(registry.task("rsg:danetqa"), "local", ("train",), data_dir=str(tmp_path))


def test_data_dir_pointing_at_another_tasks_folder_is_named(registry, read_source, tmp_path):
    """RSG/DaNetQA given for TERRa: its bare val.jsonl was read as TERRa's file (then failed on a field or label)."""
    write_jsonl(tmp_path / "DaNetQA" / "train.jsonl", danetqa_rows(2))
    write_jsonl(tmp_path / "DaNetQA" / "val.jsonl", danetqa_rows(2))
    write_jsonl(tmp_path / "TERRa" / "val.jsonl", terra_rows(3))
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:terra"), "local", ("validation",), data_dir=str(tmp_path / "DaNetQA"))
    message = str(info.value)
    assert "is the DaNetQA task's folder" in message and f"{str(tmp_path)!r}" in message and "TERRa/" in message
    assert "\n" not in message
    data = read_source(registry.task("rsg:terra"), "local", ("validation",), data_dir=str(tmp_path / "TERRa"))
    assert data["validation"].num_rows == 3  # the task's own folder still works


def test_local_source_without_data_dir_says_so(registry, read_source):
    with pytest.raises(DataError, match="needs data_dir"):
        read_source(registry.task("rsg:terra"), "local", ("train",))


# ---- bad data: one line naming the file and the row ------------------------------------------
def test_unknown_label_names_file_and_row(registry, read_source, tmp_path):
    rows = terra_rows(3)
    rows[1]["label"] = "maybe"
    path = write_jsonl(tmp_path / "TERRa" / "train.jsonl", rows)
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:terra"), "local", ("train",), data_dir=str(tmp_path))
    message = str(info.value)
    assert "rsg:terra" in message and str(path) in message and "row 2" in message and "'maybe'" in message
    assert "entailment" in message and "\n" not in message


def test_string_label_in_a_bool_column_names_file_and_row(registry, read_source, tmp_path):
    rows = danetqa_rows(3)
    rows[2]["label"] = "yes"
    path = write_jsonl(tmp_path / "DaNetQA" / "train.jsonl", rows)
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:danetqa"), "local", ("train",), data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 3" in message and "'yes'" in message and "\n" not in message


def test_missing_column_names_file_row_and_field(registry, read_source, tmp_path):
    rows = danetqa_rows(3)
    del rows[1]["passage"]
    path = write_jsonl(tmp_path / "DaNetQA" / "train.jsonl", rows, bom=True)
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:danetqa"), "local", ("train",), data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 2" in message and "'passage'" in message and "\n" not in message


def test_parus_bad_question_names_file_and_row(registry, read_source, tmp_path):
    row = {"premise": "П.", "choice1": "a", "choice2": "b", "question": "reason", "label": 0, "idx": 0}
    path = write_jsonl(tmp_path / "PARus" / "train.jsonl", [row])
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:parus"), "local", ("train",), data_dir=str(tmp_path))
    assert str(path) in str(info.value) and "row 1" in str(info.value) and "'reason'" in str(info.value)


# ---- hub: the Parquet export's layout, from local files ---------------------------------------
def write_hub_split(root: Path, config: str, split: str, rows: list[dict], names: list[str]) -> None:
    from datasets import ClassLabel, Dataset, Features, Value

    columns = {key: Value("int32") if key == "idx" else Value("string") for key in rows[0] if key != "label"}
    features = Features({**columns, "label": ClassLabel(names=names)})
    target = root / config / split / "0000.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features).to_parquet(str(target))


def test_hub_route_reads_the_parquet_export_layout(registry, read_source, tmp_path):
    hub = tmp_path / "russian_super_glue"
    labelled = [{"question": f"В {i}?", "passage": f"П {i}.", "idx": i, "label": i % 2} for i in range(5)]
    write_hub_split(hub, "danetqa", "train", labelled, ["False", "True"])
    write_hub_split(hub, "danetqa", "validation", labelled[:3], ["False", "True"])
    write_hub_split(hub, "danetqa", "test", [{**r, "label": -1} for r in labelled[:2]], ["False", "True"])
    task = registry.task("rsg:danetqa")
    data = read_source(task, "hub", path=str(hub))  # same options as the real source, path replaced
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 5, "validation": 3, "test": 2}
    assert list(data["train"]["labels"]) == [0, 1, 0, 1, 0] and list(data["test"]["labels"]) == [-1, -1]


def test_hub_route_lidirus_has_only_test(registry, read_source, tmp_path):
    hub = tmp_path / "russian_super_glue"
    rows = [{"sentence1": "А.", "sentence2": "Б.", "knowledge": "", "lexical-semantics": "", "logic": "", "predicate-argument-structure": "",
             "idx": i, "label": i % 2} for i in range(3)]
    write_hub_split(hub, "lidirus", "test", rows, ["entailment", "not_entailment"])
    data = read_source(registry.task("rsg:lidirus"), "hub", path=str(hub))
    assert list(data) == ["test"] and list(data["test"]["labels"]) == [0, 1, 0]


# ---- sample ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["danetqa", "terra", "parus", "rcb"])
def test_sample_source_loads_every_split(registry, read_source, name):
    task = registry.task(f"rsg:{name}")
    data = read_source(task, "sample")
    assert {split: ds.num_rows for split, ds in data.items()} == {"train": 80, "validation": 50, "test": 50}
    labels = list(data["train"]["labels"])
    assert set(labels) == set(range(max(len(task.labels), 2)))  # every class present
    assert set(data["test"]["labels"]) == {-1}


def test_lidirus_sample(registry, read_source):
    data = read_source(registry.task("rsg:lidirus"), "sample", ("test",))
    assert data["test"].num_rows == 50 and set(data["test"]["labels"]) == {0, 1}
