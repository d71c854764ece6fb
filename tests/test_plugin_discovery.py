"""Discovery through real installed distributions, broken ones included."""

from __future__ import annotations

import json

from clitools import run_mt

PLUGINS = {"rsg": "mt-russian-superglue", "nli": "mt-nli", "sentiment": "mt-sentiment"}


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_plugins_lists_builtins_and_the_three_plugins_as_ok():
    rows = {row["name"]: row for row in _json(run_mt("plugins", "--json"))}
    assert rows["mtcore"]["builtin"] is True and rows["mtcore"]["status"] == "ok"
    assert rows["mtcore"]["components"] > 10
    for name, dist in PLUGINS.items():
        assert rows[name]["distribution"] == dist
        assert rows[name]["status"] == "ok", rows[name]["error"]
        assert rows[name]["tasks"] >= 3
        assert "mt_register_tasks" in rows[name]["hooks"]


def test_list_tasks_json_has_qualified_ids_of_all_three_plugins():
    tasks = _json(run_mt("list-tasks", "--json"))
    plugins = {t["plugin"] for t in tasks}
    assert set(PLUGINS) <= plugins
    for t in tasks:
        assert t["id"] == f"{t['plugin']}:{t['name']}"
        assert {"id", "name", "plugin", "kind", "labels"} <= set(t)
    assert len(tasks) >= 10


def test_list_tasks_filters_by_plugin_and_kind():
    tasks = _json(run_mt("list-tasks", "--json", "--plugin", "rsg"))
    assert tasks and all(t["plugin"] == "rsg" for t in tasks)
    mc = _json(run_mt("list-tasks", "--json", "--kind", "multiple_choice"))
    assert mc and all(t["kind"] == "multiple_choice" for t in mc)
    bad = run_mt("list-tasks", "--kind", "multiple_choise")
    assert bad.returncode == 2
    assert "did you mean 'multiple_choice'" in bad.stderr and "Traceback" not in bad.stderr


def test_broken_plugins_are_reported_in_one_line_each_and_others_keep_working(fixture_plugins):
    result = run_mt("list-tasks", "--json", plugin_path=fixture_plugins)
    assert result.returncode == 0, result.stderr
    ids = {t["id"] for t in json.loads(result.stdout)}
    assert "rsg:terra" in ids and "dupe:terra" in ids and "dupe:only_here" in ids
    # nothing of a plugin that failed half-way is kept
    assert not any(i.startswith(("broken_hook:", "misspelled:", "broken_import:", "undecorated:")) for i in ids)
    assert "full:echo" in ids  # an undecorated mt_* helper is no problem
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    names = ("broken_import", "broken_hook", "misspelled", "undecorated")
    by_plugin = {name: [line for line in lines if f"plugin '{name}'" in line] for name in names}
    assert "mt-fixture-broken-import 0.0.1" in by_plugin["broken_import"][0]
    assert "ModuleNotFoundError" in by_plugin["broken_import"][0]
    # the entry point is right: the line that failed is the plugin's own import, and the fix is to install or declare it
    assert "(at mt_fixture_broken_import/plugin.py:2 in <module>)" in by_plugin["broken_import"][0]
    assert "install 'this_module_does_not_exist_anywhere'" in by_plugin["broken_import"][0]
    assert "pyproject.toml" not in by_plugin["broken_import"][0].split("; install")[0]
    assert "boom inside mt_register_tasks" in by_plugin["broken_hook"][0]
    assert "(at mt_fixture_broken_hook/plugin.py:9 in mt_register_tasks)" in by_plugin["broken_hook"][0]
    assert "unknown hook 'mt_register_task'" in by_plugin["misspelled"][0]
    assert "did you mean 'mt_register_tasks'?" in by_plugin["misspelled"][0]
    assert "'mt_register_tasks' is not decorated with @hookimpl (from mtcore.hookspecs import hookimpl)" in by_plugin["undecorated"][0]
    assert all(len(v) == 1 for v in by_plugin.values()), lines
    clash = [line for line in lines if "mt-fixture-zz-clash" in line]
    assert len(clash) == 1 and "the plugin name 'dupe' is also used by mt-fixture-duplicate, which was loaded instead" in clash[0]
    assert "from_the_clash" not in " ".join(ids)
    assert all(line.startswith("warning: ") for line in lines)
    assert "Traceback" not in result.stderr


def test_mt_debug_prints_each_plugin_failures_traceback(fixture_plugins):
    result = run_mt("list-tasks", plugin_path=fixture_plugins, env={"MT_DEBUG": "1"})
    assert result.returncode == 0
    assert "traceback of plugin 'broken_hook':" in result.stderr
    assert 'mt_fixture_broken_hook/plugin.py", line 9, in mt_register_tasks' in result.stderr
    assert "RuntimeError: boom inside mt_register_tasks" in result.stderr


def test_plugins_table_shows_failures_and_exits_1(fixture_plugins):
    result = run_mt("plugins", "--json", plugin_path=fixture_plugins)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    rows = {}
    for row in json.loads(result.stdout):
        rows.setdefault(row["name"], []).append(row)
    assert rows["broken_import"][0]["status"] == "failed"
    assert rows["broken_hook"][0]["status"] == "failed" and rows["broken_hook"][0]["tasks"] == 0
    assert [(r["distribution"], r["status"]) for r in rows["dupe"]] == [("mt-fixture-duplicate", "ok"), ("mt-fixture-zz-clash", "failed")]
    assert rows["rsg"][0]["status"] == "ok"
    # strict mode: the table is still shown (it is how one finds the culprit), then exit 1
    strict = run_mt("plugins", plugin_path=fixture_plugins, env={"MT_STRICT_PLUGINS": "1"})
    assert strict.returncode == 1 and "broken_hook" in strict.stdout and "MT_STRICT_PLUGINS=1" in strict.stderr


def test_plugin_text_is_shown_as_written_not_as_markup(fixture_plugins):
    result = run_mt("show-task", "full:echo", plugin_path=fixture_plugins)
    assert result.returncode == 0, result.stderr
    assert "[beta]" in result.stdout


def test_strict_mode_makes_a_broken_plugin_fatal(fixture_plugins):
    result = run_mt("list-tasks", plugin_path=fixture_plugins, env={"MT_STRICT_PLUGINS": "1"})
    assert result.returncode == 1
    assert "failed to load" in result.stderr and "MT_STRICT_PLUGINS" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_strict_mode_passes_when_everything_loads():
    assert run_mt("list-tasks", env={"MT_STRICT_PLUGINS": "1"}).returncode == 0


def test_load_plugins_selects_external_plugins(fixture_plugins):
    only_nli = _json(run_mt("plugins", "--json", plugin_path=fixture_plugins, env={"MT_LOAD_PLUGINS": "nli"}))
    assert {r["name"] for r in only_nli} == {"mtcore", "nli"}
    by_dist = _json(run_mt("plugins", "--json", env={"MT_LOAD_PLUGINS": "mt-sentiment, rsg"}))
    assert {r["name"] for r in by_dist} == {"mtcore", "sentiment", "rsg"}
    none = _json(run_mt("list-tasks", "--json", env={"MT_LOAD_PLUGINS": ""}))
    assert none == []


def test_ambiguous_bare_name_lists_every_provider_and_qualified_id_works(fixture_plugins):
    result = run_mt("show-task", "terra", plugin_path=fixture_plugins)
    assert result.returncode == 2
    assert "ambiguous" in result.stderr and "dupe:terra" in result.stderr and "rsg:terra" in result.stderr
    assert run_mt("show-task", "rsg:terra", plugin_path=fixture_plugins).returncode == 0
    unique = run_mt("show-task", "only_here", plugin_path=fixture_plugins)
    assert unique.returncode == 0 and "dupe:only_here" in unique.stdout


def test_unknown_task_gets_did_you_mean():
    result = run_mt("show-task", "rsg:tera")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.startswith("error: unknown task 'rsg:tera' (did you mean 'rsg:terra'") and "\n" not in line
    assert line.endswith("run 'mt list-tasks' to see them")
    bare = run_mt("show-task", "danetq")
    assert "did you mean 'danetqa'" in bare.stderr
    cased = run_mt("show-task", "rsg:MuSeRC")  # the official folder's spelling: only the case differs, so only that one
    assert "(did you mean 'rsg:muserc'?)" in cased.stderr


def test_mt_train_prints_warnings_as_one_line_each(fixture_plugins, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("encoder: {tiny: bert}\ntasks: [rsg:tera]\nschedule: {max_steps: 1}\n")
    result = run_mt("train", str(config), "--output-dir", str(tmp_path / "run"), plugin_path=fixture_plugins)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("warning: plugin 'broken_hook'") for line in lines)
    assert lines[-1].startswith("error: config key 'tasks.0.id': unknown task 'rsg:tera' (did you mean 'rsg:terra'")
    assert all(line.startswith(("warning: ", "error: ")) for line in lines), lines
    assert not (tmp_path / "run").exists()


def test_a_misspelled_name_in_mt_load_plugins_is_a_warning_with_did_you_mean():
    result = run_mt("list-tasks", "--json", env={"MT_LOAD_PLUGINS": "rsg,nlii"})
    assert result.returncode == 0
    assert {t["plugin"] for t in json.loads(result.stdout)} == {"rsg"}
    assert result.stderr.strip() == ("warning: MT_LOAD_PLUGINS names 'nlii', which is no installed plugin (did you mean 'nli'?); "
                                     "installed: nli (mt-nli), rsg (mt-russian-superglue), sentiment (mt-sentiment)")
    assert "MT_LOAD_PLUGINS names 'nlii'" in run_mt("plugins", env={"MT_LOAD_PLUGINS": "nlii"}).stderr


def test_a_task_of_a_plugin_left_out_by_mt_load_plugins_says_so():
    result = run_mt("show-task", "rsg:terra", env={"MT_LOAD_PLUGINS": "nli"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: unknown task 'rsg:terra': plugin 'rsg' is installed but MT_LOAD_PLUGINS leaves it "
                                     "out; add it there, or unset MT_LOAD_PLUGINS")
    bare = run_mt("show-task", "terra", env={"MT_LOAD_PLUGINS": "nli"})
    assert bare.stderr.strip().endswith("(MT_LOAD_PLUGINS leaves out the installed plugin(s) rsg, sentiment)")


def test_list_tasks_of_a_plugin_left_out_by_mt_load_plugins_says_so_not_unknown():
    for name, shown in (("sentiment", "plugin 'sentiment'"), ("mt-sentiment", "plugin 'sentiment' (distribution mt-sentiment)")):
        result = run_mt("list-tasks", "--plugin", name, env={"MT_LOAD_PLUGINS": "rsg"})
        assert result.returncode == 2
        assert result.stderr.strip() == (f"error: {shown} is installed but MT_LOAD_PLUGINS leaves it out; add it there, or unset "
                                         "MT_LOAD_PLUGINS")
    typo = run_mt("list-tasks", "--plugin", "sentimnt", env={"MT_LOAD_PLUGINS": "rsg"})
    assert typo.returncode == 2 and "unknown plugin 'sentimnt' (did you mean 'sentiment'?)" in typo.stderr


def test_a_head_registered_for_a_misspelled_task_kind_fails_its_plugin():
    """Caught at load (the plugin is listed as failed), not when a task first uses the head."""
    import pytest

    from mtcore.errors import UnknownNameError, UsageError
    from mtcore.registry import Registry

    registry = Registry()  # user code's register_component: an MtError (one line), not a bare ValueError / KeyError
    with pytest.raises(UnknownNameError, match=r"^unknown component kind 'heads' \(did you mean 'head'\?\); the kinds are: head, sampler"):
        registry.add_component("heads", "pool", "x:y", "toxic")
    with pytest.raises(UsageError, match=r"^head name 'a:b' must be a non-empty string without ':'"):
        registry.add_component("head", "a:b", "x:y", "toxic")
    with pytest.raises(UsageError, match=r"^head 'pool': unknown task kind 'text_clasification' in kinds "
                                         r"\(did you mean 'text_classification'\?\)"):
        registry.add_component("head", "pool", "x:y", "toxic", kinds=("text_clasification",))
    with pytest.raises(UsageError, match=r"kinds must be a tuple of task kinds"):
        registry.add_component("head", "pool", "x:y", "toxic", kinds="text_classification")
    assert registry.add_component("head", "pool", "x:y", "toxic", kinds=("text_classification",)).extra["kinds"] == ["text_classification"]


def test_a_task_of_a_plugin_that_is_not_installed_says_so():
    """It said "run 'mt list-tasks' to see them", which could never list it (a packaging audit: the core alone)."""
    done = run_mt("show-task", "toxic:comments")
    assert done.returncode != 0
    assert done.stderr.strip().startswith("error: unknown task 'toxic:comments': no installed plugin is named 'toxic' "
                                          "(installed plugins: ")
    assert "install the plugin that provides it" in done.stderr and "mt list-tasks" not in done.stderr
    done = run_mt("show-task", "user:comments")
    assert "nothing registered it in this process; register it from Python" in done.stderr
    assert "did you mean 'rsg:terra'" in run_mt("show-task", "rgs:terra").stderr  # a near miss keeps its suggestion
