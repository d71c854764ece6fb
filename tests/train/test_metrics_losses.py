"""Metrics (against hand-computed values), aggregate score, loss strategies, prediction writers."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from mtcore.plugins import get_component
from mtcore.task import Task
from mtcore.train import metrics as m
from mtcore.train.loss_balancers import UncertaintyLoss
from mtcore.train.losses import PCGradLoss, SingleTaskLoss, SumLoss, WeightedLoss, project_conflicting

CLS = Task(name="c", kind="text_classification", labels=("a", "b", "c"), plugin="t")
REG = Task(name="r", kind="regression", plugin="t")
TOK = Task(name="k", kind="token_classification", labels=("O", "B", "I"), plugin="t")
ML = Task(name="m", kind="multi_label", labels=("x", "y"), plugin="t")


def test_classification_metrics_by_hand():
    preds, refs = np.array([0, 1, 1, 2, 0]), np.array([0, 1, 2, 2, 1])
    assert m.accuracy(preds, refs, CLS) == pytest.approx(3 / 5)
    # per class F1: a: p=1/2 r=1 -> 2/3; b: p=1/2 r=1/2 -> 1/2; c: p=1 r=1/2 -> 2/3
    assert m.f1_macro(preds, refs, CLS) == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert m.f1_micro(preds, refs, CLS) == pytest.approx(3 / 5)
    assert m.f1_accuracy_mean(preds, refs, CLS) == pytest.approx(((2 / 3 + 1 / 2 + 2 / 3) / 3 + 3 / 5) / 2)
    assert m.f1_binary(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), CLS) == pytest.approx(0.5)
    assert m.mcc(np.array([1, 1, 0, 0]), np.array([1, 1, 0, 0]), CLS) == pytest.approx(1.0)
    assert m.mcc(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0]), CLS) == pytest.approx(-1.0)


def test_macro_f1_averages_over_the_classes_that_occur_like_sklearn():
    from sklearn.metrics import f1_score

    # class 'c' is in neither: perfect predictions score 1 (the RSG scorer's and scikit-learn's figure), not 2/3
    assert m.f1_macro(np.array([0, 1, 1]), np.array([0, 1, 1]), CLS) == pytest.approx(1.0)
    # a class only predicted, or only in the references, counts with F1 0
    preds, refs = np.array([0, 2, 1, 1]), np.array([0, 1, 1, 1])
    assert m.f1_macro(preds, refs, CLS) == pytest.approx(f1_score(refs, preds, average="macro")) == pytest.approx((1 + 0.8 + 0) / 3)


def test_weighted_f1_weighs_each_class_by_its_share_like_sklearn():
    from sklearn.metrics import f1_score

    preds, refs = np.array([0, 1, 1, 2, 0]), np.array([0, 1, 2, 2, 1])  # F1: a 2/3 (1 of 5), b 1/2 (2 of 5), c 2/3 (2 of 5)
    assert m.f1_weighted(preds, refs, CLS) == pytest.approx((2 / 3 * 1 + 1 / 2 * 2 + 2 / 3 * 2) / 5)
    assert m.f1_weighted(preds, refs, CLS) == pytest.approx(f1_score(refs, preds, average="weighted"))
    assert m.f1_weighted(np.array([0, 0, 0]), np.array([0, 0, 1]), CLS) == pytest.approx(0.8 * 2 / 3)  # b: F1 0, weight 1/3
    assert get_component("metric", "f1_weighted") is m.f1_weighted


def test_regression_metrics():
    preds, refs = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0, 8.5])
    assert m.pearson(preds, refs, REG) == pytest.approx(float(np.corrcoef(preds, refs)[0, 1]))
    assert m.spearman(preds, refs, REG) == pytest.approx(1.0)
    assert m.mse(preds, refs, REG) == pytest.approx(np.mean((preds - refs) ** 2))
    assert m.pearson(np.ones(3), np.arange(3.0), REG) == 0.0


def test_token_and_multilabel_metrics():
    refs = [np.array([0, 1, -100]), np.array([2, -100])]
    preds = [np.array([0, 2, 1]), np.array([2, 0])]
    assert m.token_accuracy(preds, refs, TOK) == pytest.approx(2 / 3)
    assert m.accuracy(preds, refs, TOK) == pytest.approx(2 / 3)
    p, r = np.array([[1, 0], [1, 1], [0, 1]]), np.array([[1, 0], [0, 1], [0, 1]])
    assert m.exact_match(p, r, ML) == pytest.approx(2 / 3)
    assert m.f1_micro(p, r, ML) == pytest.approx(2 * 3 / (2 * 3 + 1))


NER = Task(name="n", kind="token_classification", labels=("O", "B-MISC", "I-MISC", "B-PER", "I-PER"), plugin="t")


def _tag_ids(task: Task, *sentences: str) -> list[np.ndarray]:
    return [np.array([task.labels.index(tag) for tag in sentence.split()]) for sentence in sentences]


def test_entity_f1_scores_whole_spans_like_conlleval():
    # seqeval's README example: the MISC span starts one word early, so 1 of 2 predicted spans is right
    refs = _tag_ids(NER, "O O O B-MISC I-MISC I-MISC O", "B-PER I-PER O")
    preds = _tag_ids(NER, "O O B-MISC I-MISC I-MISC I-MISC O", "B-PER I-PER O")
    assert m.f1_entity(preds, refs, NER) == pytest.approx(0.5)
    assert m.token_accuracy(preds, refs, NER) == pytest.approx(8 / 10)  # the token view hides that no MISC word is in a right span
    assert m.f1_entity(refs, refs, NER) == 1.0 and m.f1_entity([], [], NER) == 0.0
    # ignored positions (-100: later word pieces, padding) are dropped before spans are read, per sentence
    padded_refs = np.array([[3, -100, 4, 0, -100], [1, 2, -100, -100, -100]])
    padded_preds = np.array([[3, 0, 4, 0, 0], [1, 4, 0, 0, 0]])
    # PER right; the MISC span's second word predicted as PER gives spans MISC(0,0) and PER(1,1): 1 right of 3 found and 2 gold
    assert m.f1_entity(padded_preds, padded_refs, NER) == pytest.approx(2 * 1 / (3 + 2))


def test_negative_predicted_ids_are_never_right_and_read_as_outside():
    """-1 is what evaluation predicts for a word max_length cut off when the task has no "O" label."""
    no_o = Task(name="io", kind="token_classification", labels=("B-PER", "I-PER", "OUT"), plugin="t")
    refs, preds = [np.array([0, 1, 2, 0, 1])], [np.array([0, 1, 2, -1, -1])]
    assert m.token_accuracy(preds, refs, no_o) == pytest.approx(3 / 5)
    assert m.f1_macro(preds, refs, no_o) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)  # -1 is no class (not one with F1 0)
    # spans PER(0,1), OUT(2,2) of PER(0,1), OUT(2,2), PER(3,4): the cut PER is missed (-1 read as O, not as labels[-1])
    assert m.f1_entity(preds, refs, no_o) == pytest.approx(2 * 2 / (2 + 3))
    assert m.f1_entity([np.array([1, 7])], [np.array([1, 0])], NER) == 1.0  # an id past the labels reads as O, no crash
    binary = Task(name="b", kind="token_classification", labels=("no", "yes"), plugin="t")
    assert m.f1_binary([np.array([1, -1, -1])], [np.array([1, 0, 1])], binary) == pytest.approx(2 / 3)  # -1: not positive


def test_entity_spans_follow_iob1_iob2_and_iobes():
    spans = m.entity_spans("I-PER I-PER B-PER O I-LOC E-LOC S-ORG I-ORG E-ORG B-X I-Y PER PER".split())
    assert spans == {("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 5), ("ORG", 6, 6), ("ORG", 7, 8), ("X", 9, 9), ("Y", 10, 10),
                     ("PER", 11, 12)}  # a tag without a prefix is inside an entity of its type (IO tags)
    assert get_component("metric", "f1_entity") is m.f1_entity


def test_metrics_are_registered_and_keyed_by_task():
    two = [Task(name=n, kind="text_classification", labels=("a", "b"), plugin="p") for n in ("x", "y")]
    results = {}
    for i, task in enumerate(two):
        results.update(m.compute_metrics(task, np.array([0, i]), np.array([0, 1]), lambda name: get_component("metric", name)))
    assert results == {"p:x/accuracy": 0.5, "p:x/f1_macro": pytest.approx(1 / 3), "p:y/accuracy": 1.0, "p:y/f1_macro": 1.0}


def test_aggregate_mean_weights_and_lower_is_better():
    tasks = [Task(name="x", kind="text_classification", labels=("a", "b"), plugin="p"),
             Task(name="r", kind="regression", plugin="p", main_metric="mse")]
    scores = {"p:x/accuracy": 0.8, "p:r/mse": 0.2}
    assert m.aggregate(scores, tasks) == pytest.approx((0.8 - 0.2) / 2)
    assert m.aggregate(scores, tasks, {"p:x": 3}) == pytest.approx((3 * 0.8 - 0.2) / 4)
    assert math.isnan(m.aggregate({}, tasks))
    qualified = [tasks[0], tasks[1].replace(main_metric="mtcore:mse", metrics=("mtcore:mse",))]  # the id mt components lists: still lower-is-better
    assert m.aggregate({"p:x/accuracy": 0.8, "p:r/mtcore:mse": 0.2}, qualified) == pytest.approx((0.8 - 0.2) / 2)


def test_a_plugin_metric_registered_lower_is_better_counts_negated():
    from mtcore.plugins import lower_is_better, register_component

    register_component("metric", "mae_test", lambda predictions, references, task: 0.0, "mean absolute error", kinds=("regression",),
                       lower_is_better=True)
    task = Task(name="r", kind="regression", plugin="p", main_metric="user:mae_test", metrics=("user:mae_test",))
    assert lower_is_better("mae_test") and lower_is_better("user:mae_test") and not lower_is_better("pearson")
    assert m.aggregate({"p:r/user:mae_test": 0.25}, [task]) == -0.25


def test_loss_strategies_combine():
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(4.0)}
    assert SingleTaskLoss(["a", "b"]).combine({"a": torch.tensor(2.0)}) == 2.0
    assert SumLoss(["a", "b"]).combine(losses) == 6.0
    assert WeightedLoss(["a", "b"], weights={"a": 0.5, "b": 2.0}).combine(losses) == pytest.approx(9.0)
    uw = UncertaintyLoss(["a", "b"], init=0.5)
    expected = math.exp(-0.5) * 2 + 0.5 + math.exp(-0.5) * 4 + 0.5
    assert uw.combine(losses).item() == pytest.approx(expected)
    total = uw.combine({"a": torch.tensor(2.0, requires_grad=True), "b": torch.tensor(4.0)})
    total.backward()
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L
    assert uw.log_variances.grad.tolist() == pytest.approx([1 - math.exp(-0.5) * 2, 1 - math.exp(-0.5) * 4])
    assert set(uw.state_dict()) == {"log_variances"}
    with pytest.raises(TypeError):
        SumLoss(["a"], bogus=1)


def test_pcgrad_projection():
    gen = torch.Generator().manual_seed(0)
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    total = project_conflicting([g1, g2], gen)
    # g1 projected on the normal plane of g2: (0.5, 0.5); g2 on g1's: (0, 1)
    assert torch.allclose(total, torch.tensor([0.5, 1.5]))
    # no conflict -> plain sum
    assert torch.allclose(project_conflicting([g1, torch.tensor([1.0, 1.0])], gen), torch.tensor([2.0, 1.0]))


@pytest.mark.parametrize("scale", [1e-8, 1e-4, 1.0, 1e4])
def test_pcgrad_projection_is_the_same_at_any_scale_of_the_gradients(scale):
    """A fixed eps of 1e-12 on the squared norms shrank the projection of small gradients (norm 1e-8: to 1e-4 of it)."""
    gen = torch.Generator().manual_seed(0)
    g1, g2 = torch.tensor([1.0, 0.0]) * scale, torch.tensor([-1.0, 1.0]) * scale
    assert torch.allclose(project_conflicting([g1, g2], gen) / scale, torch.tensor([0.5, 1.5]))
    zero = project_conflicting([g1, torch.zeros(2)], gen)  # a task with no gradient: nothing to project, no NaN
    assert torch.equal(zero, g1)


def test_pcgrad_backward_writes_gradients():
    shared = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    head_a, head_b = torch.nn.Parameter(torch.tensor(1.0)), torch.nn.Parameter(torch.tensor(1.0))
    losses = {"a": (shared * torch.tensor([1.0, 0.0])).sum() * head_a, "b": (shared * torch.tensor([-1.0, 1.0])).sum() * head_b}
    strategy = PCGradLoss(["a", "b"])
    strategy.backward(losses, [shared], [head_a, head_b], lambda loss: loss, step=1)
    strategy.end_backward([shared], [head_a, head_b], step=1)
    assert torch.allclose(shared.grad, torch.tensor([0.5, 1.5]))
    assert head_a.grad.item() == pytest.approx(1.0) and head_b.grad.item() == pytest.approx(0.0)


def test_pcgrad_leaves_shared_parameters_no_task_reached_without_a_gradient():
    """As 'sum' does: a zero gradient would still get AdamW's weight decay and momentum."""
    shared, unused = torch.nn.Parameter(torch.tensor([1.0, 1.0])), torch.nn.Parameter(torch.tensor([2.0]))
    losses = {"a": (shared * torch.tensor([1.0, 0.0])).sum(), "b": (shared * torch.tensor([-1.0, 1.0])).sum()}
    strategy = PCGradLoss(["a", "b"])
    strategy.backward(losses, [shared, unused], [], lambda loss: loss, step=1)
    strategy.end_backward([shared, unused], [], step=1)
    assert unused.grad is None and torch.allclose(shared.grad, torch.tensor([0.5, 1.5]))


def test_writers(tmp_path):
    from mtcore.predict.writers import write_csv, write_jsonl

    task = Task(name="terra", kind="pair_classification", labels=("entailment", "not_entailment"), plugin="rsg")
    rows = [{"idx": 0, "label": "entailment", "probabilities": np.array([0.75, 0.25])}, {"idx": 1, "label": "not_entailment"}]
    [path] = write_jsonl(task, rows, tmp_path / "p.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"idx": 0, "label": "entailment", "probabilities": [0.75, 0.25]}, {"idx": 1, "label": "not_entailment"}]
    [path] = write_csv(task, rows, tmp_path / "out" / "p.csv")
    table = list(csv.reader(path.open()))
    assert table == [["idx", "label", "p_entailment", "p_not_entailment"], ["0", "entailment", "0.75", "0.25"], ["1", "not_entailment", "", ""]]
    assert get_component("writer", "jsonl") is write_jsonl
    muserc = Task(name="muserc", kind="pair_classification", labels=("0", "1"), plugin="rsg")  # a mapping idx: JSON, as in jsonl
    [path] = write_csv(muserc, [{"idx": {"paragraph": 0, "question": 1, "answer": 2}, "label": 1}], tmp_path / "m.csv")
    assert json.loads(list(csv.reader(path.open()))[1][0]) == {"paragraph": 0, "question": 1, "answer": 2}


@pytest.mark.parametrize("kind,head", [("regression", "regression"), ("token_classification", "token_classification"),
                                       ("multi_label", "multi_label"), ("text_classification", "classification")])
def test_evaluation_of_a_split_without_labels_gives_no_metrics(kind, head, tmp_path):
    """A test split without labels: no metrics (regression scored the -1 placeholders as targets; tokens crashed)."""
    import contextlib
    from types import SimpleNamespace

    from mtcore.data.collate import Collator
    from mtcore.model import MultitaskModel
    from mtcore.model.heads.base import HeadSpec
    from mtcore.testing import build_tiny_encoder
    from mtcore.train.evaluation import evaluate

    labels = ("O", "B") if kind != "regression" else ()
    task = Task(name="t", kind=kind, labels=labels, plugin="p")
    model = MultitaskModel(build_tiny_encoder(tmp_path / "enc", "bert"),
                           {task.id: HeadSpec(head, 1 if kind == "regression" else 2, kind=kind, labels=labels)})
    rows = [{"input_ids": [2, 5 + i, 6, 3][: 3 + i % 2], "token_type_ids": [0] * (3 + i % 2), "length": 3 + i % 2} for i in range(5)]
    if kind == "token_classification":
        for row in rows:
            row["word_ids"] = list(range(row["length"]))
    data = SimpleNamespace(splits={"test": rows}, lengths=lambda split: np.array([r["length"] for r in rows]),
                           collator=Collator(0, kind, uses_token_type_ids=True))
    accelerator = SimpleNamespace(process_index=0, num_processes=1, device=torch.device("cpu"), autocast=contextlib.nullcontext)
    metrics = evaluate(model, {task.id: data}, {task.id: task}, accelerator, split="test", batch_size=2,
                       metric_fn=lambda name: get_component("metric", name))
    assert metrics == {}


def test_token_evaluation_loss_does_not_depend_on_the_batch_size(tmp_path):
    """Batch losses are means over labelled tokens: weighting them by rows made the loss depend on how rows were batched."""
    import contextlib
    from types import SimpleNamespace

    from mtcore.data.collate import Collator
    from mtcore.model import MultitaskModel
    from mtcore.model.heads.base import HeadSpec
    from mtcore.testing import build_tiny_encoder
    from mtcore.train.evaluation import evaluate

    task = Task(name="t", kind="token_classification", labels=("O", "B"), plugin="p")
    torch.manual_seed(0)
    model = MultitaskModel(build_tiny_encoder(tmp_path / "enc", "bert"), {task.id: HeadSpec("token_classification", 2, kind=task.kind)})
    rows = []
    for i in range(6):
        n = 3 + 3 * (i % 3)  # rows of 3, 6 and 9 tokens
        rows.append({"input_ids": [2] + [5 + (i + j) % 7 for j in range(n - 2)] + [3], "length": n,
                     "labels": [-100] + [(i + j) % 2 for j in range(n - 2)] + [-100]})
    data = SimpleNamespace(splits={"validation": rows}, lengths=lambda split: np.array([r["length"] for r in rows]),
                           collator=Collator(0, task.kind))
    accelerator = SimpleNamespace(process_index=0, num_processes=1, device=torch.device("cpu"), autocast=contextlib.nullcontext)
    losses = [evaluate(model, {task.id: data}, {task.id: task}, accelerator, split="validation", batch_size=size,
                       metric_fn=lambda name: get_component("metric", name))[f"{task.id}/loss"] for size in (1, 4, 6)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) == pytest.approx(losses[2], rel=1e-5)
