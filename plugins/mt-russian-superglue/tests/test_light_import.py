"""Importing the package and its plugin modules pulls in no heavy library."""

from __future__ import annotations

from mtcore.testing.checks import import_report

MODULES = ("mt_russian_superglue", "mt_russian_superglue.plugin", "mt_russian_superglue.tasks", "mt_russian_superglue.preprocess",
           "mt_russian_superglue.nested")


def test_plugin_modules_import_nothing_heavy():
    assert import_report(MODULES, "mt_russian_superglue.plugin") == {"heavy": [], "tasks": 9}
