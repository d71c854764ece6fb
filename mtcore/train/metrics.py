"""Official task metrics, computed locally with scikit-learn / scipy / numpy (nothing downloaded).

Every metric is ``fn(predictions, references, task) -> float`` on numpy arrays:

* classification, multiple choice: class ids, shape ``(n,)``;
* regression: values, shape ``(n,)``;
* multi-label: 0/1 indicator matrices, shape ``(n, labels)``;
* token classification: tag ids, either flat arrays or ``(n, length)`` arrays / lists of
  per-example arrays; reference positions holding ``-100`` (or any negative id) are ignored.
  A negative *predicted* id (a word cut off by ``max_length`` in a task without an ``O`` label,
  see :mod:`mtcore.train.evaluation`) is never right: it is wrong for accuracy and F1, belongs
  to no class of macro F1, is "not positive" for ``f1_binary`` and reads as ``O`` in ``f1_entity``.

A metric that scores groups of rows (MultiRC's and MuSeRC's exact match: every answer of a
question right) also takes ``idx``: the rows' ids, in the order of ``predictions``
(:func:`wants_idx`). An extractive-QA metric that chooses the "no answer" threshold itself
(``squad_best_f1``) takes ``null_answers``: each question's best span text and null score diff
(:mod:`mtcore.data.qa_decoding`), None for a task without ``no_answer``.

:func:`compute_metrics` runs a task's metrics and keys each result by task id
(``rsg:terra/accuracy``) so tasks never overwrite each other. A metric registered with
``lower_is_better=True`` (``mse``) counts negated in the aggregate score
(:func:`mtcore.plugins.lower_is_better`, which takes ``mse`` and ``mtcore:mse`` alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mtcore.errors import MtError

def _flat_tokens(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flatten token-level predictions/references and drop ignored (negative) reference positions."""
    if isinstance(references, np.ndarray) and references.dtype != object:
        refs = references.reshape(-1)
        preds = np.asarray(predictions).reshape(-1)
    else:
        pairs = list(_sequences(predictions, references))
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate([p for p, _ in pairs]), np.concatenate([r for _, r in pairs])
    keep = refs >= 0
    return preds[keep], refs[keep]


def _ids(predictions: Any, references: Any, task: Any) -> tuple[np.ndarray, np.ndarray]:
    """Class ids for single-label metrics (token tasks flattened to labelled tokens)."""
    kind = str(getattr(task, "kind", ""))
    if kind == "token_classification":
        return _flat_tokens(predictions, references)
    preds, refs = np.asarray(predictions), np.asarray(references)
    if preds.ndim > 1 and kind != "multi_label":
        preds, refs = preds.reshape(-1), refs.reshape(-1)
    return preds, refs


def _labels(task: Any) -> list[int] | None:
    names = getattr(task, "labels", ())
    return list(range(len(names))) if names and str(getattr(task, "kind", "")) != "multiple_choice" else None


def accuracy(predictions: Any, references: Any, task: Any = None) -> float:
    """Share of exact predictions (per example; per labelled token for token tasks)."""
    preds, refs = _ids(predictions, references, task)
    if preds.ndim > 1:  # multi-label: per-decision accuracy
        return float((preds == refs).mean()) if preds.size else 0.0
    return float((preds == refs).mean()) if len(refs) else 0.0


def token_accuracy(predictions: Any, references: Any, task: Any = None) -> float:
    """Share of labelled tokens predicted right (positions with reference -100 are ignored)."""
    preds, refs = _flat_tokens(predictions, references)
    return float((preds == refs).mean()) if len(refs) else 0.0


def _sequences(predictions: Any, references: Any) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Per example: the predicted and reference tag ids of its labelled tokens."""
    for p, r in zip(predictions, references):
        r = np.asarray(r).reshape(-1)
        p = np.asarray(p).reshape(-1)[: len(r)]
        r = r[: len(p)]
        keep = r >= 0
        yield p[keep], r[keep]


def _split_tag(name: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``; a tag without a prefix is inside its type."""
    prefix, dash, kind = name.partition("-")
    if dash and prefix in {"B", "I", "E", "S", "L", "U"}:
        return {"L": "E", "U": "S"}.get(prefix, prefix), kind
    return ("O", "") if name == "O" else ("I", name)


def entity_spans(tags: Iterable[str]) -> set[tuple[str, int, int]]:
    """``(type, first, last)`` of every entity in a tag sequence (IOB1, IOB2/BIO, IOBES/BILOU).

    The chunking rules of CoNLL's ``conlleval`` (and seqeval's default mode): an entity starts at
    ``B``/``S``, or at an ``I``/``E`` that follows ``O``, an entity's end or another type; it ends
    before ``O``, ``B``, ``S`` or another type, and at ``E``/``S``.
    """
    spans: set[tuple[str, int, int]] = set()
    start, prev_prefix, prev_kind = None, "O", ""
    for i, name in enumerate([*tags, "O"]):
        prefix, kind = _split_tag(str(name))
        ends = start is not None and (prev_prefix in {"E", "S"} or prefix in {"B", "S", "O"} or kind != prev_kind)
        if ends:
            spans.add((prev_kind, start, i - 1))
            start = None
        if prefix != "O" and (start is None or prefix in {"B", "S"}):
            start = i
        prev_prefix, prev_kind = prefix, kind
    return spans


def f1_entity(predictions: Any, references: Any, task: Any = None) -> float:
    """Entity-level (span) F1 for token tasks whose tags are ``B-X``/``I-X``/``O`` (or IOBES):
    an entity counts only when its type and both ends are right, micro-averaged over entities
    (CoNLL-2003's official score, ``conlleval``; seqeval's default)."""
    names = list(getattr(task, "labels", ()) or ())

    def tag(t: Any) -> str:  # an id that names no label (negative: a word cut off by max_length) is "O"
        t = int(t)
        if t < 0 or (names and t >= len(names)):
            return "O"
        return names[t] if names else str(t)

    found = gold = right = 0
    for preds, refs in _sequences(predictions, references):
        predicted = entity_spans(tag(t) for t in preds)
        expected = entity_spans(tag(t) for t in refs)
        found, gold, right = found + len(predicted), gold + len(expected), right + len(predicted & expected)
    return 2.0 * right / (found + gold) if found + gold else 0.0


def _f1(predictions: Any, references: Any, task: Any, average: str) -> float:
    from sklearn.metrics import f1_score

    preds, refs = _ids(predictions, references, task)
    if len(refs) == 0:
        return 0.0
    if preds.ndim > 1:  # multi-label indicator matrices
        return float(f1_score(refs.astype(int), preds.astype(int), average=average, zero_division=0))
    labels = _labels(task) if average == "micro" else None
    if average in ("macro", "weighted"):  # the classes in the references or the predictions, as scikit-learn and official scorers do
        labels = sorted(set(refs.tolist()) | {p for p in preds.tolist() if p >= 0})  # a negative prediction is no class
    return float(f1_score(refs, preds, labels=labels, average=average, zero_division=0))


def f1_macro(predictions: Any, references: Any, task: Any = None) -> float:
    """F1 averaged over the classes that occur in the references or the predictions (scikit-learn's
    default and the Russian SuperGLUE scorer's: a class a small set lacks and nobody predicted
    does not count as F1 0)."""
    return _f1(predictions, references, task, "macro")


def f1_accuracy_mean(predictions: Any, references: Any, task: Any = None) -> float:
    """The mean of macro F1 and accuracy: the official score of CommitmentBank (SuperGLUE's CB,
    Russian SuperGLUE's RCB), "Avg. F1 / Accuracy"."""
    return (f1_macro(predictions, references, task) + accuracy(predictions, references, task)) / 2.0


def f1_micro(predictions: Any, references: Any, task: Any = None) -> float:
    """F1 over all decisions (equals accuracy for single-label tasks)."""
    return _f1(predictions, references, task, "micro")


def f1_weighted(predictions: Any, references: Any, task: Any = None) -> float:
    """F1 per class, averaged with each class weighted by its share of the references (scikit-learn's ``weighted``):
    the figure RuSentiment's paper reports."""
    return _f1(predictions, references, task, "weighted")


def f1_binary(predictions: Any, references: Any, task: Any = None) -> float:
    """F1 of the positive class (class id 1)."""
    from sklearn.metrics import f1_score

    preds, refs = _ids(predictions, references, task)
    if len(refs) == 0:
        return 0.0
    preds = np.where(preds < 0, 0, preds)  # a negative prediction (no class) is "not positive"
    return float(f1_score(refs, preds, pos_label=1, average="binary", zero_division=0))


def mcc(predictions: Any, references: Any, task: Any = None) -> float:
    """Matthews correlation coefficient (0 when undefined)."""
    from sklearn.metrics import matthews_corrcoef

    preds, refs = _ids(predictions, references, task)
    if len(refs) == 0:
        return 0.0
    return float(matthews_corrcoef(refs, preds))


def _regression(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(predictions, dtype=np.float64).reshape(-1), np.asarray(references, dtype=np.float64).reshape(-1)


def pearson(predictions: Any, references: Any, task: Any = None) -> float:
    """Pearson correlation (0 when either side is constant)."""
    preds, refs = _regression(predictions, references)
    if len(refs) < 2 or preds.std() == 0 or refs.std() == 0:
        return 0.0
    return float(np.corrcoef(preds, refs)[0, 1])


def spearman(predictions: Any, references: Any, task: Any = None) -> float:
    """Spearman rank correlation (0 when either side is constant)."""
    from scipy.stats import spearmanr

    preds, refs = _regression(predictions, references)
    if len(refs) < 2 or preds.std() == 0 or refs.std() == 0:
        return 0.0
    return float(spearmanr(preds, refs).statistic)


def mse(predictions: Any, references: Any, task: Any = None) -> float:
    """Mean squared error (lower is better)."""
    preds, refs = _regression(predictions, references)
    return float(np.mean((preds - refs) ** 2)) if len(refs) else 0.0


def exact_match(predictions: Any, references: Any, task: Any = None) -> float:
    """Share of examples with every label right (multi-label); plain accuracy otherwise."""
    preds, refs = np.asarray(predictions), np.asarray(references)
    if len(refs) == 0:
        return 0.0
    if preds.ndim == 1:
        return float((preds == refs).mean())
    return float(np.all(preds.astype(int) == refs.astype(int), axis=1).mean())


def _parameters(function: Callable[..., float]) -> Any:
    import inspect

    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return {}


def wants_idx(function: Callable[..., float]) -> bool:
    """Whether a metric takes the rows' ids (a parameter called ``idx``)."""
    return "idx" in _parameters(function)


def compute_metrics(task: Any, predictions: Any, references: Any, resolve: Callable[[str], Callable[..., float]],
                    idx: Callable[[], list[Any]] | None = None,
                    null_answers: Sequence[tuple[str, float]] | None = None) -> dict[str, float]:
    """``{"<task id>/<metric>": value}`` for each of the task's metrics (``resolve`` finds functions).

    ``idx`` gives the rows' ids, read only when a metric takes them (:func:`wants_idx`);
    ``null_answers`` (extractive QA with ``no_answer``: each question's best span and null score
    diff) goes to metrics with a parameter of that name. A metric that raises or returns anything but a
    number is a one-line :class:`MetricError` naming it, its plugin and reference, and the task."""
    results: dict[str, float] = {}
    ids: list[Any] | None = None
    from mtcore.plugins import component_ref

    for name in task.all_metrics:
        function = resolve(component_ref("metric", name, getattr(task, "metric_owner", None)))
        extra: dict[str, Any] = {}
        parameters = _parameters(function)
        if "idx" in parameters:
            if ids is None:
                ids = idx() if idx is not None else [None] * len(references)
            extra["idx"] = ids
        if "null_answers" in parameters:
            extra["null_answers"] = null_answers
        try:
            value = function(predictions, references, task, **extra)
        except MtError as exc:  # already one line: say whose it is
            raise MetricError(f"{_whose(name, function, task)} failed: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - any bug of a metric: one line naming it, not "unexpected ValueError"
            first = (str(exc).strip().splitlines() or [""])[0]
            said = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
            raise MetricError(f"{_whose(name, function, task)} failed: {_short(said, 200)}; fix that function "
                              "(MT_DEBUG=1 shows the traceback)") from exc
        results[f"{task.id}/{name}"] = _score(value, name, function, task)
    return results


class MetricError(MtError):
    """A metric that raised, or returned something that is not a number (exit code 1)."""


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _whose(name: str, function: Callable[..., Any], task: Any) -> str:
    """``metric 'x' (plugin 'p', reference 'module:function') of task 't'``."""
    from mtcore.refs import describe

    where = f"reference {describe(function)!r}"
    try:
        from mtcore.plugins import load_registry

        component = load_registry().component("metric", name)
        where = f"plugin {component.plugin!r}, reference {describe(component.ref)!r}"
    except Exception:  # noqa: BLE001 - a metric given directly (tests, mt evaluate's own): its function names it
        pass
    return f"metric {name!r} ({where}) of task {getattr(task, 'id', task)!r}"


def _score(value: Any, name: str, function: Callable[..., Any], task: Any) -> float:
    """``value`` as a float: a number (Python's or numpy's, a one-element array or tensor); a MetricError otherwise."""
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":  # numpy 2: float() takes 0-d arrays only
        value = value.reshape(()).item()
    if not isinstance(value, (bool, np.bool_, str, bytes)) and hasattr(value, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            pass
    shape = getattr(value, "shape", None)
    what = f"{type(value).__name__} of shape {tuple(shape)}" if shape is not None else f"{type(value).__name__} {_short(repr(value))}"
    raise MetricError(f"{_whose(name, function, task)} returned {what}; a metric returns one number, a float "
                      "(function(predictions, references, task) -> float, see docs/hooks.md): fix that function")


def aggregate(metrics: Mapping[str, float], tasks: Iterable[Any], weights: Mapping[str, float] | None = None) -> float:
    """(Weighted) mean of each task's main metric; a lower-is-better one (``mse``) counts negated."""
    from mtcore.plugins import lower_is_better

    total, weight_sum = 0.0, 0.0
    for task in tasks:
        key = f"{task.id}/{task.main}"
        if key not in metrics or math.isnan(metrics[key]):
            continue
        weight = float((weights or {}).get(task.id, (weights or {}).get(task.name, 1.0)))
        value = -metrics[key] if lower_is_better(task.main, getattr(task, "metric_owner", None)) else metrics[key]
        total += weight * value
        weight_sum += weight
    return total / weight_sum if weight_sum else float("nan")
