"""mtcore entry point ``nli``: registers xnli-ru, headline-cause-simple, headline-cause-full and nli.

Imports nothing heavy: tasks are plain data, loaders are lazy ``"module:func"`` references.
"""

from __future__ import annotations

from mtcore.hookspecs import hookimpl

from mt_nli.tasks import build_tasks


@hookimpl
def mt_register_tasks(register):  # type: ignore[no-untyped-def]
    """Register the NLI tasks (ids ``nli:<name>``)."""
    for task in build_tasks():
        register(task)
