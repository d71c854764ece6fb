"""mtcore entry point ``rsg``: registers the Russian SuperGLUE tasks and the ``rsg`` writer.

Imports nothing heavy: tasks are plain data, the loaders and the writer are lazy references.
"""

from __future__ import annotations

from mtcore.hookspecs import hookimpl

from mt_russian_superglue.tasks import build_tasks


@hookimpl
def mt_register_tasks(register):  # type: ignore[no-untyped-def]
    """Register danetqa, terra, parus, rcb, lidirus, russe, rwsd, muserc and rucos (ids ``rsg:<name>``)."""
    for task in build_tasks():
        register(task)


@hookimpl
def mt_register_writers(register):  # type: ignore[no-untyped-def]
    """Register the ``rsg`` writer: one official ``<Task>.jsonl`` submission file per task."""
    register("rsg", "mt_russian_superglue.submission:write_rsg", "Russian SuperGLUE submission files")


@hookimpl
def mt_register_metrics(register):  # type: ignore[no-untyped-def]
    """Register MuSeRC's ``muserc_em`` (every answer of a question right) and ``muserc_score`` (mean of F1a and EM),
    and RuCoS's ``rucos_f1`` and ``rucos_em`` (SQuAD's scores with the official RuCoS normalisation: articles kept)."""
    register("muserc_em", "mt_russian_superglue.metrics:muserc_em", "share of questions with every answer right (MuSeRC's EM)",
             kinds=("pair_classification",))
    register("muserc_score", "mt_russian_superglue.metrics:muserc_score", "mean of F1a and EM (MuSeRC's leaderboard pair)",
             kinds=("pair_classification",))
    register("rucos_f1", "mt_russian_superglue.metrics:rucos_f1", "best token F1 against the gold entities (RuCoS's script: no article removal)",
             kinds=("extractive_qa",))
    register("rucos_em", "mt_russian_superglue.metrics:rucos_em", "share of answers equal to a gold entity (RuCoS's script: no article removal)",
             kinds=("extractive_qa",))
