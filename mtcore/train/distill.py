"""Knowledge distillation: a distilled task's loss mixes the labels' with its teacher's (config section ``distill``).

For a task with a teacher (:mod:`mtcore.train.teachers`), each training batch also runs through the teacher (evaluation
mode, no gradients, the same token ids), and the task's loss becomes ``(1 - w) * gold + w * KD``: ``gold`` is the head's
own loss (label smoothing and class weights included), ``w`` is ``distill.teacher_weight`` (with ``distill.anneal``
falling linearly from it at the first step to 0 at the last: BAM!'s teacher annealing, Clark et al. 2019), and ``KD``
compares the student's outputs with the teacher's over the same labelled items the gold loss is a mean over (so
:mod:`mtcore.train.step_weights` still makes each step's loss the mean over its items):

* single-label kinds (text and pair classification, multiple choice, token classification): ``T² · KL(p_t || p_s)`` of
  the softmax distributions at temperature ``T`` (Hinton et al. 2015), weighed by the head's class weights as the gold
  loss is; with ``w = 1`` and ``T = 1`` this is training on the teacher's soft labels (MT-DNN's distillation);
* multi-label: the same per label, of the two-class (sigmoid) distributions;
* extractive QA: the mean of the start and end distributions' over the tokens;
* regression: the squared difference of the predictions (the temperature does not apply).

The logged training loss of a distilled task is this mixed loss; evaluation scores the student alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from mtcore.model.heads.losses import masked_mean

#: Logits are clamped from below before they are divided by the temperature: stand-ins (padded choices, padding tokens)
#: carry the dtype's lowest value, which a temperature below 1 would take to -inf (and the divergence to NaN).
LOWEST_LOGIT = -1e4


class Distiller:
    """Each distilled task's loss, from the student's output and its teacher's (see the module docstring)."""

    def __init__(self, teachers: Mapping[str, Any], kinds: Mapping[str, str], class_weights: Mapping[str, Any], *,
                 teacher_weight: float, temperature: float, anneal: bool, total_steps: int) -> None:
        self.teachers, self.kinds, self.class_weights = dict(teachers), dict(kinds), dict(class_weights)
        self.teacher_weight, self.temperature, self.anneal, self.total_steps = teacher_weight, temperature, anneal, total_steps

    def share(self, step: int) -> float:
        """The teacher's share of the loss at optimizer step ``step`` (1-based)."""
        if not self.anneal or self.total_steps <= 1:
            return self.teacher_weight
        return self.teacher_weight * max(self.total_steps - step, 0) / (self.total_steps - 1)

    def loss(self, task: str, output: Any, inputs: Mapping[str, Any], step: int) -> torch.Tensor:
        """The loss of ``task``'s batch (``inputs``, the student's ``output``) at ``step``: the gold loss when it has no teacher."""
        teacher, share = self.teachers.get(task), self.share(step)
        labels = inputs.get("labels") if isinstance(inputs, Mapping) else None
        if teacher is None or share == 0 or labels is None:
            return output.loss
        with torch.no_grad():
            taught = teacher(task, **{k: v for k, v in inputs.items() if k != "labels"}).logits
        kd = distillation_loss(self.kinds[task], output.logits, taught, labels, temperature=self.temperature,
                               class_weights=self.class_weights.get(task))
        return kd if share == 1 else (1 - share) * output.loss + share * kd


def task_loss(model: Any, task: str, inputs: Any, distiller: Distiller | None, step: int, r3f: Any = None) -> torch.Tensor:
    """The training loss of one batch of ``task``: the model's, mixed with the teacher's when ``distiller`` has one, plus
    the R3F term with ``loss.r3f`` (:mod:`mtcore.train.regularization`)."""
    output = model(task, **inputs)
    loss = output.loss if distiller is None else distiller.loss(task, output, inputs, step)
    return loss if r3f is None else loss + r3f.term(task, inputs, output)


def _divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(teacher / T) || softmax(student / T))`` over the last dimension, one value per row."""
    s = F.log_softmax(student.float().clamp(min=LOWEST_LOGIT) / temperature, dim=-1)
    t = F.log_softmax(teacher.float().clamp(min=LOWEST_LOGIT) / temperature, dim=-1)
    return F.kl_div(s, t, reduction="none", log_target=True).sum(-1)


def distillation_loss(kind: str, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, *, temperature: float = 1.0,
                      class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The KD term of one batch (see the module docstring): a mean over the items ``labels`` marks as labelled."""
    scale = temperature ** 2
    if kind == "regression":
        labelled = ~torch.isnan(labels.reshape(student.shape).float())
        return masked_mean((student.float() - teacher.float().reshape(student.shape)) ** 2, labelled, training=True)
    if kind == "multi_label":
        labelled = labels.reshape(student.shape) >= 0  # NaN: no label
        pairs = [torch.stack([torch.zeros_like(x), x.float().clamp(min=LOWEST_LOGIT)], dim=-1) for x in (student, teacher)]
        return masked_mean(scale * _divergence(pairs[0], pairs[1], temperature), labelled, training=True)
    if kind == "extractive_qa":
        labelled = labels.reshape(-1, 2)[:, 0] >= 0
        start = _divergence(student[..., 0], teacher[..., 0], temperature)
        end = _divergence(student[..., 1], teacher[..., 1], temperature)
        return masked_mean(scale * (start + end) / 2, labelled, training=True)
    classes = student.shape[-1]
    if kind == "masked_lm":  # the head's scores are the masked tokens' only, one row each (R3F; never distilled)
        per_token = scale * _divergence(student.reshape(-1, classes), teacher.reshape(-1, classes), temperature)
        return masked_mean(per_token, torch.ones_like(per_token, dtype=torch.bool), training=True)
    flat = labels.reshape(-1).long()
    per_item = scale * _divergence(student.reshape(-1, classes), teacher.reshape(-1, classes), temperature)
    weights = None if class_weights is None else class_weights.to(per_item.dtype)[flat.clamp(min=0)]
    return masked_mean(per_item if weights is None else per_item * weights, flat >= 0, training=True, item_weights=weights)


def build_distiller(config: Any, teachers: Mapping[str, Any], tasks: Mapping[str, Any], model: Any, total_steps: int
                    ) -> Distiller | None:
    """The run's :class:`Distiller` (None without teachers): ``tasks`` by id, ``model`` the student (its heads' class weights,
    on its device)."""
    from mtcore.train.evaluation import head_class_weights

    if not teachers:
        return None
    d, device = config.distill, next(model.parameters()).device
    weights = {t: head_class_weights(model, t) for t in teachers}  # on the model's device once: no copy per step
    return Distiller(teachers, {t: tasks[t].kind.value for t in teachers}, {t: w.to(device) for t, w in weights.items() if w is not None},
                     teacher_weight=d.teacher_weight, temperature=d.temperature, anneal=d.anneal, total_steps=total_steps)
