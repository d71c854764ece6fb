"""mtcore entry point ``sentiment``: registers mokoron, rusentiment and sentiment.

Imports nothing heavy: tasks are plain data, loaders are lazy ``"module:func"`` references.
"""

from __future__ import annotations

from mtcore.hookspecs import hookimpl

from mt_sentiment.tasks import build_tasks


@hookimpl
def mt_register_tasks(register):  # type: ignore[no-untyped-def]
    """Register the sentiment tasks (ids ``sentiment:<name>``)."""
    for task in build_tasks():
        register(task)
