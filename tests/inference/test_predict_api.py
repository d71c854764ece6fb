"""``predict(model, task, inputs)``: labels in the stored form, probabilities, order, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from inference.support import NLI, PAIRS, REVIEWS, SENTIMENT, make_model

from mtcore.errors import ConfigError, DataError, UnknownNameError
from mtcore.model import MultitaskModel
from mtcore.predict.predictor import predict
from mtcore.task import Task


@pytest.fixture(scope="module")
def bert_model(bert_model_dir):
    return MultitaskModel.from_pretrained(bert_model_dir)


def test_labels_are_stored_values_with_probabilities(bert_model):
    out = predict(bert_model, "sentiment", REVIEWS)
    assert len(out) == len(REVIEWS) and out.head == "demo:sentiment"
    assert all(label in (0, 1) and type(label) is int for label in out.labels)  # label_values, not names
    for probs, class_id, label in zip(out.probabilities, out.class_ids, out.labels):
        assert len(probs) == 2 and math.isclose(sum(probs), 1.0, rel_tol=1e-5)
        assert class_id == int(np.argmax(probs)) and label == SENTIMENT.label_values[class_id]
    assert out.idx == list(range(len(REVIEWS)))  # no id field: the row position


def test_results_keep_input_order_whatever_the_batching(bert_model):
    one = predict(bert_model, "demo:nli", PAIRS, batch_size=1)
    many = predict(bert_model, "demo:nli", PAIRS, batch_size=8)
    reversed_rows = predict(bert_model, "demo:nli", PAIRS[::-1], batch_size=2)
    assert one.labels == many.labels == reversed_rows.labels[::-1]
    np.testing.assert_allclose(one.probabilities, many.probabilities, atol=1e-5)
    np.testing.assert_allclose(one.probabilities, reversed_rows.probabilities[::-1], atol=1e-5)
    singles = [predict(bert_model, "demo:nli", [row]).probabilities[0] for row in PAIRS]
    np.testing.assert_allclose(singles, many.probabilities, atol=1e-5)


def test_dataset_file_and_dict_inputs_agree(bert_model, reviews_file):
    from datasets import Dataset

    from_list = predict(bert_model, "sentiment", REVIEWS)
    from_file = predict(bert_model, "sentiment", reviews_file)
    from_dataset = predict(bert_model, "sentiment", Dataset.from_list([{"review": r["review"]} for r in REVIEWS]))
    single = predict(bert_model, "sentiment", REVIEWS[0])
    assert from_list.labels == from_file.labels == from_dataset.labels
    np.testing.assert_allclose(from_list.probabilities, from_dataset.probabilities, atol=1e-6)
    assert single.labels == from_list.labels[:1]


def test_model_predict_method_matches_the_function(bert_model):
    if not hasattr(MultitaskModel, "predict"):
        pytest.skip("MultitaskModel.predict is added by the model's owner")
    by_method = bert_model.predict("demo:nli", PAIRS)
    by_function = predict(bert_model, "demo:nli", PAIRS)
    assert by_method.labels == by_function.labels
    np.testing.assert_allclose(by_method.probabilities, by_function.probabilities, atol=1e-6)


def test_bool_label_values_and_preprocessed_multiple_choice(trained_run, rsg_sample):
    from mtcore.plugins import get_task

    model = MultitaskModel.from_pretrained(trained_run / "model")
    parus = predict(model, "parus", rsg_sample / "PARus" / "val.jsonl")  # raw premise/choice1/choice2/question
    assert set(parus.labels) <= {0, 1} and all(len(p) == 2 for p in parus.probabilities)
    assert parus.idx[:3] == [0, 1, 2]
    tiny = MultitaskModel(model.encoder, [get_task("rsg:danetqa")], tokenizer=model.tokenizer)
    rows = [{"question": "Правда?", "passage": "Это правда.", "idx": 7}]
    danetqa = predict(tiny, "danetqa", rows)
    assert type(danetqa.labels[0]) is bool and danetqa.idx == [7]


def test_task_served_by_another_head(trained_run, rsg_sample):
    model = MultitaskModel.from_pretrained(trained_run / "model")
    lidirus = predict(model, "rsg:lidirus", rsg_sample / "LiDiRus" / "LiDiRus.jsonl")
    terra = predict(model, "rsg:terra", [{"premise": r, "hypothesis": h} for r, h in _lidirus_pairs(rsg_sample)])
    assert lidirus.head == "rsg:terra" and lidirus.task.id == "rsg:lidirus"
    assert lidirus.labels == terra.labels


def _lidirus_pairs(sample):
    import json

    rows = [json.loads(line) for line in (sample / "LiDiRus" / "LiDiRus.jsonl").read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    return [(r["sentence1"], r["sentence2"]) for r in rows]


def test_other_kinds(tiny_encoders, tmp_path):
    tasks = [
        Task(name="score", kind="regression", inputs={"text": "t"}, plugin="k"),
        Task(name="topics", kind="multi_label", labels=("a", "b", "c"), inputs={"text": "t"}, plugin="k"),
        Task(name="tags", kind="token_classification", labels=("O", "B", "I"), inputs={"tokens": "words"}, plugin="k", max_length=8),
    ]
    model = make_model(tiny_encoders["bert"], *tasks)
    score = predict(model, "score", [{"t": "good"}, {"t": "bad movie"}])
    assert score.probabilities is None and all(isinstance(v, float) for v in score.labels)
    topics = predict(model, "topics", [{"t": "good"}])
    assert len(topics.probabilities[0]) == 3 and set(topics.labels[0]) <= {"a", "b", "c"}
    assert topics.labels[0] == [name for name, p in zip("abc", topics.probabilities[0]) if p > 0.5]
    words = ["good", "movie", "very", "long", "sentence", "cut", "by", "truncation", "here"]
    with pytest.warns(UserWarning, match=r"^task 'k:tags', input: 1 of 2 rows lose \d+ word\(s\) past max_length 8 .*their predicted label is null"):
        tags = predict(model, "tags", [{"words": ["good", "movie"]}, {"words": words}])
    assert len(tags.labels[0]) == 2 and all(tag in ("O", "B", "I") for tag in tags.labels[0])
    assert len(tags.labels[1]) == len(words) and tags.labels[1][-1] is None  # cut by max_length 8
    rows = tags.rows()  # a probability list per word, None for a word cut by truncation
    assert len(rows[1]["probabilities"]) == len(words) and rows[1]["probabilities"][-1] is None
    assert all(abs(sum(p) - 1) < 1e-5 and len(p) == 3 for p in rows[0]["probabilities"])
    for word, (tag, probs) in enumerate(zip(rows[0]["label"], rows[0]["probabilities"])):
        assert tag == ("O", "B", "I")[max(range(3), key=probs.__getitem__)], word
    from mtcore.predict.writers import write_csv, write_jsonl

    (written,) = write_jsonl(tags.task, rows, tmp_path / "tags.jsonl")
    records = [json.loads(line) for line in written.read_text(encoding="utf-8").splitlines()]
    assert records[1]["label"] == rows[1]["label"] and records[1]["probabilities"][-1] is None
    assert records[0]["probabilities"] == rows[0]["probabilities"]
    (table,) = write_csv(tags.task, rows, tmp_path / "tags.csv")
    assert table.read_text(encoding="utf-8").splitlines()[0] == "idx,label,tokens"  # per-word lists are no columns; the words are JSON text


def test_preprocessing_functions_not_saved_by_name(tiny_encoders, tmp_path):
    def upper(row):
        return {**row, "text": row["raw"].upper()}

    task = Task(name="custom", kind="text_classification", labels=("x", "y"), preprocess=(upper,), plugin="user")
    live = make_model(tiny_encoders["bert"], task)
    assert len(predict(live, "custom", [{"raw": "good"}])) == 1  # in the session that built it, by name too
    saved = live.save_pretrained(tmp_path / "m")
    model = MultitaskModel.from_pretrained(saved)
    with pytest.raises(ConfigError, match=r"cannot be built here; register the task \(its id\) in a plugin that has them, or score "
                                          r"it from Python with the Task itself"):
        predict(model, "custom", [{"raw": "good"}])
    assert len(predict(model, task, [{"raw": "good"}])) == 1


def test_errors_are_one_line(bert_model, tmp_path):
    with pytest.raises(UnknownNameError, match=r"did you mean 'demo:sentiment'"):
        predict(bert_model, "sentimnt", REVIEWS)
    with pytest.raises(DataError, match=r"inputs row 2: no field 'hypothesis'") as info:
        predict(bert_model, "nli", [PAIRS[0], {"premise": "only"}])
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="no rows"):
        predict(bert_model, "nli", [])
    mixed = [{"review": "a"}, {"review": "b", "idx": 7}]  # numbering the first could repeat a real idx
    with pytest.raises(DataError, match=r"^inputs row 1 has no idx while inputs row 2 has 7; give every row an idx, or none"):
        predict(bert_model, "sentiment", mixed)
    assert predict(bert_model, "sentiment", [{"review": "a", "idx": 7}, {"review": "b", "idx": 3}]).idx == [7, 3]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="the input file is empty"):
        predict(bert_model, "sentiment", empty)
    with pytest.raises(DataError, match="no such input file"):
        predict(bert_model, "sentiment", tmp_path / "missing.jsonl")
    wrong = Task(name="nli", kind="pair_classification", labels=("yes", "no"), plugin="demo")
    with pytest.raises(ConfigError, match="labels must be the same"):
        predict(bert_model, wrong, PAIRS)
    assert NLI.id in bert_model.tasks
