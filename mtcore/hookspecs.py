"""The plugin contract: every hook a plugin can implement.

A plugin is a Python distribution with an entry point in the group ``mtcore``::

    [project.entry-points.mtcore]
    myplugin = "my_package.plugin"      # the name before "=" is the plugin's short name

The module it names defines functions decorated with :data:`hookimpl`. Each hook receives a
``register`` callback and calls it once per thing it provides. Plugin modules must import
nothing heavy (no torch, transformers or datasets): hooks register plain data and lazy
``"module:attr"`` references that mtcore imports only when the thing is used. An implementation
may leave out arguments it does not use (``def mt_register_tasks(register)``).

What plugin ``p`` registers as ``name`` gets the qualified id ``p:name``: tasks, heads, samplers,
loss strategies, metrics and writers alike. A bare ``name`` works only while one plugin provides
it. Reusing a name that mtcore or another plugin registers loads, but makes the bare name
ambiguous, so every config and task that names it bare fails: pick names of your own.
mtcore's built-in heads, samplers, loss strategies, metrics and writers are registered through
these same hooks by ``mtcore.builtin_plugin`` (plugin ``mtcore``).

Every component hook's ``register`` takes ``name`` (a string without ``":"``), ``factory`` (the
class or function, or its ``"module:attr"`` reference), a ``description`` string, and only the
keywords its hook lists below; any other keyword fails the plugin at load.
"""

from __future__ import annotations

import pluggy

PROJECT = "mtcore"

#: Decorator for hook specifications (used only in this module).
hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorator for plugin implementations: ``@hookimpl def mt_register_tasks(register): ...``
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mt_register_tasks(register):  # type: ignore[no-untyped-def]
    """Register the plugin's tasks.

    :param register: call ``register(task)`` with a :class:`mtcore.task.Task` for each task.
        The task's qualified id becomes ``<plugin>:<task.name>``.

    Example::

        @hookimpl
        def mt_register_tasks(register):
            register(Task(name="toxic", kind="text_classification", labels=("ok", "toxic"),
                          inputs={"text": "comment"},
                          sources={"sample": Source.sample("my_package.data", "jsonl", {"train": "train.jsonl"})}))
    """


@hookspec
def mt_register_heads(register):  # type: ignore[no-untyped-def]
    """Register head types that tasks can name in ``head:``.

    :param register: call ``register(name, factory, description="", kinds=())``. ``factory`` is
        a :class:`mtcore.model.heads.base.Head` subclass or a ``"module:Class"`` reference to
        one; ``kinds`` lists the task kinds it serves (empty: any).

    Example::

        @hookimpl
        def mt_register_heads(register):
            register("attention_pool", "my_package.heads:AttentionPoolHead", "attention pooling + MLP",
                     kinds=("text_classification", "pair_classification"))
    """


@hookspec
def mt_register_samplers(register):  # type: ignore[no-untyped-def]
    """Register task samplers that configs can name in ``sampler.name``.

    :param register: call ``register(name, factory, description="")`` with a
        :class:`mtcore.sampling.base.Sampler` subclass or a ``"module:Class"`` reference.

    Example::

        @hookimpl
        def mt_register_samplers(register):
            register("curriculum", "my_package.sampling:CurriculumSampler", "small tasks first")
    """


@hookspec
def mt_register_loss_strategies(register):  # type: ignore[no-untyped-def]
    """Register ways of combining task losses that configs can name in ``loss.strategy``.

    :param register: call ``register(name, factory, description="")`` with a
        :class:`mtcore.train.losses.LossStrategy` subclass or a ``"module:Class"`` reference.

    Example::

        @hookimpl
        def mt_register_loss_strategies(register):
            register("geometric", "my_package.losses:GeometricLoss", "geometric mean of the task losses")
    """


@hookspec
def mt_register_metrics(register):  # type: ignore[no-untyped-def]
    """Register metrics that tasks can list in ``metrics``.

    :param register: call ``register(name, factory, description="", kinds=(), lower_is_better=False)``;
        ``factory`` is the function or its ``"module:func"`` reference; ``kinds`` lists the task kinds
        it scores (empty: any); ``lower_is_better=True`` for an error (MSE, MAE): the best is the smallest. The function is called as ``function(predictions, references, task)`` and
        returns a number. Predictions and references are numpy arrays of class ids (or values,
        for regression; 0/1 rows for multi-label), lists of per-example tag-id arrays for token
        classification, and for extractive QA lists of texts: the predicted answer, and the list
        of gold answers, per question. Two keywords go only to a function with a parameter of
        that name: ``idx``, the rows' ids in the order of the predictions (None where a row has
        none, and for extractive QA), to score groups of rows (MuSeRC's exact match is one
        question's answers all right); ``null_answers``, for an extractive-QA task with
        ``no_answer`` each question's best span text and null score diff, None otherwise.

    Example::

        @hookimpl
        def mt_register_metrics(register):
            register("balanced_accuracy", "my_package.metrics:balanced_accuracy", "mean recall over classes",
                     kinds=("text_classification", "pair_classification"))
    """


@hookspec
def mt_register_writers(register):  # type: ignore[no-untyped-def]
    """Register prediction file formats for ``mt predict --format NAME``.

    :param register: call ``register(name, factory, description="", needs_ids=True)``;
        ``factory`` is the function or its ``"module:func"`` reference. ``needs_ids`` (default
        True for a plugin's writer) says it writes submission files keyed by the rows' ids, so
        ``mt predict`` warns when the rows had no ids (it numbers them) or come from a plugin's
        shipped sample; pass False for a writer of any rows. The function is called as
        ``function(task, rows, output_path)``, where ``rows`` is a list of dicts with ``idx``,
        ``label`` (stored form), ``probabilities`` (per class; for token classification a list
        per word, None for a word cut by truncation; None for regression and extractive QA) and
        the kind's extra fields (extractive QA: ``answer_start``, ``score``, ...), writes the
        file(s) and returns the list of paths written.

    Example::

        @hookimpl
        def mt_register_writers(register):
            register("toxic_tsv", "my_package.submission:write_tsv", "the shared task's TSV submission file")
    """
