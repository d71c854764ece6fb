"""CLI behaviour that needs no plugin data: version, help, show-task, exit codes, light imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from clitools import clean_env, run_mt
from mtcore import __version__
from mtcore.cli.app import app

runner = CliRunner()
HEAVY = ("torch", "transformers", "datasets")


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mtcore {__version__}"


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("plugins", "list-tasks", "show-task", "components"):
        assert command in result.output


def test_show_task_prints_sources_labels_metrics():
    result = run_mt("show-task", "rsg:terra")
    assert result.returncode == 0, result.stderr
    for text in ("pair_classification", "entailment", "not_entailment", "source hub", "source local", "source sample", "accuracy", "sample size",
                 "rsg (mt predict ... --format rsg -o PATH: the folder or file it writes)"):  # its submission writer, and how to write it
        assert text in result.stdout


def test_show_task_names_a_missing_sample_file(monkeypatch):
    from mtcore import plugins
    from mtcore.task import Source, Task

    task = Task(name="half_shipped", kind="text_classification", labels=("a", "b"),
                sources={"sample": Source.sample("mt_nli", "jsonl", {"train": "no/such/train.jsonl", "validation": "sample/ru/full/val.jsonl"})})
    monkeypatch.setattr(plugins, "_cache", {})
    plugins.register_task(task)
    result = runner.invoke(app, ["show-task", "user:half_shipped"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "sample size" in line)
    assert "train missing (no/such/train.jsonl in package 'mt_nli')" in line


@pytest.mark.parametrize("fmt", ["conll", "auto"])
def test_show_task_counts_conll_sentences_and_squad_questions(tmp_path, monkeypatch, fmt):
    """A CoNLL sample was "unreadable" and a SQuAD-layout JSON one counted its lines; mt check counts sentences and questions."""
    import json

    from mtcore import plugins
    from mtcore.task import Source, Task

    package = tmp_path / "shipped_samples"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.conll").write_text("-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n\nBRUSSELS B-LOC\n")
    squad = {"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"id": "a", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]},
                                                 {"id": "b", "question": "What is in France?", "answers": [{"text": "Paris", "answer_start": 0}]}]}]}]}
    (package / "train.json").write_text(json.dumps(squad, indent=2))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_cache", {})
    plugins.register_task(Task(name="tags", kind="token_classification", labels=("O", "B-ORG", "B-PER", "I-PER", "B-LOC"),
                               sources={"sample": Source.sample("shipped_samples", fmt, {"train": "train.conll"})}))
    plugins.register_task(Task(name="qa", kind="extractive_qa", sources={"sample": Source.sample("shipped_samples", "auto", {"train": "train.json"})}))
    for task, expected in (("user:tags", "train 3"), ("user:qa", "train 2")):
        result = runner.invoke(app, ["show-task", task])
        assert result.exit_code == 0, result.output
        line = next(line for line in result.output.splitlines() if "sample size" in line)
        assert expected in line and "unreadable" not in line, line


def test_list_tasks_title_counts_in_words():
    """`mt list-tasks --plugin toxic` in the plugin tutorial lists one task: '1 task', not '1 tasks'."""
    one = runner.invoke(app, ["list-tasks", "--plugin", "rsg", "--kind", "multiple_choice"])
    assert one.exit_code == 0, one.output
    assert one.output.splitlines()[0].strip() == "1 task" and "rsg:parus" in one.output
    many = runner.invoke(app, ["list-tasks", "--plugin", "rsg"])
    assert many.output.splitlines()[0].strip() == "9 tasks"


def test_components_lists_builtin_heads_and_samplers():
    result = runner.invoke(app, ["components", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    names = {(r["kind"], r["name"]) for r in rows}
    assert ("head", "classification") in names and ("sampler", "temperature") in names and ("loss", "pcgrad") in names
    bad = runner.invoke(app, ["components", "heads"])
    assert bad.exit_code == 2


def test_unexpected_errors_are_one_line_unless_debug(monkeypatch):
    from mtcore.cli import listing

    def explode(**_):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(listing, "load_registry", explode)
    monkeypatch.delenv("MT_DEBUG", raising=False)
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 1
    assert "unexpected RuntimeError: kaboom second line" in result.output
    monkeypatch.setenv("MT_DEBUG", "1")
    result = runner.invoke(app, ["plugins"])
    assert isinstance(result.exception, RuntimeError)


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["list-tasks"], ["list-tasks", "--json"], ["show-task", "rsg:parus"], ["components"],
                                  ["compare", "no-such-run"], ["cache", "--json"], ["new-config", "-"]])
def test_listing_commands_never_import_heavy_libraries(args):
    code = (
        "import sys\n"
        "from mtcore.cli.app import main\n"
        f"sys.argv = ['mt', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert "HEAVY=\n" in result.stderr or result.stderr.rstrip().endswith("HEAVY="), result.stderr


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["list-tasks"], ["list-tasks", "--json", "--kind", "pair_classification",
                                  "--plugin", "mt-russian-superglue"], ["show-task", "rsg:parus"], ["components"], ["list-tasks", "--help"]])
def test_listing_commands_skip_typers_pydantic_coercion(args):
    """typer coerces values through pydantic (60-180 ms to import); plain strings and flags pass through instead."""
    code = (
        "import sys, io, contextlib\n"
        "from mtcore.cli.app import main\n"
        f"sys.argv = ['mt', *{args!r}]\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n        main()\n    except SystemExit as e:\n        assert e.code in (0, None), e.code\n"
        "print('PYDANTIC=' + str('pydantic' in sys.modules), 'OUT=' + str(len(out.getvalue())))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert result.returncode == 0 and "PYDANTIC=False" in result.stdout, (result.stdout, result.stderr)
    if "--kind" in args:  # the options still filter: only pair tasks of the one plugin
        listed = run_mt(*args)
        tasks = json.loads(listed.stdout)
        assert tasks and {t["kind"] for t in tasks} == {"pair_classification"} and all(t["id"].startswith("rsg:") for t in tasks)


def test_plugin_modules_import_nothing_heavy():
    code = (
        "import sys, importlib\n"
        "for m in ('mtcore', 'mtcore.task', 'mtcore.plugins', 'mt_russian_superglue.plugin', 'mt_nli.plugin', 'mt_sentiment.plugin'):\n"
        "    importlib.import_module(m)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_mt_without_arguments_shows_help_and_usage_error_exits_2():
    result = run_mt()
    assert "Usage" in result.stdout + result.stderr
    result = run_mt("no-such-command")
    assert result.returncode == 2


def test_command_line_mistakes_are_one_error_line_with_exit_2():
    cases = {("trian", "x.yaml"): "error: No such command 'trian'. Did you mean 'train'? (see 'mt --help')",
             ("list-tasks", "--jsn"): "error: No such option: --jsn (Possible options: --json) (see 'mt list-tasks --help')",
             ("train",): "error: Missing argument 'CONFIG'. (see 'mt train --help')",
             ("train", "x.yaml", "--seeds"): "error: Option '--seeds' requires an argument. (see 'mt train --help')"}
    for args, line in cases.items():
        result = run_mt(*args)
        assert result.returncode == 2 and result.stderr.strip() == line, (args, result.stderr)
    bare = run_mt()
    assert bare.returncode == 2 and "Usage: mt [OPTIONS] COMMAND" in bare.stderr and "list-tasks" in bare.stderr
    assert run_mt("--version").stdout.strip().startswith("mtcore ")


def test_debug_mode_shows_the_traceback_with_the_errors_own_exit_code():
    result = run_mt("show-task", "tera", env={"MT_DEBUG": "1"})
    assert result.returncode == 2
    assert result.stderr.startswith("Traceback") and "UnknownNameError: unknown task 'tera' (did you mean 'terra'?)" in result.stderr
    assert "AttributeError" not in result.stderr


@pytest.mark.parametrize("args", [["list-tasks", "--json"], ["list-tasks"], ["--help"], ["--version"], ["cache"]])
def test_a_closed_output_pipe_ends_quietly(args, tmp_path):
    """`mt list-tasks --json | head -c 10`: the reader goes away; no 'unexpected BrokenPipeError', no traceback, and the
    same exit code for a table, --help and --version (rich and click exited 1, the code of a failed command)."""
    from clitools import MT

    env = clean_env(HF_DATASETS_CACHE=str(tmp_path))
    process = subprocess.Popen([MT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # nobody reads: the first write fails with EPIPE
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and stderr == "", stderr


def test_a_command_line_mistake_under_torchrun_is_said_by_the_main_process_only():
    """Each process of a launch parses the command line: `torchrun ... train x.yaml --bogus` printed it once per process."""
    for rank, said in (("0", True), ("1", False)):
        result = run_mt("train", "x.yaml", "--bogus", env={"RANK": rank})
        assert result.returncode == 2
        assert (result.stderr.strip() == "error: No such option: --bogus (see 'mt train --help')") is said, result.stderr
        assert said or result.stderr == ""


def test_json_output_writes_nan_as_null(capsys):
    """`mt evaluate --json` wrote NaN (squad_f1_no_answer with no unanswerable question), which strict parsers refuse."""
    from mtcore.cli.output import print_json

    print_json({"metrics": {"a": float("nan"), "b": [float("inf"), 0.5]}})
    assert json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(name)) == {"metrics": {"a": None, "b": [None, 0.5]}}
