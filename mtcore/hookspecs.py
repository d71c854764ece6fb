"""The plugin contract: every hook a plugin can implement.

A plugin is a Python distribution with an entry point in the group ``mtcore``::

    [project.entry-points.mtcore]
    myplugin = "my_package.plugin"      # the name before "=" is the plugin's short name

The module it names defines functions decorated with :data:`hookimpl`. Each hook receives a
``register`` callback and calls it once per thing it provides. Plugin modules must import
nothing heavy (no torch, transformers or datasets): hooks register plain data and lazy
``"module:attr"`` references that mtcore imports only when the thing is used. An implementation
may leave out arguments it does not use (``def mt_register_tasks(register)``).

Tasks registered by plugin ``p`` get the qualified id ``p:name``. mtcore's built-in heads,
samplers, loss strategies and metrics are registered through these same hooks by
``mtcore.builtin_plugin``.
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
            register(Task(name="terra", kind="pair_classification", labels=("entailment", "not_entailment"),
                          inputs={"text": "premise", "text_pair": "hypothesis"},
                          sources={"sample": Source.sample("my_pkg.data", "jsonl", {"train": "train.jsonl"})}))
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
            register("attention_pool", "my_pkg.heads:AttentionPoolHead", "attention pooling + MLP",
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
            register("curriculum", "my_pkg.sampling:CurriculumSampler", "small tasks first")
    """


@hookspec
def mt_register_loss_strategies(register):  # type: ignore[no-untyped-def]
    """Register ways of combining task losses that configs can name in ``loss.strategy``.

    :param register: call ``register(name, factory, description="")`` with a
        :class:`mtcore.train.losses.LossStrategy` subclass or a ``"module:Class"`` reference.

    Example::

        @hookimpl
        def mt_register_loss_strategies(register):
            register("dwa", "my_pkg.losses:DynamicWeightAverage", "dynamic weight average")
    """


@hookspec
def mt_register_metrics(register):  # type: ignore[no-untyped-def]
    """Register metrics that tasks can list in ``metrics``.

    :param register: call ``register(name, function, description="")``; ``function`` (or its
        ``"module:func"`` reference) is called as ``function(predictions, references, task)`` on
        numpy arrays of class ids (or values) and returns a float. A metric with a parameter
        ``idx`` is also given the rows' ids, in the order of the predictions, to score groups of
        rows (``function(predictions, references, task, idx=[...])``: MuSeRC's exact match is one
        question's answers all right).

    Example::

        @hookimpl
        def mt_register_metrics(register):
            register("balanced_accuracy", "my_pkg.metrics:balanced_accuracy")
    """


@hookspec
def mt_register_writers(register):  # type: ignore[no-untyped-def]
    """Register prediction file formats for ``mt predict --format NAME``.

    :param register: call ``register(name, function, description="")``; ``function`` (or its
        ``"module:func"`` reference) is called as ``function(task, rows, output_path)`` where
        ``rows`` is a list of dicts with ``idx``, ``label`` (stored form) and ``probabilities``
        (per class; for token classification a list per word, None for a word cut by
        truncation), and writes the file(s). It returns the list of paths written.

    Example::

        @hookimpl
        def mt_register_writers(register):
            register("rsg", "my_pkg.submission:write_rsg", "Russian SuperGLUE submission files")
    """
