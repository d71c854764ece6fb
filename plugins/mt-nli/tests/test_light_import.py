"""Importing the package and its plugin modules pulls in no heavy library."""

from __future__ import annotations

from mtcore.testing.checks import import_report

MODULES = ("mt_nli", "mt_nli.plugin", "mt_nli.tasks", "mt_nli.augment")


def test_plugin_modules_import_nothing_heavy():
    assert import_report(MODULES, "mt_nli.plugin") == {"heavy": [], "tasks": 4}
