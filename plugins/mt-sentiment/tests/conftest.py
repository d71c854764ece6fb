"""Fixtures: the installed registry, a task's source read as mtcore reads it, a tiny encoder that
knows this plugin's sample words (see mtcore.testing.pytest_plugin.plugin_test_fixtures)."""

from __future__ import annotations

from mtcore.testing.pytest_plugin import plugin_test_fixtures

registry, read_source, tiny_encoder = plugin_test_fixtures("mt_sentiment")
