"""Quirks of the official files: test rows whose target cannot be marked, RuCoS answers inside longer
words, and RuCoS's own answer normalisation."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from mtcore.errors import DataError

from mt_russian_superglue.metrics import rucos_em, rucos_f1
from mt_russian_superglue.preprocess import preprocess_rucos


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


RUSSE = {"word": "лист", "sentence1": "Осенью с дерева упал лист.", "start1": 21, "end1": 25,
         "sentence2": "Секретарь положил лист в папку.", "start2": 18, "end2": 22}
RWSD_TEXT = "Кубок не помещается в чемодан, потому что он слишком большой."
RWSD = {"text": RWSD_TEXT, "target": {"span1_index": 0, "span1_text": "Кубок", "span2_index": 7, "span2_text": "он"}}


def official_russe(root: Path, test: list[dict]) -> Path:
    write_jsonl(root / "RUSSE" / "train.jsonl", [{**RUSSE, "idx": 0, "label": True}])
    write_jsonl(root / "RUSSE" / "val.jsonl", [{**RUSSE, "idx": 0, "label": True}])
    return write_jsonl(root / "RUSSE" / "test.jsonl", test)  # official test files: no label field


def official_rwsd(root: Path, test: list[dict], train: list[dict] | None = None) -> Path:
    write_jsonl(root / "RWSD" / "train.jsonl", train or [{**RWSD, "idx": 0, "label": True}])
    write_jsonl(root / "RWSD" / "val.jsonl", [{**RWSD, "idx": 0, "label": False}])
    return write_jsonl(root / "RWSD" / "test.jsonl", test)


def read_with_warnings(read_source, task, split: str, root: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = read_source(task, "local", (split,), data_dir=str(root))[split]
    return data, [str(w.message) for w in caught if "cannot be marked" in str(w.message)]


# ---- RUSSE / RWSD test rows whose target cannot be marked ----------------------------------------
def test_russe_test_rows_with_offsets_marking_no_word_are_read_unmarked_with_one_warning(registry, read_source, tmp_path):
    rows = [{**RUSSE, "idx": 0}, {**RUSSE, "idx": 1, "start1": 500, "end1": 505}, {**RUSSE, "idx": 2, "start2": 3, "end2": 3},
            {**RUSSE, "idx": 3}]
    path = official_russe(tmp_path, rows)
    data, messages = read_with_warnings(read_source, registry.task("rsg:russe"), "test", tmp_path)
    assert list(data["idx"]) == [0, 1, 2, 3]  # every row kept: the submission has every idx
    assert data[0]["text"] == "лист: Осенью с дерева упал *лист*." and data[0]["text_pair"] == "Секретарь положил *лист* в папку."
    assert data[1]["text"] == "лист: Осенью с дерева упал лист." and data[1]["text_pair"] == "Секретарь положил *лист* в папку."
    assert data[2]["text"] == "лист: Осенью с дерева упал *лист*." and data[2]["text_pair"] == "Секретарь положил лист в папку."
    assert len(messages) == 1, messages
    assert str(path) in messages[0] and "2 unlabelled row(s)" in messages[0] and "idx 1" in messages[0] and "start1 500" in messages[0]


def test_russe_labelled_rows_with_offsets_marking_no_word_stay_an_error(registry, read_source, tmp_path):
    official_russe(tmp_path, [{**RUSSE, "idx": 0}])
    write_jsonl(tmp_path / "RUSSE" / "val.jsonl", [{**RUSSE, "idx": 0, "label": False, "start2": 90, "end2": 95}])
    with pytest.raises(DataError, match="val.jsonl row 1: .*start2 90 / end2 95 mark no word"):
        read_source(registry.task("rsg:russe"), "local", ("validation",), data_dir=str(tmp_path))


def test_rwsd_test_rows_with_a_span_not_in_the_text_mark_what_is_found(registry, read_source, tmp_path):
    missing_candidate = {**RWSD, "idx": 1, "target": {**RWSD["target"], "span1_text": "Сундук"}}
    missing_both = {**RWSD, "idx": 2, "target": {**RWSD["target"], "span1_text": "Сундук", "span2_text": "она"}}
    same_words = {**RWSD, "idx": 3, "target": {**RWSD["target"], "span1_text": "он", "span1_index": 7}}
    path = official_rwsd(tmp_path, [{**RWSD, "idx": 0}, missing_candidate, missing_both, same_words])
    data, messages = read_with_warnings(read_source, registry.task("rsg:rwsd"), "test", tmp_path)
    assert list(data["idx"]) == [0, 1, 2, 3]
    assert data[0]["text"] == "[Кубок] не помещается в чемодан, потому что *он* слишком большой."
    assert data[1]["text"] == "Кубок не помещается в чемодан, потому что *он* слишком большой."
    assert data[1]["text_pair"] == "«он» — это «Сундук»?"
    assert data[2]["text"] == RWSD_TEXT
    assert data[3]["text"] == "Кубок не помещается в чемодан, потому что [он] слишком большой."
    assert len(messages) == 1, messages
    assert str(path) in messages[0] and "3 unlabelled row(s)" in messages[0] and "idx 1" in messages[0] and "'Сундук'" in messages[0]


def test_rwsd_labelled_rows_with_a_span_not_in_the_text_stay_an_error(registry, read_source, tmp_path):
    official_rwsd(tmp_path, [{**RWSD, "idx": 0}], train=[{**RWSD, "idx": 0, "label": True, "target": {**RWSD["target"], "span1_text": "Сундук"}}])
    with pytest.raises(DataError, match="train.jsonl row 1: .*span1_text 'Сундук' is not in the text"):
        read_source(registry.task("rsg:rwsd"), "local", ("train",), data_dir=str(tmp_path))


def test_hub_test_rows_labelled_minus_one_fall_back_too():
    from mt_russian_superglue.preprocess import preprocess_russe, preprocess_rwsd

    assert preprocess_russe({**RUSSE, "idx": 5, "label": -1, "start1": 500, "end1": 505})["text"] == "лист: Осенью с дерева упал лист."
    flat = {"text": RWSD_TEXT, **RWSD["target"], "span1_text": "Сундук", "idx": 5, "label": -1}
    assert preprocess_rwsd(flat)["text"] == "Кубок не помещается в чемодан, потому что *он* слишком большой."
    with pytest.raises(ValueError, match="mark no word"):
        preprocess_russe({**RUSSE, "idx": 5, "label": 0, "start1": 500, "end1": 505})  # the export's False


# ---- RuCoS answers ---------------------------------------------------------------------------------
def test_rucos_answer_is_found_as_a_whole_word():
    row = {"query": "@placeholder ответил на санкции.", "passage": "Санкции против Ирана продлены. Иран ответил.", "answers": ["Иран"],
           "entities": ["Ирана", "Иран"], "idx": 1}
    out = preprocess_rucos(row)
    assert out["answers"]["answer_start"] == [out["context"].index("Иран ответил")]
    inside_only = preprocess_rucos({**row, "passage": "Санкции против Ирана продлены."})  # no standalone occurrence: the plain find
    assert inside_only["answers"]["answer_start"] == [inside_only["context"].index("Ирана")]
    assert preprocess_rucos({**row, "answers": ["США"], "passage": "США и «США-2»."})["answers"]["answer_start"] == [0]


def test_rucos_scores_with_the_official_normalisation_keeping_articles(registry):
    from mtcore.train.qa_metrics import squad_em, squad_f1

    assert registry.task("rsg:rucos").all_metrics == ("rucos_f1", "rucos_em")
    assert squad_em(["The Guardian"], [["Guardian"]]) == 1.0 and squad_f1(["The Guardian"], [["Guardian"]]) == 1.0  # SQuAD unchanged
    assert rucos_em(["The Guardian"], [["Guardian"]]) == 0.0
    assert rucos_f1(["The Guardian"], [["Guardian"]]) == pytest.approx(2 / 3)
    # the official script removes string.punctuation (ASCII) only: a Russian quote or dash still counts
    assert rucos_em(["Ромашка."], [["ромашка"]]) == 1.0 and rucos_em(["«Ромашка»"], [["Ромашка"]]) == 0.0
    assert rucos_em(["Нью  Йорк", "Тула"], [["нью йорк", "NY"], ["Омск"]]) == 0.5


def test_russe_hub_test_rows_with_offsets_marking_no_word_warn_as_the_official_files_do(registry, read_source, tmp_path):
    from datasets import ClassLabel, Dataset

    hub = tmp_path / "russian_super_glue"
    rows = {"train": [{**RUSSE, "idx": 0, "label": 1}], "validation": [{**RUSSE, "idx": 0, "label": 0}],
            "test": [{**RUSSE, "idx": 0, "label": -1}, {**RUSSE, "idx": 1, "start1": 500, "end1": 505, "label": -1}]}
    for split, split_rows in rows.items():  # the Parquet export's layout: <config>/<split>/0000.parquet, label a ClassLabel
        data = Dataset.from_list(split_rows).cast_column("label", ClassLabel(names=["False", "True"]))
        (hub / "russe" / split).mkdir(parents=True)
        data.to_parquet(str(hub / "russe" / split / "0000.parquet"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = read_source(registry.task("rsg:russe"), "hub", ("test",), path=str(hub))["test"]
    messages = [str(w.message) for w in caught if "cannot be marked" in str(w.message)]
    assert list(data["idx"]) == [0, 1] and data[1]["text"] == "лист: Осенью с дерева упал лист."
    assert len(messages) == 1 and "1 unlabelled row(s)" in messages[0] and "idx 1" in messages[0], messages
