"""Helpers for tests and plugin authors: tiny offline encoders, plugin checks, smoke trainings.

Importing this package is cheap; the heavy helpers are reached lazily (PEP 562).

* :func:`build_tiny_encoder` — a tiny randomly initialised encoder and tokenizer, written offline;
* :func:`check_plugin` / :func:`assert_plugin_valid` / :func:`check_task` / :func:`assert_task_valid`
  — validate a plugin's task specs and components (:mod:`mtcore.testing.checks`);
* :func:`check_sample` — read and validate a task's shipped sample through the real pipeline;
* :func:`smoke_train` — a few training steps through the real engine (:mod:`mtcore.testing.smoke`);
* ``mtcore.testing.pytest_plugin`` — fixtures (``tiny_encoder``, ...) for plugin test suites.
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

from mtcore.testing.tiny import ARCHITECTURES, build_tiny_encoder

_LAZY = {
    "CheckReport": "mtcore.testing.checks",
    "Problem": "mtcore.testing.checks",
    "PluginCheckError": "mtcore.testing.checks",
    "check_plugin": "mtcore.testing.checks",
    "check_task": "mtcore.testing.checks",
    "assert_plugin_valid": "mtcore.testing.checks",
    "assert_task_valid": "mtcore.testing.checks",
    "heavy_imports": "mtcore.testing.checks",
    "import_report": "mtcore.testing.checks",
    "check_sample": "mtcore.testing.sample_check",
    "SmokeResult": "mtcore.testing.smoke",
    "smoke_config": "mtcore.testing.smoke",
    "smoke_train": "mtcore.testing.smoke",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = ["ARCHITECTURES", "build_tiny_encoder", *_LAZY]
