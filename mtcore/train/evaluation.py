"""Evaluation: deterministic predictions on a split, official metrics keyed by task.

* ``model.eval()`` and ``torch.no_grad()``: no dropout, nothing random; rows are read in a fixed
  order (each process takes rows ``rank, rank + W, ...``, batched longest first for less
  padding), then gathered and put back in row order, so every process computes the same metrics.
* Every process runs the same number of forward calls (short shards repeat their last batch,
  results dropped), which FSDP and DDP's buffer broadcasts need.
* Metrics are keyed ``<task id>/<metric>`` (plus ``<task id>/loss``), never shared between tasks.
* Rows without a label (``-1``, all ``-100``, NaN, all ``-1.0``) are left out of the metrics and
  the loss, also in batches that mix them with labelled rows (a partly labelled ``test`` split):
  the loss is the mean over the labelled rows, whatever the batches.
* Token classification scores every word of a row, also those ``max_length`` cut off and those
  that are no token (the ``cut_labels``, ``unseen_labels`` and ``unseen_words`` columns of :mod:`mtcore.data.tokenize`): they
  join the row's references in their places (the cut ones at its end, a word that is no token where it stands, so
  the entities around it are the sentence's), predicted as the task's ``"O"`` label (:func:`outside_id`; -1, never right, when
  it has none). So they count as errors where their tag is not ``O`` and their entities as
  missed; the loss stays over the tokens the model saw.
* Extractive QA decodes each window's best context span (:func:`mtcore.data.answers.best_span`),
  keeps the best-scoring window of each example and scores its text against the example's gold
  answers, also for examples whose answer is in no window.
* Multiple-choice rows with different numbers of choices share batches (the collator pads the
  choices, the model masks the padding out): predictions, metrics and loss are each row's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from mtcore.train.metrics import compute_metrics


def predictions_from_logits(kind: str, logits: torch.Tensor) -> np.ndarray:
    """Class ids / values / indicator rows from a head's logits, per example."""
    logits = logits.detach().float()
    if kind == "regression":
        return logits.reshape(logits.shape[0], -1)[:, 0].cpu().numpy()
    if kind == "multi_label":
        return (logits > 0).long().cpu().numpy()
    return logits.argmax(-1).cpu().numpy()


def probabilities_from_logits(kind: str, logits: torch.Tensor) -> np.ndarray:
    """Per-class probabilities (softmax; sigmoid for multi-label; the value for regression)."""
    logits = logits.detach().float()
    if kind == "regression":
        return logits.reshape(logits.shape[0], -1)[:, :1].cpu().numpy()
    if kind == "multi_label":
        return torch.sigmoid(logits).cpu().numpy()
    return torch.softmax(logits, dim=-1).cpu().numpy()


def _labelled(kind: str, reference: np.ndarray) -> bool:
    if kind == "extractive_qa":  # [1]: the row has gold answers (scored even when max_length cut them off)
        return bool(reference[0] >= 0)
    if kind == "regression":
        return bool(np.all(np.isfinite(reference)))
    if kind in ("token_classification", "masked_lm"):
        return bool(np.any(reference >= 0))
    return bool(np.all(reference >= 0))


def labelled_items(kind: str, labels: torch.Tensor, class_weights: torch.Tensor | None = None) -> float:
    """What a batch's loss is the mean over: its labelled rows, tokens or (multi-label) row-label pairs; with a head's
    ``class_weights`` (the loss is then a weighted mean, as ``cross_entropy(weight=)``'s) the sum of its items' weights,
    so that batches of one step (or evaluation) add up to the weighted mean over all their items."""
    if kind == "regression":
        return int((~torch.isnan(labels.float())).sum())
    if kind == "extractive_qa":
        return int((labels[:, 0] >= 0).sum())
    if class_weights is not None and kind != "multi_label":
        labelled = labels[labels >= 0].long()
        return float(class_weights.to(labelled.device)[labelled].double().sum())
    return int((labels >= 0).sum())


def head_class_weights(model: torch.nn.Module, task_id: str) -> torch.Tensor | None:
    """The ``class_weights`` of ``task_id``'s head (on the CPU), or None."""
    heads = getattr(getattr(model, "module", model), "heads", None)  # DDP wraps the model
    weights = getattr(heads[task_id], "class_weights", None) if heads is not None and task_id in heads else None
    return weights.detach().cpu() if isinstance(weights, torch.Tensor) else None


def _no_labels(kind: str, predictions: np.ndarray) -> np.ndarray:
    """References meaning "no label" for a batch without labels, in the shape and marker :func:`_labelled` reads."""
    if kind == "regression":
        return np.full(len(predictions), np.nan)
    if kind == "token_classification":
        return np.full(np.shape(predictions), -100)
    if kind == "multi_label":
        return np.full(np.shape(predictions), -1)
    return np.full(len(predictions), -1)


def outside_id(task: Any) -> int:
    """The prediction scored for words cut off by ``max_length``: the id of the task's ``"O"`` label,
    else -1 (no class: never right; :func:`~mtcore.train.metrics.f1_entity` reads it as ``O``)."""
    labels = list(getattr(task, "labels", ()) or ())
    return labels.index("O") if "O" in labels else -1


def words_left_out(rows: Any) -> list[tuple[list[int], list[int], list[int]]] | None:
    """Each row's words the model never sees, scored as predicted ``O``: ``(the numbers of the words that are no
    token, their tags, the tags of those max_length cut off at the end)``; None when ``rows`` (a tokenized ``Dataset``
    or a list of row dicts) has no such columns."""
    from mtcore.data.tokenize import CUT_COLUMN, UNSEEN_COLUMN, UNSEEN_WORDS_COLUMN

    names = getattr(rows, "column_names", None)
    if names is not None:
        if CUT_COLUMN not in names:
            return None
        table = rows.with_format("arrow")
        empty = [[] for _ in range(len(rows))]
        columns = [table[name].to_pylist() if name in names else empty for name in (UNSEEN_WORDS_COLUMN, UNSEEN_COLUMN, CUT_COLUMN)]
        return [(list(w or []), list(u or []), list(c or [])) for w, u, c in zip(*columns)]
    if not rows or not all(isinstance(row, Mapping) for row in rows):
        return None
    return [(list(row.get(UNSEEN_WORDS_COLUMN) or []), list(row.get(UNSEEN_COLUMN) or []), list(row.get(CUT_COLUMN) or []))
            for row in rows]


def with_cut_words(results: list[tuple[int, np.ndarray, np.ndarray]], task: Any, rows: Any
                   ) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(row, prediction, reference)`` with each row's words the model never saw put back: the reference gets
    their tags, the prediction :func:`outside_id`; a word that is no token goes in at its own place (the row's
    references become one per word), those ``max_length`` cut off at the end."""
    left_out = words_left_out(rows)
    if not left_out or not any(unseen or cut for _, unseen, cut in left_out):
        return results
    fill = outside_id(task)
    out = []
    for row, pred, ref in results:
        words, unseen, cut = left_out[row]
        if unseen or cut:
            ref, pred = np.asarray(ref, dtype=np.int64), np.asarray(pred, dtype=np.int64)
            seen = ref != -100  # a word's first token
            ref_words, pred_words = list(ref[seen]), list(pred[seen])
            for word, tag in sorted(zip(words, unseen)) if len(words) == len(unseen) else ((len(ref_words), t) for t in unseen):
                ref_words.insert(word, tag)
                pred_words.insert(word, fill)
            pred = np.asarray(pred_words + [fill] * len(cut), dtype=np.int64)
            ref = np.asarray(ref_words + list(cut), dtype=np.int64)
        out.append((row, pred, ref))
    return out


def row_ids(rows: Any, positions: list[int]) -> list[Any]:
    """The ``idx`` of each row at ``positions`` (None where the split has no ids): what group metrics read."""
    if "idx" not in getattr(rows, "column_names", ()):
        return [None] * len(positions)
    column = rows.with_format(None).select(positions)["idx"] if positions else []
    return list(column)


def masked_token_results(rows: Any, logits: torch.Tensor, labels: torch.Tensor | None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """A masked_lm batch's ``(row, prediction, reference)`` triples: per row, each masked token's predicted id and the
    cross-entropy of its true id ``(n, 2)``, and the true ids ``(n,)`` (:mod:`mtcore.train.mlm_metrics`). ``logits`` are the
    masked positions' only, in row-major order (:mod:`mtcore.model.heads.masked_lm`)."""
    if labels is None:
        return [(int(row), np.zeros((0, 2)), np.zeros(0, dtype=np.int64)) for row in rows]
    labels = labels.detach()
    targets = labels[labels >= 0].to(logits.device).long()
    if logits.ndim != 2 or logits.shape[0] != targets.shape[0]:
        raise ValueError(f"a masked_lm head returned logits of shape {tuple(logits.shape)} for {targets.shape[0]} masked tokens; "
                         "return (masked tokens, vocabulary) scores, in the order of labels[labels >= 0]")
    scores = logits.detach().float()
    losses = torch.nn.functional.cross_entropy(scores, targets, reduction="none")
    scored = torch.stack([scores.argmax(-1).double(), losses.double()], dim=1).cpu().numpy()
    truth = targets.cpu().numpy()
    bounds = np.cumsum([0, *(labels >= 0).sum(-1).tolist()])
    return [(int(row), scored[bounds[j]:bounds[j + 1]], truth[bounds[j]:bounds[j + 1]]) for j, row in enumerate(rows)]


def _shard_order(lengths: np.ndarray, rank: int, world: int) -> np.ndarray:
    shard = np.arange(rank, len(lengths), world)
    return shard[np.argsort(-lengths[shard], kind="stable")]


def _rows_per_rank(n: int, world: int) -> list[int]:
    return [len(range(r, n, world)) for r in range(world)]


@torch.no_grad()
def predict_task(model: torch.nn.Module, task: Any, task_data: Any, split: str, batch_size: int, accelerator: Any
                 ) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], float, int]:
    """This process's ``(row, prediction, reference)`` triples, the loss sum and the labelled-batch count."""
    from mtcore.sampling.protocol import fetch_rows

    kind = task.kind.value
    rows = task_data.splits[split]
    lengths = np.asarray(task_data.lengths(split), dtype=np.int64)
    rank, world = accelerator.process_index, accelerator.num_processes
    order = _shard_order(lengths, rank, world)
    batches_needed = max(math.ceil(n / batch_size) for n in _rows_per_rank(len(lengths), world))
    results: list[tuple[int, np.ndarray, np.ndarray]] = []
    loss_sum, loss_weight = 0.0, 0
    class_weights = head_class_weights(model, task.id)
    from mtcore.predict.predictor import progress_over

    for b in progress_over(range(batches_needed), batches_needed, f"Evaluating {task.id} {split}", show=getattr(accelerator, "is_main_process", True)):
        indices = order[b * batch_size:(b + 1) * batch_size]
        dummy = len(indices) == 0
        if dummy:  # keep the number of forward calls equal on every process
            indices = order[-batch_size:] if len(order) else np.arange(min(batch_size, len(lengths)))
        fetched = fetch_rows(rows, [int(i) for i in indices])
        batch = task_data.collator(fetched)
        batch = batch.to(accelerator.device) if hasattr(batch, "to") else batch
        with accelerator.autocast():
            out = model(task.id, **batch)
        if dummy:
            continue
        labels = batch.get("labels")
        if out.loss is not None and labels is not None:
            weight = labelled_items(kind, labels, class_weights)
            loss_sum += float(out.loss.detach().float()) * weight
            loss_weight += weight
        if kind == "extractive_qa":
            from mtcore.data.answers import decode_spans, max_answer_tokens

            spans = decode_spans(out.logits, fetched, max_answer_tokens(task))
            results.extend((int(row), np.array(span, dtype=np.float64), np.array([1 if fetched[j]["answers"] else -1]))
                           for j, (row, span) in enumerate(zip(indices, spans)))
            continue
        if kind == "masked_lm":
            results.extend(masked_token_results(indices, out.logits, labels))
            continue
        predictions = predictions_from_logits(kind, out.logits)
        references = labels.detach().cpu().numpy() if labels is not None else _no_labels(kind, predictions)
        mask = batch.get("attention_mask")
        kept = mask.sum(-1).tolist() if kind == "token_classification" and mask is not None else None  # one read per batch
        for j, row in enumerate(indices):
            pred, ref = predictions[j], references[j]
            if kept is not None:
                pred, ref = pred[:kept[j]], ref[:kept[j]]
            results.append((int(row), pred, ref))
    return results, loss_sum, loss_weight


def evaluate(model: torch.nn.Module, data: Mapping[str, Any], tasks: Mapping[str, Any], accelerator: Any, *, split: str,
             batch_size: int, metric_fn: Callable[[str], Callable[..., float]], splits: Mapping[str, str] | None = None
             ) -> dict[str, float]:
    """Metrics of every task on ``split`` (``splits``: another split for some tasks):
    ``{"<task>/<metric>": value, "<task>/loss": value}``."""
    from accelerate.utils import gather_object

    was_training, default_split = model.training, split
    model.eval()
    metrics: dict[str, float] = {}
    try:
        for task_id, task_data in data.items():
            task, split = tasks[task_id], (splits or {}).get(task_id, default_split)
            if split not in task_data.splits:
                continue
            try:
                results, loss_sum, loss_weight = predict_task(model, task, task_data, split, batch_size, accelerator)
            except torch.OutOfMemoryError:
                from mtcore.train.monitor import OutOfMemory

                raise OutOfMemory(f"CUDA out of memory while evaluating task {task_id!r} on split {split!r} (batches of {batch_size} "
                                  "examples); lower batching.eval_batch_size (mt evaluate: --batch-size)") from None
            if accelerator.num_processes > 1:
                results = gather_object(results)
                totals = gather_object([(loss_sum, loss_weight)])
                loss_sum, loss_weight = sum(t[0] for t in totals), sum(t[1] for t in totals)
            results.sort(key=lambda item: item[0])
            kind = task.kind.value
            if kind == "token_classification":
                results = with_cut_words(results, task, task_data.splits[split])
            labelled = [(p, r) for _, p, r in results if _labelled(kind, np.asarray(r))]
            if not labelled:
                continue
            null_answers = None  # extractive QA with no_answer: (best span, null score diff) per question
            if kind == "extractive_qa":
                from mtcore.data.qa_decoding import answer_texts

                preds, refs, null_answers = answer_texts(task_data.splits[split], [(row, p) for row, p, r in results if _labelled(kind, r)],
                                                         no_answer=task.no_answer, null_threshold=task.null_threshold)
            elif kind in ("token_classification", "masked_lm"):
                preds: Any = [p for p, _ in labelled]
                refs: Any = [r for _, r in labelled]
            else:
                preds = np.stack([np.asarray(p) for p, _ in labelled])
                refs = np.stack([np.asarray(r) for _, r in labelled])
            positions = [row for row, _, r in results if _labelled(kind, np.asarray(r))]
            ids = None if kind == "extractive_qa" else (lambda: row_ids(task_data.splits[split], positions))
            metrics.update(compute_metrics(task, preds, refs, metric_fn, idx=ids, null_answers=null_answers))
            if loss_weight:
                metrics[f"{task_id}/loss"] = loss_sum / loss_weight
    finally:
        model.train(was_training)
    return metrics
