"""Bad data stops before training with ONE line naming the task, the file, the row, the value and the fix."""

from __future__ import annotations

import math

import pytest

from mtcore.data import load_task_data
from mtcore.errors import DataError
from mtcore.task import Source, Task

FILES = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}
TERRA = Task(name="terra", kind="pair_classification", labels=("entailment", "not_entailment"), plugin="rsg",
             inputs={"text": "premise", "text_pair": "hypothesis"}, sources={"local": Source.local("jsonl", FILES)})
GOOD = {"premise": "Кот спит.", "hypothesis": "Кот отдыхает.", "label": "entailment"}


def load(task, tokenizer, data_dir, cache_dir, splits=("train", "validation")):
    return load_task_data(task, tokenizer, source="local", data_dir=data_dir, splits=splits, cache_dir=cache_dir)


def data_error(task, tokenizer, tmp_path, cache_dir, train_rows, **kwargs) -> str:
    """Write ``train_rows`` (and a good validation file), load, return the one-line error."""
    writer = kwargs.pop("writer")
    writer.jsonl(tmp_path / "train.jsonl", train_rows, bom=kwargs.pop("bom", False))
    writer.jsonl(tmp_path / "val.jsonl", [GOOD])
    with pytest.raises(DataError) as err:
        load(task, tokenizer, tmp_path, cache_dir, splits=("train",))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_unknown_label_names_file_row_value_and_expected(bert, tmp_path, write, cache_dir):
    message = data_error(TERRA, bert[0], tmp_path, cache_dir, [GOOD, {**GOOD, "label": "maybe"}], writer=write)
    assert message == (f"task 'rsg:terra', {tmp_path / 'train.jsonl'} row 2: label 'maybe' is not one of 'entailment', 'not_entailment'; "
                       "fix the data, or the task's labels / label_aliases")
    typo = data_error(TERRA, bert[0], tmp_path, cache_dir, [GOOD, {**GOOD, "label": "entailmnt"}], writer=write)
    assert "label 'entailmnt' is not one of 'entailment', 'not_entailment' (did you mean 'entailment'?)" in typo


def test_a_number_like_label_outside_the_labels_is_named(bert, tmp_path, write, cache_dir):
    stars = TERRA.replace(name="stars", kind="text_classification", labels=("1", "2", "3", "4"), inputs={"text": "premise"})
    message = data_error(stars, bert[0], tmp_path, cache_dir, [{"premise": "a", "label": "2"}, {"premise": "b", "label": "5"}], writer=write)
    assert message.endswith("row 2: label '5' is not one of '1', '2', '3', '4'; fix the data, or the task's labels / label_aliases")


def test_label_of_another_type_than_the_column(bert, tmp_path, write, cache_dir):
    task = TERRA.replace(labels=("false", "true"), label_values=(False, True))
    rows = [{**GOOD, "label": True}, {**GOOD, "label": False}, {**GOOD, "label": "maybe"}]
    message = data_error(task, bert[0], tmp_path, cache_dir, rows, writer=write, bom=True)
    assert message == (f"task 'rsg:terra', {tmp_path / 'train.jsonl'} row 3: label 'maybe' is not one of False, True; "
                       "fix the data, or the task's labels / label_aliases")


def test_missing_column(bert, tmp_path, write, cache_dir):
    rows = [{"premise": "a", "hypo": "b", "label": "entailment"}]
    message = data_error(TERRA, bert[0], tmp_path, cache_dir, rows, writer=write)
    assert message.startswith(f"task 'rsg:terra', {tmp_path / 'train.jsonl'} row 1: no field 'hypothesis' for text_pair "
                              f"(the row has: premise, hypo, label)")


def test_a_csv_read_with_the_wrong_separator_gets_the_sep_option_named(bert, tmp_path, write, cache_dir):
    rows = [{"premise;hypothesis;label": "a;b;entailment"}]
    message = data_error(TERRA, bert[0], tmp_path, cache_dir, rows, writer=write)
    assert message.endswith("no field 'premise' for text: the row has one field 'premise;hypothesis;label'; the file looks "
                            "separated by ';': set the reader option sep=';'")


def test_wrong_type_of_text(bert, tmp_path, write, cache_dir):
    message = data_error(TERRA, bert[0], tmp_path, cache_dir, [GOOD, {**GOOD, "premise": 5}], writer=write)
    assert "train.jsonl row 2: field 'premise' holds 5 (integer) but row 1 holds 'Кот спит.' (text); "
    "a field must hold one type in every row" in message
    message = data_error(TERRA, bert[0], tmp_path, cache_dir, [GOOD, {**GOOD, "premise": None}], writer=write)
    assert message.endswith("train.jsonl row 2: field 'premise' (text) is null; expected text")


def test_unlabelled_training_row(bert, tmp_path, write, cache_dir):
    message = data_error(TERRA, bert[0], tmp_path, cache_dir, [GOOD, {**GOOD, "label": None}], writer=write)
    assert message.endswith("train.jsonl row 2: no label (field 'label' is None); train rows need one")
    # a file with no label column at all: the fields it has, and how to map one
    csv_task = TERRA.replace(name="csvterra", sources={"local": Source.local("csv", {"train": "train.csv"})})
    write.text(tmp_path / "train.csv", "premise,hypothesis,answer\nа,б,entailment\n")
    with pytest.raises(DataError) as err:
        load(csv_task, bert[0], tmp_path, cache_dir, splits=("train",))
    assert str(err.value).endswith("train.csv row 2: no label: the row has no field 'label' (it has: premise, hypothesis, answer); "
                                   "train rows need one (if the labels are in another field, map it: inputs: {label: <field>})")


def test_a_row_lacking_a_field_says_so_instead_of_calling_it_null(bert, tmp_path, write, cache_dir):
    """Arrow stores a key absent from one JSON row as null; the message still says the row lacks it
    (naming what the row has, not the fields only other rows have), and an explicit null keeps its own."""
    first = {**GOOD, "note": "x"}
    message = data_error(TERRA, bert[0], tmp_path, cache_dir, [first, {"premise": "a", "hypothesis": "b"}], writer=write)
    assert message == (f"task 'rsg:terra', {tmp_path / 'train.jsonl'} row 2: no label: this row has no field 'label' (it has: "
                       "premise, hypothesis); train rows need one: add it to this row, or remove the row (only test rows may be unlabelled)")
    message = data_error(TERRA, bert[0], tmp_path, cache_dir, [first, GOOD, {"premise": "a", "label": "entailment"}], writer=write)
    assert message == (f"task 'rsg:terra', {tmp_path / 'train.jsonl'} row 3: no field 'hypothesis' for text_pair in this row (it has: "
                       "premise, label); other rows have it: add it to this row, or remove the row")
    null = data_error(TERRA, bert[0], tmp_path, cache_dir, [first, {**GOOD, "hypothesis": None}], writer=write)
    assert null.endswith("train.jsonl row 2: field 'hypothesis' (text_pair) is null; expected text")
    # a field lacking only in a later row of a .json file, after a blank line: the row is the record's number
    task = TERRA.replace(sources={"local": Source.local("json", {"train": "train.json"})})
    write.text(tmp_path / "train.json", '[{"premise": "a", "hypothesis": "b", "label": "entailment"},\n\n {"premise": "c", "label": "entailment"}]')
    with pytest.raises(DataError, match=r"train\.json row 2: no field 'hypothesis' for text_pair in this row \(it has: premise, label\)"):
        load(task, bert[0], tmp_path, cache_dir, splits=("train",))
    # a test row may lack its label; a preprocessing step may fill in a lacking field
    write.jsonl(tmp_path / "test.jsonl", [GOOD, {"premise": "a", "hypothesis": "b"}])
    assert load(TERRA, bert[0], tmp_path, cache_dir, splits=("test",)).splits["test"]["labels"] == [0, -1]
    filled = TERRA.replace(preprocess=(lambda row: {**row, "hypothesis": row["hypothesis"] or "(none)"},))
    write.jsonl(tmp_path / "train.jsonl", [GOOD, {"premise": "a", "label": "entailment"}])
    assert load(filled, bert[0], tmp_path, cache_dir, splits=("train",)).num_rows("train") == 2


def test_empty_split_and_non_utf8_file(bert, tmp_path, write, cache_dir):
    write.text(tmp_path / "train.jsonl", "\n\n")
    with pytest.raises(DataError, match=r"^task 'rsg:terra', .*train\.jsonl: the train split has no rows$"):
        load(TERRA, bert[0], tmp_path, cache_dir, splits=("train",))
    write.text(tmp_path / "train.jsonl", '{"premise": "кот", "hypothesis": "b", "label": "entailment"}\n', encoding="cp1251")
    with pytest.raises(DataError, match=r"^task 'rsg:terra', .*train\.jsonl row 1: byte 0x\w\w at column \d+ is not valid utf-8-sig text"):
        load(TERRA, bert[0], tmp_path, cache_dir, splits=("train",))


def test_row_filter_matching_nothing_is_an_empty_split(bert, tmp_path, write, cache_dir):
    task = TERRA.replace(sources={"local": Source.local("jsonl", FILES, row_filter={"lang": "ru"})})
    write.jsonl(tmp_path / "train.jsonl", [{**GOOD, "lang": "en"}])
    with pytest.raises(DataError, match=r"the train split has no rows matching row_filter \{'lang': 'ru'\}"):
        load(task, bert[0], tmp_path, cache_dir, splits=("train",))


def test_test_split_without_labels_is_kept_for_prediction(bert, tmp_path, write, cache_dir):
    write.jsonl(tmp_path / "test.jsonl", [{"premise": "a", "hypothesis": "b", "idx": 7}, {"premise": "c", "hypothesis": "d", "idx": 8}])
    data = load(TERRA, bert[0], tmp_path, cache_dir, splits=("test",))
    assert list(data.splits["test"]["labels"]) == [-1, -1] and list(data.splits["test"]["idx"]) == [7, 8]
    assert not data.is_labelled("test")
    batch = data.collator([data.splits["test"][0], data.splits["test"][1]])
    assert "labels" not in batch


def test_requested_split_the_source_lacks(bert, tmp_path, write, cache_dir):
    task = TERRA.replace(sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
    write.jsonl(tmp_path / "train.jsonl", [GOOD])
    with pytest.raises(DataError, match=r"^task 'rsg:terra': source 'local' \(local jsonl files\) has no 'validation' split \(it has train\)"):
        load(task, bert[0], tmp_path, cache_dir)


def test_multiple_choice_label_out_of_range(bert, tmp_path, write, cache_dir):
    task = Task(name="mc", kind="multiple_choice", sources={"local": Source.local("jsonl", FILES)})
    rows = [{"text": "t", "choices": ["a", "b"], "label": 1}, {"text": "t", "choices": ["a", "b"], "label": 2}]
    message = data_error(task, bert[0], tmp_path, cache_dir, rows, writer=write)
    assert message.endswith("train.jsonl row 2: label 2 is not the index of a choice (the row has 2 choices)")


def test_regression_label_not_a_number_and_tags_not_matching_words(bert, tmp_path, write, cache_dir):
    task = Task(name="sts", kind="regression", sources={"local": Source.local("jsonl", FILES)})
    message = data_error(task, bert[0], tmp_path, cache_dir, [{"text": "a", "label": "high"}], writer=write)
    assert message.endswith("train.jsonl row 1: label 'high' is not a number")
    task = Task(name="ner", kind="token_classification", labels=("O", "PER"), sources={"local": Source.local("jsonl", FILES)})
    message = data_error(task, bert[0], tmp_path, cache_dir, [{"tokens": ["Иван", "спит"], "label": ["PER"]}], writer=write)
    assert message.endswith("train.jsonl row 1: label has 1 tags for 2 words; give one tag per word (field 'label' holds the tags, "
                            "field 'tokens' the words)")
    message = data_error(task, bert[0], tmp_path, cache_dir, [{"tokens": ["Иван"], "label": ["LOC"]}], writer=write)
    assert "train.jsonl row 1: word 1 ('Иван'): label 'LOC' is not one of 'O', 'PER'" in message


def crashing_step(example):
    return {**example, "text": example["no_such_field"]}


def test_preprocessing_step_that_crashes_names_the_row(bert, tmp_path, write, cache_dir):
    task = TERRA.replace(preprocess=(crashing_step,))
    message = data_error(task, bert[0], tmp_path, cache_dir, [GOOD], writer=write)
    assert message.endswith("train.jsonl row 1: preprocessing step tests.data.test_validation:crashing_step failed with KeyError: "
                            "no_such_field (MT_DEBUG=1 shows its traceback); fix the step or the row")


def fields_step(example):
    raise KeyError(f"missing field 'choice2' (row has: {', '.join(sorted(example))})")


def test_preprocessing_steps_see_only_the_datas_own_fields(bert, tmp_path, write, cache_dir):
    message = data_error(TERRA.replace(preprocess=(fields_step,)), bert[0], tmp_path, cache_dir, [GOOD], writer=write)
    assert message.endswith("row 1: preprocessing step tests.data.test_validation:fields_step failed with KeyError: missing field "
                            "'choice2' (row has: hypothesis, label, premise) (MT_DEBUG=1 shows its traceback); fix the step or the row")


def test_labels_in_every_accepted_form(bert, tmp_path, write, cache_dir):
    task = Task(name="xnli", kind="pair_classification", labels=("entailment", "neutral", "contradiction"),
                label_aliases={"contradictory": "contradiction"}, sources={"local": Source.local("jsonl", FILES)})
    rows = [{"text": "a", "text_pair": "b", "label": value} for value in ("contradictory", "neutral", "2", 0, 2)]
    write.jsonl(tmp_path / "train.jsonl", rows[:3])  # names, aliases and ids as text (CSV files)
    write.jsonl(tmp_path / "val.jsonl", rows[3:])  # class ids
    data = load(task, bert[0], tmp_path, cache_dir)
    assert list(data.splits["train"]["labels"]) == [2, 1, 2] and list(data.splits["validation"]["labels"]) == [0, 2]
    write.jsonl(tmp_path / "train.jsonl", rows)  # ids and names mixed in one file: a type conflict, named as such
    message = data_error(task, bert[0], tmp_path, cache_dir, rows, writer=write)
    assert message.endswith("train.jsonl row 4: field 'label' holds 0 (integer) but row 1 holds 'contradictory' (text); "
                            "a field must hold one type in every row")
    regression = Task(name="sts", kind="regression", sources={"local": Source.local("jsonl", FILES)})
    write.jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 3}, {"text": "b", "label": 4.5}, {"text": "c", "label": -1}])
    write.jsonl(tmp_path / "test.jsonl", [{"text": "d"}])
    data = load(regression, bert[0], tmp_path, cache_dir, splits=("train", "test"))
    assert list(data.splits["train"]["labels"]) == [3.0, 4.5, -1.0]  # -1 is a real score outside the test split
    assert math.isnan(data.splits["test"]["labels"][0])


def test_number_named_labels_are_matched_by_name_never_by_position(bert, tmp_path, write, cache_dir):
    stars = TERRA.replace(name="stars", kind="text_classification", labels=("1", "2", "3", "4", "5"), inputs={"text": "premise"})
    message = data_error(stars, bert[0], tmp_path, cache_dir, [{"premise": "a", "label": 1}, {"premise": "b", "label": 0}], writer=write)
    assert message.endswith("row 2: label 0 is not one of '1', '2', '3', '4', '5' (the label names are numbers, so numbers in "
                            "the data are names, not positions); fix the data, or the task's labels / label_aliases")
    write.jsonl(tmp_path / "train.jsonl", [{"premise": "a", "label": 1}, {"premise": "b", "label": 5}])
    assert load(stars, bert[0], tmp_path, cache_dir, splits=("train",)).splits["train"]["labels"] == [0, 4]


def test_labels_written_as_numbers_or_booleans_are_their_stored_form(bert, tmp_path, write, cache_dir):
    """A YAML `labels: [1, 2, 3]` (or Python ints/bools) reads the data as before and writes predictions back typed."""
    typed = TERRA.replace(name="typed", kind="text_classification", labels=(1, 2, 3), inputs={"text": "premise"})
    assert typed.labels == ("1", "2", "3") and typed.label_values == (1, 2, 3)
    assert [typed.label_value(i) for i in range(3)] == [1, 2, 3] and type(typed.label_value(0)) is int
    write.jsonl(tmp_path / "train.jsonl", [{"premise": "a", "label": 1}, {"premise": "b", "label": 3}])
    assert load(typed, bert[0], tmp_path, cache_dir, splits=("train",)).splits["train"]["labels"] == [0, 2]
    flags = TERRA.replace(name="flags", kind="text_classification", labels=(False, True), inputs={"text": "premise"})
    assert flags.label_value(1) is True and flags.label_id("true") == 1
    named = TERRA.replace(name="named", kind="text_classification", labels=("1", "2"), inputs={"text": "premise"})
    assert named.label_values is None and named.label_value(0) == "1"  # names given as text stay text


def test_minus_one_is_a_label_when_the_task_declares_it(bert, tmp_path, write, cache_dir):
    polarity = TERRA.replace(name="polarity", kind="text_classification", labels=("-1", "0", "1"), inputs={"text": "premise"})
    write.jsonl(tmp_path / "train.jsonl", [{"premise": "a", "label": -1}, {"premise": "b", "label": 1}])
    write.jsonl(tmp_path / "test.jsonl", [{"premise": "d", "label": -1}, {"premise": "e", "label": None}])
    data = load(polarity, bert[0], tmp_path, cache_dir, splits=("train", "test"))
    assert data.splits["train"]["labels"] == [0, 2] and data.splits["test"]["labels"] == [0, -1]
    in_csv = polarity.replace(sources={"local": Source.local("csv", {"train": "train.csv"})})
    write.text(tmp_path / "train.csv", "premise,label\nа,-1\nб,0\n")
    assert load(in_csv, bert[0], tmp_path, cache_dir, splits=("train",)).splits["train"]["labels"] == [0, 1]


def test_empty_and_minus_one_csv_cells_mean_no_label(bert, tmp_path, write, cache_dir):
    """What a CSV test file holds for "no label" ("" or "-1") reads as JSON's null or -1 does."""
    csv_task = TERRA.replace(name="csvterra", sources={"local": Source.local("csv", {"train": "train.csv", "test": "test.csv"})})
    write.text(tmp_path / "test.csv", "premise,hypothesis,label\nа,б,\nв,г,-1\nд,е,entailment\n")
    write.text(tmp_path / "train.csv", "premise,hypothesis,label\nа,б,entailment\nв,г,\n")
    assert load(csv_task, bert[0], tmp_path, cache_dir, splits=("test",)).splits["test"]["labels"] == [-1, -1, 0]
    with pytest.raises(DataError, match=r"train\.csv row 3: no label \(field 'label' is ''\); train rows need one$"):
        load(csv_task, bert[0], tmp_path, cache_dir, splits=("train",))


def test_true_false_labels_read_from_json_csv_and_yaml_alike(bert, tmp_path, write, cache_dir):
    """Labels True/False (a YAML list [false, true]) or 'false'/'true' take JSON booleans and CSV words in any case."""
    files = {"train": "train.jsonl", "validation": "val.csv"}
    write.jsonl(tmp_path / "train.jsonl", [{"premise": "a", "label": True}, {"premise": "b", "label": False}])
    write.text(tmp_path / "val.csv", "premise,label\nа,false\nб,TRUE\n")
    for labels in ((False, True), ("false", "true")):
        flag = TERRA.replace(name="flag", kind="text_classification", labels=labels, inputs={"text": "premise"},
                             sources={"local": Source.local("auto", files)})
        data = load(flag, bert[0], tmp_path, cache_dir)
        assert data.splits["train"]["labels"] == [1, 0] and data.splits["validation"]["labels"] == [0, 1]
    yaml_bools = TERRA.replace(name="answer", kind="text_classification", labels=(False, True), inputs={"text": "premise"})
    message = data_error(yaml_bools, bert[0], tmp_path, cache_dir, [{"premise": "a", "label": "yes"}], writer=write)
    assert ("label 'yes' is not one of False, True (the task's labels are the booleans false and true, as JSON writes them; if its "
            "YAML definition meant the words, quote them: labels: ['no', 'yes'], since YAML reads") in message  # a plugin's data too


def test_fields_the_task_does_not_read_may_mix_types(bert, tmp_path, write, cache_dir):
    """An unused field holding 5 in one row and "n/a" in another is kept as text; a read field must still hold one type."""
    rows = [{**GOOD, "rating": 5, "meta": {"a": 1}}, {**GOOD, "rating": "n/a", "meta": "none"}, {**GOOD, "rating": 2**64 - 1}]
    write.jsonl(tmp_path / "train.jsonl", rows)
    data = load(TERRA, bert[0], tmp_path, cache_dir, splits=("train",))
    assert data.splits["train"].num_rows == 3
    huge = data_error(TERRA, bert[0], tmp_path, cache_dir, [GOOD, {**GOOD, "idx": 2**64 - 1}], writer=write)
    assert huge.endswith("train.jsonl row 2: field 'idx' holds 18446744073709551615, an integer too large for 64 bits; "
                         "quote it in the file to read it as text")
