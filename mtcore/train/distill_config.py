"""The ``distill`` section of the training config: knowledge distillation from trained teachers.

::

    distill:
      teacher: runs/multi          # one teacher for every task of the run it has a head for ...
      teachers: {rsg:terra: runs/terra}   # ... and/or a teacher per task (these win over ``teacher``)
      teacher_weight: 0.5          # the teacher's share of each distilled task's loss, in [0, 1]
      temperature: 1.0             # softens both distributions (classification kinds); the KD term is scaled by T^2
      anneal: false                # true: the teacher's share falls linearly to 0 by the last step (BAM!'s teacher annealing)

A teacher is what ``mt predict`` takes: a run folder, its ``model/`` or a checkpoint. See :mod:`mtcore.train.distill`.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from mtcore.train.config_section import Section


class DistillConfig(Section):
    """Knowledge distillation: each distilled task's loss is ``(1 - w) * gold + w * KD`` against its teacher's outputs."""

    teacher: str | None = None
    teachers: dict[str, str] = Field(default_factory=dict)
    teacher_weight: float = Field(0.5, ge=0, le=1)
    temperature: float = Field(1.0, gt=0, le=100)
    anneal: bool = False

    @model_validator(mode="after")
    def _some_teacher(self) -> DistillConfig:
        if self.teacher is None and not self.teachers:
            raise ValueError("give 'distill.teacher' (a trained run or model for every task it has) or 'distill.teachers' "
                             "({task: run or model}); or remove the distill section")
        return self

