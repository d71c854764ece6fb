"""The training config: schema, overrides, one-line errors, registry checks, refused combinations."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mtcore.errors import ConfigError
from mtcore.train.config_io import apply_overrides, dump_config, load_config
from mtcore.train.validate import plan_run

BASE = {"encoder": {"tiny": "bert"}, "tasks": ["rsg:terra", {"id": "rsg:parus", "max_length": 64}]}


def error_of(raw=BASE, overrides=(), plan=False, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        config = load_config(raw, overrides)
        if plan:
            plan_run(config, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_and_typed_overrides():
    config = load_config(BASE, ["optimizer.lr=1e-4", "tasks.0.max_length=64", "tasks.parus.batch_size=4",
                                "evaluation.weights={rsg:terra: 2}", "logging.trackers=[tensorboard]", "schedule.warmup_ratio=0.1"])
    assert config.optimizer.lr == pytest.approx(1e-4) and isinstance(config.optimizer.lr, float)
    assert config.tasks[0].id == "rsg:terra" and config.tasks[0].max_length == 64
    assert config.tasks[1].batch_size == 4 and config.tasks[1].max_length == 64
    assert config.evaluation.weights == {"rsg:terra": 2.0}
    assert config.logging.trackers == ["tensorboard"]
    assert config.encoder.tiny is not None and config.encoder.tiny.arch == "bert"


def test_override_splits_on_first_equals_and_keeps_raw_untouched():
    raw = {"encoder": {"path": "x"}, "tasks": ["a:b"]}
    out = apply_overrides(raw, ["encoder.path=dir=with=equals", "tasks.0.head_options={pooling: mean}"])
    assert out["encoder"]["path"] == "dir=with=equals"
    assert out["tasks"][0] == {"id": "a:b", "head_options": {"pooling": "mean"}}
    assert raw == {"encoder": {"path": "x"}, "tasks": ["a:b"]}


@pytest.mark.parametrize("overrides, expected", [
    (["optimizer.lrr=1"], "config key 'optimizer.lrr' is not allowed (did you mean 'optimizer.lr'?)"),
    (["batch_size=8"], "config key 'batch_size' is not allowed (did you mean 'batching.batch_size' or 'tasks.0.batch_size'?)"),  # not 'batching'
    (["max_length=64"], "config key 'max_length' is not allowed (did you mean 'tasks.0.max_length'?)"),  # a task's own key
    (["temperature=2"], "config key 'temperature' is not allowed (did you mean 'distill.temperature' or 'sampler.options.temperature'? "
                        "an option of sampler 'temperature')"),  # a component's option (and a key of another section)
    (["alpha=0.5"], "config key 'alpha' is not allowed (did you mean 'loss.options.alpha'? an option of loss 'gradnorm')"),
    (["batching.eval_every=5"], "config key 'batching.eval_every' is not allowed (did you mean 'evaluation.every'?)"),  # joined
    (["save_steps=5"], "config key 'save_steps' is not allowed (did you mean 'checkpoint.every'?)"),  # Hugging Face's name
    (["checkpoint_keep_last=1"], "config key 'checkpoint_keep_last' is not allowed (did you mean 'checkpoint.keep_last'?)"),
    (["schedule.name=cosin"], "config key 'schedule.name': 'cosin' is not one of"),
    (["tasks.1.max_lenght=3"], "config key 'tasks.1.max_lenght' is not allowed (did you mean 'tasks.1.max_length'?)"),
    (["optimizer.lr=-1"], "config key 'optimizer.lr': input should be greater than 0"),
    (["optimizer.lr=fast"], "config key 'optimizer.lr'"),
    (["precision=fp8"], "config key 'precision': 'fp8' is not one of 'auto', 'fp32', 'bf16', 'fp16'"),
    (["encoder.path=some/dir"], "give exactly one of 'encoder.path' (hub id or local directory) or 'encoder.tiny' (demo encoder, "
                                "e.g. bert); both are set: to train a real encoder from a config with a demo one, add encoder.tiny=null"),
    (["encoder.tiny.num_heads=3"], "config key 'encoder.tiny': 'encoder.tiny.hidden_size' (64) must be a multiple of "
                                   "'encoder.tiny.num_heads' (3): each attention head gets an equal share; e.g. num_heads: 2"),  # was unexpected
    (["encoder.tiny=null"], "give exactly one of 'encoder.path' (hub id or local directory) or 'encoder.tiny' (demo encoder, e.g. bert)"),
    (["schedule.warmup_steps=3", "schedule.warmup_ratio=0.1"], "either 'schedule.warmup_steps' or 'schedule.warmup_ratio'"),
    (["tasks.7.max_length=3"], "no list item '7'"),
    (["tasks.rsg:terrra.max_length=3"], "no list item 'rsg:terrra' at 'tasks.rsg:terrra' (did you mean 'rsg:terra'?) "
                                        "(it has 2 items: rsg:terra, rsg:parus)"),
    (["optimizer"], "must look like key=value"),
    (["tasks.0.label_aliases={yes: entailment}"], "config key 'tasks.0.label_aliases': a key: input should be a valid string (got True); "
                                                  "YAML reads yes/no/on/off/true/false as booleans: quote the word ('yes')"),
    (["schedule.max_steps=yes"], "config key 'schedule.max_steps': expected a number, got True (YAML reads yes/no/on/off/"),
    (["loss.strategy=weighted", "loss.weights={rsg:terra: no}"], "config key 'loss.weights': rsg:terra: expected a number, got False"),
    # sizes no machine takes ended in "unexpected OverflowError / TypeError" (a user-mistake audit)
    (["batching.pad_to_multiple_of=100000000000000000000"], "config key 'batching.pad_to_multiple_of': input should be less than or equal to 65536"),
    (["encoder.tiny.hidden_size=100000000000000000000"], "config key 'encoder.tiny.hidden_size': input should be less than or equal to 8192"),
    (["debug.step_delay_s=1e20"], "config key 'debug.step_delay_s': input should be less than or equal to 3600"),
])
def test_malformed_configs_name_the_key(overrides, expected):
    assert expected in error_of(BASE, overrides)


def test_did_you_mean_for_schedule_names():
    assert "(did you mean 'cosine'?)" in error_of(BASE, ["schedule.name=cosin"])


def test_missing_required_sections():
    assert error_of({"encoder": {"tiny": "bert"}}) == "config key 'tasks' is required"


@pytest.mark.parametrize("overrides, expected", [
    (["sampler.name=temprature"], "config key 'sampler.name': 'temprature' is not one of"),
    (["loss.strategy=pcgrd"], "config key 'loss.strategy': 'pcgrd' is not one of"),
    (["tasks.0.id=rsg:tera"], "config key 'tasks.0.id': unknown task 'rsg:tera'"),
    (["tasks.0.head=clasification"], "config key 'tasks.0.head': 'clasification' is not one of"),
    (["tasks.0.head=multiple_choice"], "serves multiple_choice, not pair_classification"),
    (["tasks.0.metrics=[accuracy, acuracy]"], "config key 'tasks.0.metrics': 'acuracy' is not one of"),
    (["tasks.0.main_metric=f1"], "config key 'tasks.0.main_metric': task 'terra': main_metric 'f1' is not among its metrics "
                                 "['accuracy', 'f1_macro'] (did you mean 'f1_macro'?)"),
    (["tasks.0.source=local"], "config key 'tasks.0.data_dir' is required with source 'local'"),
    (["sampler.options={temprature: 2}", "sampler.name=temperature"], "unknown option 'temprature'"),
    (["loss.strategy=sum", "sampler.mode=single"], "needs one batch of every task per step"),
    (["loss.weights={terra: 1, danetqa: 2}", "loss.strategy=weighted"], "config key 'loss.weights.danetqa'"),
    (["evaluation.early_stopping_patience=2"], "needs 'evaluation.every'"),
    (["tasks=[rsg:terra, rsg:terra]"], "is listed twice"),
    (["tasks=[rsg:lidirus]"], "config key 'tasks.0.evaluate_with': this run trains no task, so no head can score 'rsg:lidirus'"),
    (["compile.enabled=true", "compile.backend=inductr"], "config key 'compile.backend': 'inductr' is not a torch.compile backend "
                                                          "(did you mean 'inductor'?)"),
    (["batching.max_rows=8"], "config key 'batching.max_rows' caps the rows of token-budget batches: set batching.max_tokens too"),
    (["encoder.options={packed_attention: flx}"], "config key 'encoder.options.packed_attention': unknown kernel 'flx' "
                                                  "(did you mean 'flex'?)"),
    (["encoder.options={packed_attention: flex}"], "flex attends over padding-free batches; set batching.padding_free: true"),
    (["encoder.options={packed_attention: flex}", "batching.padding_free=true"], "flex needs compile: true"),
    (["tasks.0.metrics=[pearson]"], "config key 'tasks.0.metrics': metric 'pearson' scores regression tasks, not pair_classification "
                                    "(task 'rsg:terra'); choose another metric"),
    (["tasks=[rsg:rcb]", "tasks.0.metrics=[f1_binary]"], "metric 'f1_binary' scores two-class tasks, and task 'rsg:rcb' has 3 classes"),
    (["encoder.options.fp32_residuals=false"], "config key 'encoder.options.fp32_residuals' is not a model option "
                                               "(did you mean 'fp32_residual'?); the options are dtype, packed_attention, "
                                               "fp32_residual, flash_attention, lora, encoder_kwargs"),
    (["encoder.options.flash_attention=fa5"], "config key 'encoder.options.flash_attention': unknown implementation 'fa5' "
                                              "(did you mean 'FA4'?); choose one of FA3, FA4"),
    (["encoder.options.fp32_residual=maybe"], "config key 'encoder.options.fp32_residual': expected true or false, got 'maybe'"),
    (["encoder.options.padding_free=true"], "config key 'encoder.options.padding_free': set batching.padding_free instead"),
])
def test_registry_checks_before_anything_heavy(overrides, expected):
    message = error_of(BASE, overrides, plan=True)
    assert expected in message
    if "is not one of" in message and "sampler" in expected:
        assert "(did you mean 'temperature'?)" in message


def test_a_plugin_tasks_own_bad_metric_or_head_is_blamed_on_the_task_not_the_config():
    import copy

    from mtcore.plugins import load_registry

    registry = copy.deepcopy(load_registry(warn=False))
    terra = registry.task("rsg:terra")
    registry.tasks["rsg:terra"] = terra.replace(metrics=("accuracy", "f1macro"), plugin="rsg")
    message = error_of(BASE, plan=True, registry=registry)
    assert message.startswith("task 'rsg:terra' (from plugin 'rsg') names metric 'f1macro', which is not registered (did you mean 'f1_macro'")
    assert message.endswith("fix the task's definition, or set config key 'tasks.0.metrics'")
    assert "config key 'tasks.0.metrics': 'f1macro'" in error_of(BASE, ["tasks.0.metrics=[f1macro]"], plan=True, registry=registry)
    registry.tasks["rsg:terra"] = terra.replace(head="clasification", plugin="rsg")
    assert "names head 'clasification', which is not registered (did you mean 'classification'" in error_of(BASE, plan=True, registry=registry)


def test_overriding_metrics_without_the_main_one_makes_the_first_main():
    plan = plan_run(load_config(BASE, ["tasks.0.metrics=[f1_macro]"]))
    assert plan.tasks[0].task.all_metrics == ("f1_macro",) and plan.tasks[0].task.main == "f1_macro"
    kept = plan_run(load_config(BASE, ["tasks.0.metrics=[f1_macro, accuracy]"]))
    assert kept.tasks[0].task.main == "accuracy"  # still among them: the task's choice stays


def test_encoder_path_that_is_no_folder_and_no_hub_id(tmp_path: Path):
    missing = tmp_path / "no-such-encoder"
    message = error_of({**BASE, "encoder": {"path": str(missing)}}, plan=True)
    assert message == (f"config key 'encoder.path': there is no folder {str(missing)!r} (nearest existing folder: {tmp_path}), "
                       "and it is not a hub id like 'bert-base-cased' or 'org/name'; check the path")
    (tmp_path / "weights.bin").write_text("x")
    assert "is a file; give the folder holding config.json" in error_of({**BASE, "encoder": {"path": str(tmp_path / "weights.bin")}}, plan=True)
    plan_run(load_config({**BASE, "encoder": {"path": "DeepPavlov/rubert-base-cased"}}))  # a hub id: checked when loaded
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "mtcore.json").write_text("{}")
    assert f"is a run directory; did you mean {str(run / 'model')!r}" in error_of({**BASE, "encoder": {"path": str(run)}}, plan=True)
    checkpoint = run / "checkpoints" / "step-000010"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.json").write_text("{}")
    (checkpoint / "model.safetensors").write_text("")
    # a checkpoint starts a run only inside its run directory, whose config.yaml says how to rebuild it
    assert "is a checkpoint outside its run directory (no config.yaml" in error_of({**BASE, "encoder": {"path": str(checkpoint)}}, plan=True)


def test_a_task_batch_size_beside_a_token_budget_is_named_as_unused():
    config = load_config({**BASE, "batching": {"max_tokens": 512}}, ["tasks.rsg:terra.batch_size=4"])
    with pytest.warns(UserWarning, match=r"^batching.max_tokens is set, so the batch_size of rsg:terra is not used"):
        plan_run(config)


def test_gradient_combining_strategies_plan_under_ddp_and_accumulation():
    for strategy in ("pcgrad", "mgda", "cagrad", "gradnorm"):
        plan = plan_run(load_config(BASE, [f"loss.strategy={strategy}", "optimizer.gradient_accumulation_steps=2"]), world_size=2)
        assert plan.mode == "all"


def test_plan_picks_sampler_mode_from_loss_strategy():
    assert plan_run(load_config(BASE)).mode == "single"
    plan = plan_run(load_config(BASE, ["loss.strategy=uncertainty"]))
    assert plan.mode == "all" and plan.task_ids == ["rsg:terra", "rsg:parus"]
    plan = plan_run(load_config(BASE, ["sampler.name=fixed", "tasks.0.weight=3"]))
    assert plan.sampler_options["weights"] == {"rsg:terra": 3.0, "rsg:parus": 1.0}
    assert plan.tasks[1].task.max_length == 64  # per-task override applied to the Task


def test_resolved_config_round_trips(tmp_path: Path):
    config = load_config(BASE, ["optimizer.betas=[0.9, 0.98]"])
    dump_config(config, tmp_path / "config.yaml", header="# test")
    again = load_config(tmp_path / "config.yaml")
    assert again == config
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["optimizer"]["betas"] == [0.9, 0.98]


def test_yaml_file_errors(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("encoder: {tiny: bert\ntasks: [x]\n")
    assert "invalid YAML" in error_of(bad) and "bad.yaml" in error_of(bad)
    assert "does not exist" in error_of(tmp_path / "missing.yaml") and "did you mean" not in error_of(tmp_path / "missing.yaml")
    assert f"does not exist (did you mean {str(bad)!r}?)" in error_of(tmp_path / "bda.yaml")  # a typo: the file beside it
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert "must hold a mapping" in error_of(listed)
    merged = tmp_path / "merged.yaml"  # YAML merge keys still work (a key of the merged mapping may be set again)
    merged.write_text("defaults: &d {max_steps: 2, warmup_steps: 1}\nencoder: {tiny: bert}\ntasks: [rsg:terra]\n"
                      "schedule:\n  <<: *d\n  max_steps: 3\n")
    from mtcore.train.config_io import read_yaml

    assert read_yaml(merged)["schedule"] == {"max_steps": 3, "warmup_steps": 1}
    twice = tmp_path / "twice.yaml"
    twice.write_text("seed: 1\nencoder: {tiny: bert}\nseed: 2\ntasks: [rsg:terra]\n")
    assert error_of(twice) == f"config file {str(twice)!r} line 3: invalid YAML (key 'seed' is given twice (first on line 1); keep one)"
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_bytes("seed: 1\n".encode("utf-16"))
    assert error_of(utf16) == f"config file {str(utf16)!r} line 1: byte 0xff is not UTF-8 text; save the config as UTF-8"


def test_cli_malformed_config_exits_2_with_one_line(tmp_path: Path, helpers):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(BASE))
    result = subprocess.run(helpers.mt_command("train", str(config), "optimizer.lrr=1", "--output-dir", str(tmp_path / "run")),
                            capture_output=True, text=True, env=helpers.subprocess_env(), timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: config key 'optimizer.lrr' is not allowed (did you mean 'optimizer.lr'?)"]
    assert not (tmp_path / "run").exists()


def test_cli_module_is_light():
    code = ("import sys, mtcore.cli.app, mtcore.cli.train; "
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'accelerate') if m in sys.modules]; print(heavy)")
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_examples_begin_with_their_command(helpers):
    examples = sorted((helpers.repo / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# mt train examples/") and path.name in first, path
        plan_run(load_config(path), base_dir=path.parent)  # every example is valid


def test_cli_encoder_that_cannot_be_padding_free_exits_2_and_leaves_nothing(tmp_path: Path, helpers):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(BASE))
    run = tmp_path / "run"
    result = subprocess.run(helpers.mt_command("train", str(config), "encoder.tiny=deberta-v2", "batching.padding_free=true",
                                               "--output-dir", str(run)),
                            capture_output=True, text=True, env=helpers.subprocess_env(), timeout=180)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "DebertaV2Model does not support padding-free batches" in lines[0], result.stderr
    assert "batching.padding_free: false" in lines[0]
    assert not run.exists()  # the run directory made for this start is removed again


def test_an_inline_task_is_addressed_by_its_id_or_name_in_overrides():
    raw = {"encoder": {"tiny": "bert"}, "tasks": ["rsg:terra", {"define": {"name": "reviews", "kind": "text_classification",
                                                                          "labels": ["neg", "pos"], "files": {"train": "t.jsonl"}}}]}
    for key in ("tasks.user:reviews.max_length=32", "tasks.reviews.max_length=32", "tasks.1.max_length=32"):
        assert load_config(raw, [key]).tasks[1].max_length == 32
    assert "(did you mean 'user:reviews'?)" in error_of(raw, ["tasks.user:reveiws.max_length=32"])


def test_weights_that_nothing_would_use_are_refused_or_warned():
    """loss.weights with a strategy that does not weight losses (sum, pcgrad, ...) was silently ignored."""
    for strategy in ("sum", "pcgrad", "uncertainty", "single"):
        message = error_of(BASE, [f"loss.strategy={strategy}", "loss.weights={rsg:terra: 0.0}"], plan=True)
        assert message == (f"config key 'loss.weights': loss strategy {strategy!r} does not weight the task losses, so these weights "
                           "would be ignored; set loss.strategy: weighted, or remove loss.weights")
    assert plan_run(load_config(BASE, ["loss.strategy=weighted", "loss.weights={rsg:terra: 0.5}"])).strategy_weights["rsg:terra"] == 0.5
    with pytest.warns(UserWarning, match=r"^the weight of rsg:terra is used by neither loss strategy 'sum' nor sampler 'proportional'"):
        plan_run(load_config(BASE, ["loss.strategy=sum", "tasks.0.weight=2"]))


def test_evaluation_weights_below_0_or_all_0_are_refused():
    """They passed: every evaluation then said "no aggregate (every main metric is NaN)", no best checkpoint was ever
    chosen and early stopping never stopped; a negative one rewarded the worse task."""
    assert error_of(BASE, ["evaluation.weights={rsg:terra: -1}"]) == (
        "config key 'evaluation.weights.rsg:terra': input should be greater than or equal to 0 (got -1)")
    tasks = plan_run(load_config(BASE)).task_ids
    zeros = "evaluation.weights={" + ", ".join(f"{t}: 0" for t in tasks) + "}"
    assert error_of(BASE, [zeros], plan=True).startswith("config key 'evaluation.weights' gives every task weight 0")
    assert plan_run(load_config(BASE, [f"evaluation.weights={{{tasks[0]}: 0}}"])).eval_weights[tasks[0]] == 0
    # choosing by a zero-shot task alone: the trained ones at 0, the evaluate-only one (0 unless weighed) at 1 (a
    # combinations audit: it was refused as "every task weight 0")
    zero_shot = {**BASE, "tasks": [*BASE["tasks"], {"id": "rsg:lidirus", "source": "sample"}]}
    alone = plan_run(load_config(zero_shot, [zeros[:-1] + ", rsg:lidirus: 1}"]))
    assert alone.eval_weights["rsg:lidirus"] == 1 and all(alone.eval_weights[t] == 0 for t in tasks)
    assert error_of(zero_shot, [zeros], plan=True).startswith("config key 'evaluation.weights' gives every task weight 0")


@pytest.mark.parametrize(("option", "message"), [
    ("fp32_residual=false", "'encoder.options.fp32_residual': false changes nothing with precision fp32"),
    ("flash_attention=fa4", "'encoder.options.flash_attention' changes nothing with precision fp32"),  # any case: FA4
])
def test_a_mixed_precision_option_under_fp32_precision_is_warned_about(option, message):
    import warnings

    with pytest.warns(UserWarning, match=r"^config key " + re.escape(message)):
        plan_run(load_config(BASE, ["precision=fp32", f"encoder.options.{option}"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan_run(load_config(BASE, ["precision=bf16", f"encoder.options.{option}"]))


def test_a_registered_metric_or_head_whose_code_is_missing_fails_at_planning():
    """mt check said 'config ok' and mt train failed at the first evaluation, naming neither metric nor task."""
    from mtcore.errors import PluginError
    from mtcore.plugins import register_component

    register_component("metric", "missing_code_test", "json:no_such_function")
    with pytest.raises(PluginError) as err:
        plan_run(load_config(BASE, ["tasks.0.metrics=[missing_code_test]"]))
    assert str(err.value) == ("metric 'user:missing_code_test' (used by task 'rsg:terra') cannot be loaded: 'json' has no attribute "
                              "'no_such_function' (from reference 'json:no_such_function'); fix the reference that plugin 'user' registers")
    register_component("head", "missing_head_test", "no_such_module_xyz:Head", kinds=("pair_classification",))
    with pytest.raises(PluginError, match=r"^head 'user:missing_head_test' \(used by task 'rsg:terra'\) cannot be loaded: cannot import"):
        plan_run(load_config(BASE, ["tasks.0.head=missing_head_test"]))


def test_sampler_settings_that_mode_all_never_uses_are_warned_about():
    """sum / weighted / uncertainty / pcgrad train every task each step: a fixed sampler's weights were silently ignored."""
    with pytest.warns(UserWarning) as caught:
        plan_run(load_config(BASE, ["loss.strategy=sum", "sampler.name=fixed", "tasks.0.weight=3"]))
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("sampler 'fixed' is not used: loss strategy 'sum' trains on a batch of every task") for m in messages)
    assert any(m.startswith("the weight of rsg:terra is used by neither loss strategy 'sum' nor sampler 'fixed'") for m in messages)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan_run(load_config(BASE, ["loss.strategy=sum"]))
        plan_run(load_config(BASE, ["sampler.name=fixed", "tasks.0.weight=3"]))


def test_fa4_with_padding_free_batches_is_refused_at_planning_where_torchs_glue_cannot_train_it(monkeypatch):
    fa4 = pytest.importorskip("torch.nn.attention._fa4")
    monkeypatch.setattr(fa4, "_fa4_backward_support_error", lambda grad_out, query, key, value, out, logsumexp, dropout_p,
                        cum_seq_q, window_size_left, window_size_right: None)  # torch 2.11's signature
    overrides = ["precision=bf16", "encoder.options.flash_attention=FA4", "encoder.options.encoder_kwargs={attention_probs_dropout_prob: 0}"]
    message = error_of(BASE, [*overrides, "batching.padding_free=true"], plan=True)
    assert message.startswith("flash_attention FA4 cannot train padding-free batches on torch ")
    plan_run(load_config(BASE, overrides))  # padded batches: SDPA runs FA4


@pytest.mark.parametrize(("overrides", "expected"), [
    (["logging.trackers=tensorboard"], "config key 'logging.trackers': expected a list, e.g. [tensorboard] "
                                       "(logging.trackers=[tensorboard] on the command line)"),
    (["logging.trackers=[wandb,wandb]"], "config key 'logging.trackers': ['wandb', 'wandb'] names a tracker twice; name each once"),
    (["logging.trackers=[tensorboard]", "logging.project=../tb"], "config key 'logging.project': '../tb' is not a folder name "
                                                                  "inside the run directory"),
])
def test_tracker_settings_are_checked_when_the_config_is_read(overrides, expected):
    assert error_of(BASE, overrides).startswith(expected)
    load_config(BASE, ["logging.trackers=[wandb]", "logging.project=../any-wandb-project-name"])  # W&B's project is a name


@pytest.mark.parametrize(("override", "expected"), [
    ("layer_decay=0.8", "config key 'layer_decay' is not allowed (did you mean 'optimizer.layer_decay'?)"),
    ("optimizer.max_steps=5", "config key 'optimizer.max_steps' is not allowed (did you mean 'schedule.max_steps'?)"),
    ("max_token=100", "config key 'max_token' is not allowed (did you mean 'batching.max_tokens'?)"),
])
def test_a_key_in_the_wrong_section_names_the_section_it_belongs_to(override, expected):
    assert error_of(BASE, [override]) == expected


def test_a_misspelt_required_key_is_named_with_did_you_mean_not_as_missing():
    """'encodr:' said "config key 'encoder' is required (and 1 more problem)", naming the key the user did not write."""
    raw = {"encodr": {"tiny": "bert"}, "tasks": ["rsg:terra"]}
    assert error_of(raw).startswith("config key 'encodr' is not allowed (did you mean 'encoder'?)")
    assert error_of({"encoder": {"tiny": "bert"}, "task": ["rsg:terra"]}).startswith("config key 'task' is not allowed (did you mean 'tasks'?)")
    assert error_of({"tasks": ["rsg:terra"]}).startswith("config key 'encoder' is required")  # none written: still said so
