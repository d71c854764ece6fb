"""Meta-tests in the datasette style: every hook is documented and exercised by a test."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from clitools import run_mt
from mtcore import hookspecs
from mtcore.plugins import HOOK_NAMES

ROOT = Path(__file__).resolve().parents[1]
SPECS = [name for name, obj in vars(hookspecs).items() if name.startswith("mt_") and callable(obj)]


def test_every_hook_spec_is_known_to_the_loader():
    assert sorted(SPECS) == sorted(HOOK_NAMES)


def test_every_hook_has_a_docstring_with_an_example_and_a_section_in_docs():
    docs = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    for name in SPECS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert ":param register:" in doc and "Example" in doc, name
        assert f"## `{name}(register)`" in docs, name


def test_every_hook_is_implemented_by_a_test_fixture_plugin_and_registers(fixture_plugins):
    fixture_sources = "\n".join(p.read_text() for p in (ROOT / "tests" / "fixtures" / "plugins").rglob("plugin.py"))
    for name in SPECS:
        assert f"def {name}(" in fixture_sources, name
    rows = json.loads(run_mt("components", "--json", plugin_path=fixture_plugins, env={"MT_LOAD_PLUGINS": "full"}).stdout)
    registered = {(r["kind"], r["id"]) for r in rows}
    for kind, name in [("head", "echo_head"), ("sampler", "first_task"), ("loss", "halved"), ("metric", "always_one"), ("writer", "lines")]:
        assert (kind, f"full:{name}") in registered
    tasks = json.loads(run_mt("list-tasks", "--json", plugin_path=fixture_plugins, env={"MT_LOAD_PLUGINS": "full"}).stdout)
    assert [t["id"] for t in tasks] == ["full:echo"]


def test_every_hook_is_used_end_to_end_by_a_third_party_plugin():
    """tests/authoring/test_every_hook.py installs a plugin implementing every hook with real
    components and trains, evaluates and writes predictions with them."""
    source = (ROOT / "tests" / "authoring" / "test_every_hook.py").read_text(encoding="utf-8")
    for name in SPECS:
        assert f"def {name}(" in source, name
    tutorial = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    assert "(hooks.md)" in tutorial
