"""Importing the package and its plugin modules pulls in no heavy library."""

from __future__ import annotations

from mtcore.testing.checks import import_report

MODULES = ("mt_sentiment", "mt_sentiment.plugin", "mt_sentiment.tasks")


def test_plugin_modules_import_nothing_heavy():
    assert import_report(MODULES, "mt_sentiment.plugin") == {"heavy": [], "tasks": 3}
