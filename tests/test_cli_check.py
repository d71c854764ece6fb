"""``mt check``: what ``mt train`` checks before its first step, without training or writing a run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from clitools import run_mt

REPO = Path(__file__).resolve().parents[1]


def check_here(*args: str) -> subprocess.CompletedProcess:
    """``mt check ARGS`` in this process (CliRunner: the same command, exit code and output as ``run_mt("check", ...)``,
    without a process's start-up), as a CompletedProcess."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    result = CliRunner().invoke(app, ["check", *args])
    return subprocess.CompletedProcess(["mt", "check", *args], result.exit_code, result.stdout, result.stderr)


@pytest.fixture(autouse=True)
def _no_mt_variables(monkeypatch):
    """The environment ``run_mt`` gives its process: no ``MT_*`` variables."""
    for name in [name for name in os.environ if name.startswith("MT_")]:
        monkeypatch.delenv(name)


def test_check_reads_every_task_and_counts_the_steps_without_writing_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = check_here(str(REPO / "examples" / "quickstart.yaml"), "schedule.max_steps=7")
    assert result.returncode == 0, result.stderr
    for task in ("rsg:terra", "rsg:parus", "nli:xnli-ru", "sentiment:mokoron"):
        assert task in result.stdout
    assert "steps:" in result.stdout and "7 in the run (schedule.max_steps)" in result.stdout
    assert result.stdout.rstrip().endswith("config ok")
    assert list(tmp_path.iterdir()) == []  # no run folder, no tiny encoder left behind


def test_every_example_config_passes_the_config_checks(tmp_path, monkeypatch):
    """The configs under examples/ use keys mt train accepts (the data is not read: hub tasks)."""
    monkeypatch.chdir(tmp_path)
    examples = sorted((REPO / "examples").glob("*.yaml"))
    assert len(examples) >= 3
    for example in examples:
        result = check_here(str(example), "--no-data")
        assert result.returncode == 0, (example.name, result.stderr)
        assert result.stdout.rstrip().endswith("config ok (data not read: --no-data)"), example.name


def _data_column(config: Path, text: str) -> dict[str, str]:
    """``{task: what its data column says}`` in the table ``mt check CONFIG --no-data`` prints, ``text`` written to CONFIG."""
    config.write_text(text, encoding="utf-8")
    result = check_here(str(config), "--no-data")
    assert result.returncode == 0, result.stderr
    return {line.split("│")[1].strip(): line.split("│")[4].strip() for line in result.stdout.splitlines() if line.count("│") == 5}


def test_check_names_what_a_hub_source_reads(tmp_path):
    rows = _data_column(tmp_path / "hub.yaml", "encoder: {tiny: bert}\ntasks:\n  - {id: rsg:terra, source: hub}\n"
                        "  - {id: rsg:lidirus, source: hub}\n  - {id: nli:xnli-ru, source: hub, sources: {hub: {path: /data/xnli}}}\n")
    assert rows["rsg:terra"] == "RussianNLP/russian_super_glue (terra)", rows
    assert rows["rsg:lidirus (evaluated with rsg:terra)"] == "RussianNLP/russian_super_glue (lidirus)"
    assert rows["nli:xnli-ru"] == "/data/xnli (ru)"  # a config's own path: what will be read


def test_check_names_the_folder_a_defined_tasks_sample_source_reads(tmp_path, monkeypatch):
    """A task defined in the config read by its sample source reads the current folder, not "(in the plugin)"."""
    monkeypatch.chdir(tmp_path)
    rows = _data_column(tmp_path / "defined.yaml", "encoder: {tiny: bert}\ntasks:\n  - source: sample\n    define: {name: mine, "
                        "kind: text_classification, labels: [a, b], sources: {local: {kind: local, files: {train: train.jsonl}}}}\n"
                        "  - {id: rsg:terra, source: sample}\n")
    assert rows == {"user:mine": str(tmp_path), "rsg:terra": "(in the plugin)"}, rows


def test_check_stops_at_the_first_config_or_data_mistake_in_one_line(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in (("good", "pos"), ("bad", "nope"))), encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "tasks": [
        {"define": {"name": "reviews", "kind": "text_classification", "labels": ["neg", "pos"], "files": {"train": "train.jsonl"}}}]}))
    bad_key = check_here(str(config), "optimizer.lrr=1", "--no-data")
    assert bad_key.returncode == 2 and bad_key.stderr.strip() == "error: config key 'optimizer.lrr' is not allowed (did you mean 'optimizer.lr'?)"
    bad_row = check_here(str(config))
    lines = bad_row.stderr.strip().splitlines()
    assert bad_row.returncode != 0 and len(lines) == 1
    assert f"{data} row 2: label 'nope' is not one of 'neg', 'pos'" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "train.jsonl"]


@pytest.mark.parametrize("entry", [{"id": "rsg:terra", "source": "local"},  # the plugin's own loader
                                   {"define": {"name": "own", "kind": "text_classification", "labels": ["a", "b"],
                                               "sources": {"local": {"files": {"train": "train.jsonl"}}}}, "source": "local"}])
def test_a_task_entrys_data_dir_that_is_no_folder_is_exit_2_as_data_dir_is(tmp_path, entry):
    """It was exit 1 (a data error) in the config and exit 2 as --data-dir: cli.md counts a missing folder as a usage error."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [{**entry, "data_dir": str(tmp_path / "RGS")}]}))
    result = check_here(str(config))
    assert result.returncode == 2, result.stderr
    assert f"data_dir '{tmp_path / 'RGS'}' is not a folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_check_refuses_head_options_mt_train_would_refuse(tmp_path, monkeypatch):
    """Head options were checked only when mt train built the model: mt check said 'config ok'."""
    monkeypatch.chdir(tmp_path)
    quickstart = str(REPO / "examples" / "quickstart.yaml")
    for override, expected in (("tasks.0.head_options.poolng=cls", "unknown head option 'poolng' (did you mean 'pooling'"),
                               ("tasks.1.head_options.dropout=abc", "task 'rsg:parus', head 'multiple_choice' rejected options")):
        result = check_here(quickstart, override)
        line = result.stderr.strip()
        assert result.returncode == 2 and len(line.splitlines()) == 1 and expected in line, (override, result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_check_refuses_flash_attention_with_attention_dropout_as_mt_train_does(tmp_path, monkeypatch):
    """mt check said "config ok" and mt train then refused it (FA4 has no attention dropout; BERT's is 0.1)."""
    monkeypatch.chdir(tmp_path)
    quickstart = str(REPO / "examples" / "quickstart.yaml")
    refused = run_mt("check", quickstart, "encoder.options.flash_attention=FA4")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "flash_attention FA4 has no attention dropout, and this encoder's is 0.1" in refused.stderr
    without_dropout = run_mt("check", quickstart, "encoder.options.flash_attention=FA4",
                             "encoder.options.encoder_kwargs.attention_probs_dropout_prob=0")
    assert "has no attention dropout" not in without_dropout.stderr, without_dropout.stderr
    import importlib.util

    if importlib.util.find_spec("flash_attn") is None:  # here: kernels that do not load are refused as mt train refuses them
        assert without_dropout.returncode == 2 and "flash_attention FA4: its kernels did not load" in without_dropout.stderr


def test_switching_sampler_names_the_way_to_clear_the_old_ones_options(tmp_path):
    """The README's config has temperature options; sampler.name=uniform said only "it accepts: none"."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [{"id": "rsg:terra", "source": "sample"}],
                                      "sampler": {"name": "temperature", "options": {"temperature": 2.0}}}))
    switched = check_here(str(config), "sampler.name=uniform", "--no-data")
    assert switched.returncode == 2
    assert switched.stderr.strip() == ("error: config key 'sampler.options': sampler 'uniform': unknown option 'temperature'; it "
                                       "accepts: none; options of another sampler? sampler.options={} clears them")
    cleared = check_here(str(config), "sampler.name=uniform", "sampler.options={}", "--no-data")
    assert cleared.returncode == 0, cleared.stderr


@pytest.mark.parametrize("name", ["v1.2", "a/b", "a\\b"])
def test_a_task_name_mt_train_or_predict_could_not_use_is_refused_by_mt_check(tmp_path, name):
    """'.' passed mt check and failed mt train ("task id ... without '.'"); '/' trained and wrote predictions into a
    sub-folder (preds/user_a/b.jsonl)."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [
        {"define": {"name": name, "kind": "text_classification", "labels": ["a", "b"], "files": {"train": "t.jsonl"}}}]}))
    result = check_here(str(config), "--no-data")
    assert result.returncode == 2 and result.stderr.startswith(f"error: config key 'tasks.0.define': task name {name!r} must be"), result.stderr


def test_an_encoder_kwarg_of_the_wrong_type_is_one_line_from_check_and_train(tmp_path, monkeypatch):
    """A quoted number ("0.1" for a dropout): mt check said "config ok" and mt train "unexpected
    StrictDataclassFieldValidationError"."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": {"arch": "bert", "hidden_size": 32, "num_layers": 1, "num_heads": 2}},
                                      "tasks": [{"id": "rsg:terra", "source": "sample"}], "schedule": {"max_steps": 1}}))
    wrong = 'encoder.options={encoder_kwargs: {hidden_dropout_prob: "0.1"}}'
    checked = check_here(str(config), wrong)
    assert checked.returncode == 2 and checked.stderr.strip() == (
        "error: config key 'encoder.options.encoder_kwargs': Field 'hidden_dropout_prob' with value '0.1' doesn't match any type "
        "in (float, int)"), checked.stderr
    trained = CliRunner().invoke(app, ["train", str(config), wrong, "--output-dir", str(tmp_path / "run")])
    assert trained.exit_code == 2 and "has the wrong type: Field 'hidden_dropout_prob' with value '0.1'" in trained.stderr
    assert "unexpected" not in trained.stderr and not (tmp_path / "run").exists()


def test_a_misspelt_attention_implementation_is_refused_by_mt_check_as_by_mt_train(tmp_path):
    """'spda' passed mt check ("config ok") and then ended mt train; both now name it, with "did you mean"."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": {"arch": "bert", "hidden_size": 32, "num_layers": 1, "num_heads": 2}},
                                      "tasks": [{"id": "rsg:terra", "source": "sample"}], "schedule": {"max_steps": 1}}))
    checked = check_here(str(config), "encoder.attn_implementation=spda")
    assert checked.returncode == 2 and len(checked.stderr.strip().splitlines()) == 1, checked.stderr
    assert checked.stderr.startswith("error: config key 'encoder.attn_implementation': this encoder cannot use 'spda' "
                                     "(did you mean 'sdpa'?)"), checked.stderr
    trained = CliRunner().invoke(app, ["train", str(config), "encoder.attn_implementation=spda", "--output-dir", str(tmp_path / "run")])
    assert trained.exit_code == 2 and "cannot use attn_implementation='spda' (did you mean 'sdpa'?)" in trained.stderr
    for known in ("eager", "flex_attention"):  # names it knows pass; whether kernels load is the run's to say
        assert check_here(str(config), f"encoder.attn_implementation={known}").returncode == 0
    # a known name this architecture does not support (transformers' message does not repeat it): refused, no "did you mean"
    deberta = check_here(str(config), "encoder.tiny.arch=deberta-v2", "encoder.attn_implementation=flash_attention_2")
    assert deberta.returncode == 2 and deberta.stderr.startswith(
        "error: config key 'encoder.attn_implementation': this encoder cannot use 'flash_attention_2': DebertaV2Model does not "
        "support Flash Attention 2"), deberta.stderr


def test_inputs_idx_names_the_id_field_as_id_field_does(tmp_path):
    """`inputs: {idx: id}` passed the config checks, then every row failed with "field 'id' (idx) holds 0; expected a
    list of strings" (a scale audit)."""
    from mtcore.errors import ConfigError
    from mtcore.task import Task

    for name in ("tr.jsonl", "va.jsonl"):
        (tmp_path / name).write_text('{"id":"r0","text":"a b","label":"c0"}\n{"id":"r1","text":"b c","label":"c1"}\n', encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": {"arch": "bert", "hidden_size": 32, "num_layers": 1, "num_heads": 2}},
                                      "tasks": [{"define": {"name": "x", "kind": "text_classification", "labels": ["c0", "c1"],
                                                            "files": {"train": "tr.jsonl", "validation": "va.jsonl"},
                                                            "inputs": {"text": "text", "idx": "id"}}}],
                                      "schedule": {"max_steps": 1}}))
    checked = check_here(str(config))
    assert checked.returncode == 0, checked.stderr
    task = Task(name="x", kind="text_classification", labels=("a", "b"), inputs={"text": "t", "idx": "id"})
    assert task.id_field == "id" and "idx" not in task.input_map
    with pytest.raises(ConfigError, match="inputs maps idx to 'id' and id_field is 'key'; give the ids' field once, as id_field"):
        Task(name="x", kind="text_classification", labels=("a", "b"), inputs={"text": "t", "idx": "id"}, id_field="key")


def test_check_shows_each_tasks_chance_of_being_drawn(tmp_path, monkeypatch):
    """What the sampler makes of the rows: proportional's n_i / sum n, annealed's first and last epoch, none when every
    task trains at each step (a migration audit: a QA task's windows had quietly decided its share)."""
    monkeypatch.chdir(tmp_path)
    quickstart = str(REPO / "examples" / "quickstart.yaml")

    def table(*overrides: str) -> dict[str, list[str]]:
        result = check_here(quickstart, "sampler.options={}", *overrides)
        assert result.returncode == 0, result.stderr
        lines = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines() if line.startswith("│")]
        header = [cell.strip() for cell in next(line for line in result.stdout.splitlines() if line.startswith("┃")).split("┃")[1:-1]]
        return {"header": header, **{cells[0]: cells for cells in lines}}

    proportional = table("sampler.name=proportional")
    assert proportional["header"][-1] == "drawn"
    rows = {task: int(cells[4]) for task, cells in proportional.items() if task != "header"}
    assert {task: cells[-1] for task, cells in proportional.items() if task != "header"} == {
        task: f"{100 * n / sum(rows.values()):.1f}%" for task, n in rows.items()}
    annealed = table("sampler.name=annealed", "sampler.options={decay: 0.8}")
    share = {task: n ** 0.2 for task, n in rows.items()}  # the last epoch's alpha: 1 - 0.8
    assert {task: cells[-1] for task, cells in annealed.items() if task != "header"} == {
        task: f"{100 * n / sum(rows.values()):.1f}% → {100 * share[task] / sum(share.values()):.1f}%" for task, n in rows.items()}
    assert "drawn" not in table("loss.strategy=sum")["header"]
    # annealing set to last longer than the run: the run's last epoch (of 4) is shown, not the annealing's (a regression audit)
    longer = table("sampler.name=annealed", "sampler.options={decay: 0.8, num_epochs: 9}")
    share = {task: n ** (1 - 0.8 * 3 / 8) for task, n in rows.items()}
    assert {task: cells[-1].split(" → ")[-1] for task, cells in longer.items() if task != "header"} == {
        task: f"{100 * share[task] / sum(share.values()):.1f}%" for task in rows}
