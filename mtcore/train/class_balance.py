"""``head_options: {class_weights: balanced}``: class weights from the train split's labels, as scikit-learn's
``class_weight="balanced"``: ``n / (K * n_c)`` for a class of ``n_c`` of the ``n`` labelled items (rows, or tags of a
token task) among ``K`` classes; a class absent from train weighs 1. The head is built unweighted
(:mod:`mtcore.model.heads.factory`), then gets the weights once the data is read; the model's manifest records them,
so a saved model reloads with them (``mtcore.json``: the list, not ``balanced``)."""

from __future__ import annotations

from typing import Any


def balanced_weights(counts: list[int]) -> list[float]:
    """``n / (K * n_c)`` per class, ``K`` the classes with an item (scikit-learn's ``compute_class_weight("balanced")``
    over the classes present); 1 for a class with no item."""
    total, k = sum(counts), sum(1 for n in counts if n)
    return [total / (k * n) if n else 1.0 for n in counts]


def balanced_class_weights(planned: list[Any], train_data: dict[str, Any]) -> dict[str, list[float]]:
    """The weights of every task of ``planned`` whose head options ask for ``class_weights: balanced``."""
    return {p.id: balanced_weights(train_data[p.id].label_counts("train")) for p in planned
            if (p.task.head_options or {}).get("class_weights") == "balanced"}


#: The classes a note on balanced weights names (10,000 labels made a 122,000-character line).
NOTE_CLASSES = 10


def balanced_note(task: Any, weights: list[float]) -> str:
    shown = ", ".join(f"{label} {weight:.3g}" for label, weight in list(zip(task.labels, weights))[:NOTE_CLASSES])
    more = (f", ... ({len(weights) - NOTE_CLASSES} more, from {min(weights):.3g} to {max(weights):.3g}; all in the saved model's "
            "head options)") if len(weights) > NOTE_CLASSES else ""
    return f"task {task.id!r}: class_weights balanced from its train labels: {shown}{more}"


def apply_balanced_weights(model: Any, planned: list[Any], train_data: dict[str, Any]) -> list[str]:
    """Give every head whose task asks for ``class_weights: balanced`` its weights; returns notes saying which."""
    import torch

    notes = []
    tasks = {p.id: p.task for p in planned}
    for task_id, weights in balanced_class_weights(planned, train_data).items():
        head = model.heads[task_id]
        head.class_weights = torch.tensor(weights, dtype=torch.float32, device=next(head.parameters()).device)
        model.tasks[task_id]["head_options"] = {**model.tasks[task_id].get("head_options", {}), "class_weights": weights}
        notes.append(balanced_note(tasks[task_id], weights))
    return notes
