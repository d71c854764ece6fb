"""RUSSE, RWSD, MuSeRC and RuCoS: their official layouts, the export's, preprocessing, metrics, submissions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mtcore.errors import DataError

from mt_russian_superglue.metrics import muserc_em, muserc_score
from mt_russian_superglue.nested import muserc_rows, rucos_rows
from mt_russian_superglue.preprocess import mark_span, preprocess_rucos, preprocess_russe, preprocess_rwsd, rucos_context
from mt_russian_superglue.submission import write_rsg


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


MUSERC = {"idx": 3, "passage": {"text": "(1) Иван живёт в Туле. (2) Он врач.", "questions": [
    {"question": "Где живёт Иван?", "idx": 10, "answers": [{"idx": 40, "text": "В Туле", "label": 1}, {"idx": 41, "text": "В Омске", "label": 0}]},
    {"question": "Кто Иван?", "idx": 11, "answers": [{"idx": 42, "text": "Врач", "label": 1}, {"idx": 43, "text": "Повар", "label": 0},
                                                      {"idx": 44, "text": "Медик", "label": 1}]},
]}}

RUCOS_TEXT = "Компания Ромашка открыла офис в Казани. @highlight\nРомашка растёт @highlight\nОфис в Казани"
RUCOS = {"idx": 5, "source": "test", "passage": {"text": RUCOS_TEXT, "entities": [{"start": 9, "end": 15}, {"start": 32, "end": 37}]},
         "qas": [{"query": "Офис @placeholder открылся в Казани.", "idx": 77,
                  "answers": [{"start": 9, "end": 15, "text": "Ромашка"}]}]}


# ---- preprocessing -------------------------------------------------------------------------------
@pytest.mark.parametrize(("start", "end"), [(6, 11), (6, 10), (7, 11), (5, 12)])  # exclusive end, inclusive, inside, spaces
def test_russe_marks_the_whole_target_word(start, end):
    assert mark_span("Белая косой легла", start, end) == "Белая *косой* легла"


@pytest.mark.parametrize(("start", "end"), [(None, 3), (40, 45), (5, 6)])
def test_russe_offsets_that_mark_no_word_leave_the_sentence(start, end):
    assert mark_span("Белая косой", start, end) == "Белая косой"


def test_russe_row_becomes_a_marked_pair():
    row = {"word": "коса", "sentence1": "Девочка заплела косу.", "start1": 16, "end1": 20, "sentence2": "Коса лежала в сарае.",
           "start2": 0, "end2": 4, "label": False, "idx": 1}
    out = preprocess_russe(row)
    assert out["text"] == "коса: Девочка заплела *косу*." and out["text_pair"] == "*Коса* лежала в сарае."
    assert out["label"] is False and out["idx"] == 1


def test_rwsd_marks_candidate_and_pronoun_official_and_flat_layouts():
    text = "Кубок не влез в чемодан, потому что он большой."
    target = {"span1_index": 0, "span1_text": "Кубок", "span2_index": 7, "span2_text": "он"}
    official = preprocess_rwsd({"text": text, "target": target, "idx": 0, "label": True})
    flat = preprocess_rwsd({"text": text, **target, "idx": 0, "label": 1})
    assert official["text"] == flat["text"] == "[Кубок] не влез в чемодан, потому что *он* большой."
    assert official["text_pair"] == "«он» — это «Кубок»?"


def test_rwsd_index_off_by_one_finds_the_nearest_words():
    text = "Старый дом стоял у реки, и он был красив."
    out = preprocess_rwsd({"text": text, "target": {"span1_index": 1, "span1_text": "Старый дом", "span2_index": 6, "span2_text": "он"}})
    assert out["text"] == "[Старый дом] стоял у реки, и *он* был красив."
    spaced = preprocess_rwsd({"text": text.replace(" и ", "  и "), "target": {"span1_index": 0, "span1_text": "Старый дом",
                                                                            "span2_index": 6, "span2_text": "он"}})
    assert spaced["text"] == "[Старый дом] стоял у реки, и *он* был красив."  # a double space counts once
    with pytest.raises(ValueError, match="target.span1_text 'Сарай' is not in the text"):
        preprocess_rwsd({"text": text, "target": {"span1_index": 0, "span1_text": "Сарай", "span2_index": 6, "span2_text": "он"}, "label": True})
    with pytest.raises(ValueError, match="mark the same words"):
        preprocess_rwsd({"text": text, "target": {"span1_index": 6, "span1_text": "он", "span2_index": 6, "span2_text": "он"}, "label": False})
    with pytest.raises(KeyError, match="missing field 'target'"):
        preprocess_rwsd({"text": text, "idx": 0, "label": True})


def test_broken_russe_and_rwsd_rows_are_one_line_naming_file_and_row(registry, read_source, tmp_path):
    good = {"idx": 0, "word": "коса", "sentence1": "Девочка заплела косу.", "start1": 16, "end1": 20,
            "sentence2": "Коса лежала в сарае.", "start2": 0, "end2": 4, "label": False}
    path = write_jsonl(tmp_path / "RUSSE" / "train.jsonl", [good, {**good, "idx": 1, "start1": 500, "end1": 505}])
    write_jsonl(tmp_path / "RUSSE" / "val.jsonl", [good])
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:russe"), "local", ("train",), data_dir=str(tmp_path))
    assert str(path) in str(info.value) and "row 2" in str(info.value) and "start1 500 / end1 505 mark no word" in str(info.value)


def test_rucos_context_and_answers():
    row = next(rucos_rows(RUCOS))
    out = preprocess_rucos(row)
    assert "@highlight" not in out["context"] and out["context"].split("\n")[1] == "Ромашка растёт"
    assert out["answers"] == {"text": ["Ромашка"], "answer_start": [out["context"].index("Ромашка")]}
    assert rucos_context("А. @highlight\nБ") == "А.\nБ"
    with pytest.raises(ValueError, match="'Лютик' does not occur"):
        preprocess_rucos({**row, "answers": ["Лютик"]})


# ---- the nested official layouts ----------------------------------------------------------------
def test_muserc_rows_one_per_answer_with_the_exports_fields():
    rows = list(muserc_rows(MUSERC))
    assert len(rows) == 5 and rows[0]["paragraph"] == MUSERC["passage"]["text"]
    assert rows[3] == {"paragraph": MUSERC["passage"]["text"], "question": "Кто Иван?", "answer": "Повар", "label": 0,
                       "idx": {"paragraph": 3, "question": 11, "answer": 43}}
    unlabelled = json.loads(json.dumps(MUSERC))
    for question in unlabelled["passage"]["questions"]:
        for answer in question["answers"]:
            del answer["label"]
    assert all("label" not in row for row in muserc_rows(unlabelled))
    assert list(muserc_rows(rows[0])) == [rows[0]]  # a flat row (the export's layout) passes through


def test_rucos_rows_read_inclusive_offsets():
    (row,) = rucos_rows(RUCOS)
    assert row["entities"] == ["Казани", "Ромашка"] and row["answers"] == ["Ромашка"]
    assert row["idx"] == {"passage": 5, "query": 77} and row["query"].count("@placeholder") == 1
    test_row = {**RUCOS, "qas": [{"query": "@placeholder?", "idx": 78}]}
    assert next(rucos_rows(test_row))["answers"] == []


def test_rucos_rows_read_exclusive_offsets_as_the_same_mentions():
    """A copy written with exclusive ends (``text[start:end]``, as RuCoS's own scorer reads them) gave every entity
    one character too many ("Ромашка " and "Казани.") and answers that were no candidate; the record tells which it is."""
    from mt_russian_superglue.nested import inclusive_offsets

    exclusive = json.loads(json.dumps(RUCOS))
    for span in [*exclusive["passage"]["entities"], *exclusive["qas"][0]["answers"]]:
        span["end"] += 1
    assert inclusive_offsets(RUCOS) and not inclusive_offsets(exclusive)
    assert list(rucos_rows(exclusive)) == list(rucos_rows(RUCOS))
    unanswered = {**exclusive, "qas": [{"query": "@placeholder?", "idx": 78}]}  # the test file: told by the entities
    assert not inclusive_offsets(unanswered)
    assert next(rucos_rows(unanswered))["entities"] == ["Казани", "Ромашка"]
    no_text = json.loads(json.dumps(exclusive))  # answers given by offsets alone: read like the entities
    del no_text["qas"][0]["answers"][0]["text"]
    assert next(rucos_rows(no_text))["answers"] == ["Ромашка"]


def test_a_broken_nested_record_names_file_row_and_field(registry, read_source, tmp_path):
    broken = {"idx": 0, "passage": {"text": "Текст.", "questions": [{"idx": 0, "answers": [{"idx": 0, "text": "Да", "label": 1}]}]}}
    path = write_jsonl(tmp_path / "MuSeRC" / "train.jsonl", [MUSERC, broken])
    write_jsonl(tmp_path / "MuSeRC" / "val.jsonl", [MUSERC])
    with pytest.raises(DataError) as info:
        read_source(registry.task("rsg:muserc"), "local", ("train",), data_dir=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and "row 2" in message and "passage.questions[0].question" in message
    with pytest.raises(ValueError, match=r"passage.questions\[1\].answers\[2\].label 2 is not 0 or 1"):
        bad = json.loads(json.dumps(MUSERC))
        bad["passage"]["questions"][1]["answers"][2]["label"] = 2
        list(muserc_rows(bad))


# ---- the three sources --------------------------------------------------------------------------
def test_muserc_local_and_hub_layouts_give_the_same_rows(registry, read_source, tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    task = registry.task("rsg:muserc")
    write_jsonl(tmp_path / "combined" / "MuSeRC" / "train.jsonl", [MUSERC, {**MUSERC, "idx": 4}])
    local = read_source(task, "local", ("train",), data_dir=str(tmp_path))["train"]
    flat = [{**row, "label": row["label"]} for record in (MUSERC, {**MUSERC, "idx": 4}) for row in muserc_rows(record)]
    features = Features({"paragraph": Value("string"), "question": Value("string"), "answer": Value("string"),
                         "idx": {"paragraph": Value("int32"), "question": Value("int32"), "answer": Value("int32")},
                         "label": ClassLabel(names=["False", "True"])})
    target = tmp_path / "hub" / "muserc" / "train" / "0000.parquet"
    target.parent.mkdir(parents=True)
    Dataset.from_list(flat, features=features).to_parquet(str(target))
    hub = read_source(task, "hub", ("train",), path=str(tmp_path / "hub"))["train"]
    assert local.num_rows == hub.num_rows == 10
    assert list(local["labels"]) == list(hub["labels"]) == [1, 0, 1, 0, 1] * 2
    assert local["text"] == hub["text"] and local["text"][0] == "Где живёт Иван? Ответ: В Туле"
    assert local["idx"][5] == {"paragraph": 4, "question": 10, "answer": 40}


def test_rucos_hub_layout_reads_as_extractive_qa(registry, read_source, tmp_path):
    from datasets import Dataset, Features, List, Value

    (row,) = rucos_rows(RUCOS)
    features = Features({"passage": Value("string"), "query": Value("string"), "entities": List(Value("string")),
                         "answers": List(Value("string")), "idx": {"passage": Value("int32"), "query": Value("int32")}})
    for split, rows in {"train": [row], "test": [{**row, "answers": []}]}.items():
        target = tmp_path / "rucos" / split / "0000.parquet"
        target.parent.mkdir(parents=True)
        Dataset.from_list(rows, features=features).to_parquet(str(target))
    data = read_source(registry.task("rsg:rucos"), "hub", ("train", "test"), path=str(tmp_path))
    assert data["train"][0]["labels"]["text"] == ["Ромашка"]
    assert data["test"][0]["labels"]["text"] == []


@pytest.mark.parametrize("name", ["russe", "rwsd", "muserc", "rucos"])
def test_sample_source_loads_every_split(registry, read_source, name):
    data = read_source(registry.task(f"rsg:{name}"), "sample")
    assert set(data) == {"train", "validation", "test"}
    assert all(data[split].num_rows >= 30 for split in data)
    if name == "rucos":
        assert all(row["labels"]["text"] for row in data["train"]) and not any(row["labels"]["text"] for row in data["test"])
    else:
        assert set(data["train"]["labels"]) == {0, 1} and set(data["test"]["labels"]) == {-1}


# ---- metrics --------------------------------------------------------------------------------------
def test_muserc_em_counts_questions_with_every_answer_right():
    idx = [{"paragraph": p, "question": q, "answer": a} for p, q, a in [(0, 0, 0), (0, 0, 1), (0, 1, 2), (1, 0, 3), (1, 0, 4)]]
    references = np.array([1, 0, 1, 1, 1])
    predictions = np.array([1, 0, 0, 1, 1])  # question (0, 1) wrong; (0, 0) and (1, 0) right
    assert muserc_em(predictions, references, idx=idx) == pytest.approx(2 / 3)
    f1a = 2 * 3 / (2 * 3 + 0 + 1)  # tp 3, fp 0, fn 1
    assert muserc_score(predictions, references, idx=idx) == pytest.approx((f1a + 2 / 3) / 2)
    with pytest.raises(DataError) as info:  # a flat file without idx: the fix is an idx on each row, or the nested file
        muserc_em(predictions, references, idx=[None] * 5)
    assert str(info.value) == ("muserc_em groups answers by their idx {paragraph, question, answer}, got idx None; give each row of a "
                               'flat file an idx such as {"paragraph": 0, "question": 1, "answer": 2}, or read the official nested '
                               "MuSeRC file (one passage a line) through the rsg:muserc task")


# ---- submissions ----------------------------------------------------------------------------------
def test_muserc_submission_nests_answers_as_the_official_files(registry, tmp_path):
    task = registry.task("rsg:muserc")
    rows = [{"idx": row["idx"], "label": task.label_value(row["label"])} for row in muserc_rows(MUSERC)]
    (path,) = write_rsg(task, rows, tmp_path)
    assert path.name == "MuSeRC.jsonl"
    assert read_lines(path) == [{"idx": 3, "passage": {"questions": [
        {"idx": 10, "answers": [{"idx": 40, "label": 1}, {"idx": 41, "label": 0}]},
        {"idx": 11, "answers": [{"idx": 42, "label": 1}, {"idx": 43, "label": 0}, {"idx": 44, "label": 1}]}]}}]
    with pytest.raises(DataError, match="idx 3 has no 'paragraph'"):
        write_rsg(task, [{"idx": 3, "label": "True"}], tmp_path)


def test_rucos_russe_rwsd_submission_forms(registry, tmp_path):
    (rucos,) = write_rsg(registry.task("rsg:rucos"), [{"idx": {"passage": 5, "query": 77}, "label": "Ромашка", "score": 0.9}], tmp_path)
    assert read_lines(rucos) == [{"idx": 77, "label": "Ромашка"}]
    (plain,) = write_rsg(registry.task("rsg:rucos"), [{"idx": 78, "label": "Казани"}], tmp_path / "plain")  # a query's own idx
    assert read_lines(plain) == [{"idx": 78, "label": "Казани"}]
    for name, file in [("russe", "RUSSE.jsonl"), ("rwsd", "RWSD.jsonl")]:
        task = registry.task(f"rsg:{name}")
        (path,) = write_rsg(task, [{"idx": 0, "label": "True"}, {"idx": 1, "label": False}], tmp_path)
        assert path.name == file and read_lines(path) == [{"idx": 0, "label": True}, {"idx": 1, "label": False}]


# ---- the whole pipeline ---------------------------------------------------------------------------
NEW_TASKS = ["rsg:russe", "rsg:rwsd", "rsg:muserc", "rsg:rucos"]


@pytest.fixture(scope="module")
def smoke_run(tiny_encoder, tmp_path_factory):
    from mtcore.testing.smoke import smoke_train

    return smoke_train(NEW_TASKS, encoder=tiny_encoder, output_dir=tmp_path_factory.mktemp("rsg-new") / "run", steps=4)


def mt(*args):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_smoke_training_scores_every_new_task_with_its_official_metrics(smoke_run):
    import math

    result = smoke_run
    assert result.steps == 4 and all(math.isfinite(loss) for loss in result.losses)
    assert set(result.metrics["rsg:muserc"]) >= {"muserc_score", "f1_binary", "muserc_em"}
    muserc = result.metrics["rsg:muserc"]
    assert 0.0 <= muserc["muserc_em"] <= 1.0
    assert muserc["muserc_score"] == pytest.approx((muserc["f1_binary"] + muserc["muserc_em"]) / 2)
    assert 0.0 <= result.metrics["rsg:rucos"]["rucos_f1"] <= 1.0
    assert 0.0 <= result.metrics["rsg:russe"]["accuracy"] <= 1.0 and 0.0 <= result.metrics["rsg:rwsd"]["accuracy"] <= 1.0


def test_mt_predict_writes_every_new_submission_file(smoke_run, registry, tmp_path):
    from mt_russian_superglue.loaders import resolve_official_file

    out = tmp_path / "submission"
    for task in NEW_TASKS:
        result = mt("predict", smoke_run.output_dir, "--task", task, "--split", "test", "--format", "rsg", "--output", out)
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["MuSeRC.jsonl", "RUSSE.jsonl", "RWSD.jsonl", "RuCoS.jsonl"]
    sample = Path(__import__("mt_russian_superglue").__file__).parent / "sample"
    official = read_lines(resolve_official_file(sample, ["MuSeRC/test.jsonl"]))
    written = read_lines(out / "MuSeRC.jsonl")
    shape = [{"idx": r["idx"], "questions": [(q["idx"], [a["idx"] for a in q["answers"]]) for q in r["passage"]["questions"]]} for r in official]
    assert [{"idx": r["idx"], "questions": [(q["idx"], [a["idx"] for a in q["answers"]]) for q in r["passage"]["questions"]]}
            for r in written] == shape  # every paragraph, question and answer of the test file, in its order
    assert all(a["label"] in (0, 1) for r in written for q in r["passage"]["questions"] for a in q["answers"])
    rucos = read_lines(out / "RuCoS.jsonl")
    queries = [qa["idx"] for r in read_lines(sample / "RuCoS" / "test.jsonl") for qa in r["qas"]]
    assert [r["idx"] for r in rucos] == queries and all(isinstance(r["label"], str) for r in rucos)
    entities = {row["idx"]["query"]: row["entities"] for record in read_lines(sample / "RuCoS" / "test.jsonl") for row in rucos_rows(record)}
    assert all(r["label"] in entities[r["idx"]] for r in rucos)  # the answer is always one of the passage's entities
    assert all(isinstance(r["label"], bool) for name in ("RUSSE", "RWSD") for r in read_lines(out / f"{name}.jsonl"))


def test_mt_predict_reads_an_official_nested_file_as_the_sources_do(smoke_run, tmp_path):
    path = write_jsonl(tmp_path / "muserc.jsonl", [MUSERC])
    result = mt("predict", smoke_run.output_dir, "--task", "rsg:muserc", "--input", path)
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [r["idx"] for r in printed] == [row["idx"] for row in muserc_rows(MUSERC)]
    assert all(r["label"] in (0, 1) for r in printed)


def test_mt_evaluate_reports_muserc_em(smoke_run):
    result = mt("evaluate", smoke_run.output_dir, "--tasks", "rsg:muserc", "--split", "validation", "--json")
    assert result.exit_code == 0, result.output
    assert "muserc_em" in result.stdout and "muserc_score" in result.stdout


def test_the_full_benchmark_example_trains_offline_on_the_samples(tmp_path, monkeypatch):
    import yaml

    example = Path(__file__).resolve().parents[3] / "examples" / "russian_superglue_full.yaml"
    if not (Path(__file__).resolve().parents[3] / "mtcore").is_dir():
        pytest.skip("reads the repository's examples/, which the plugin's sdist does not ship")
    config = yaml.safe_load(example.read_text(encoding="utf-8"))
    ids = [task["id"] for task in config["tasks"]]
    assert sorted(ids) == sorted(f"rsg:{n}" for n in ("danetqa", "terra", "parus", "rcb", "russe", "rwsd", "muserc", "rucos", "lidirus"))
    monkeypatch.chdir(tmp_path)
    overrides = [f"tasks.{i}.source=sample" for i in range(len(ids))]
    result = mt("train", example, *overrides, "encoder.path=null", "encoder.tiny=bert", "schedule.max_steps=4",
                "evaluation.every=100", "checkpoint.every=100", "--output-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    metrics = summary["final"]["metrics"]
    assert {"rsg:muserc/muserc_em", "rsg:rucos/rucos_f1", "rsg:russe/accuracy", "rsg:rwsd/accuracy", "rsg:lidirus/mcc"} <= set(metrics)
    assert summary["tasks"]["rsg:lidirus"]["evaluated_with"] == "rsg:terra"  # the diagnostic: scored, not trained


def test_show_task_counts_the_nested_samples_in_records():
    result = mt("show-task", "rsg:muserc")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "sample size" in line)
    assert "train 24 records" in line and "muserc_em" in result.output


def test_two_unpacked_copies_under_data_dir_are_refused_not_mixed(registry, read_source, tmp_path):
    for copy in ("a_old", "b_new"):
        write_jsonl(tmp_path / copy / "MuSeRC" / "train.jsonl", [MUSERC])
        write_jsonl(tmp_path / copy / "MuSeRC" / "val.jsonl", [MUSERC])
    with pytest.raises(DataError, match=r"^task 'rsg:muserc': .* holds 2 copies of train.jsonl \(a_old/MuSeRC/train.jsonl, b_new/MuSeRC/train.jsonl\)"):
        read_source(registry.task("rsg:muserc"), "local", ("train",), data_dir=str(tmp_path))
    assert read_source(registry.task("rsg:muserc"), "local", ("train",), data_dir=str(tmp_path / "b_new"))["train"].num_rows == 5


def test_rucos_rows_are_counted_in_queries_with_their_windows(registry, tiny_encoder, tmp_path):
    from transformers import AutoTokenizer

    from mtcore.data import load_task_data

    data = load_task_data(registry.task("rsg:rucos"), AutoTokenizer.from_pretrained(tiny_encoder), splits=("validation",),
                          max_length=64, cache_dir=tmp_path)
    windows = data.num_rows("validation")
    assert data.num_examples("validation") == 30 < windows  # the sample's 30 queries, read in more windows at 64 tokens
    assert data.rows_text("validation") == f"30 ({windows} windows)"


def test_a_misspelt_data_dir_gets_did_you_mean(registry, read_source, tmp_path):
    (tmp_path / "RSG").mkdir()
    with pytest.raises(DataError, match=rf"^task 'rsg:terra': data_dir '{tmp_path / 'RGS'}' is not a folder \(did you mean "
                                        rf"'{tmp_path / 'RSG'}'\?\); point it at the unpacked Russian SuperGLUE files"):
        read_source(registry.task("rsg:terra"), "local", ("train",), data_dir=str(tmp_path / "RGS"))
