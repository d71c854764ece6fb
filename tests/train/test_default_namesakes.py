"""mtcore's defaults (a task kind's head, the sampler) are looked up by their qualified ids: a plugin's or user code's
namesake leaves the tasks and configs that name none alone (a Python API audit's finding)."""

from __future__ import annotations

import shutil


def test_a_namesake_of_a_default_head_or_sampler_leaves_the_tasks_that_name_none_alone(make_config):
    """A head registered as 'classification' made every classification task that names no head fail ("task 'rsg:terra'
    names head 'classification' ... ambiguous ... fix the task's definition"), a sampler 'proportional' every config
    without a sampler section: mtcore's defaults are looked up by their qualified ids."""
    from mtcore.model import MultitaskModel
    from mtcore.model.heads.classification import ClassificationHead
    from mtcore.plugins import load_registry, register_component
    from mtcore.sampling.samplers import ProportionalSampler
    from mtcore.train.config import TrainConfig
    from mtcore.train.validate import plan_run

    register_component("head", "classification", ClassificationHead, kinds=("pair_classification",))
    register_component("sampler", "proportional", ProportionalSampler)
    try:
        terra = load_registry(warn=False).task("rsg:terra")
        model = MultitaskModel(make_config()["encoder"]["path"], [terra])
        assert model.tasks["rsg:terra"]["head_id"] == "mtcore:classification"
        plan = plan_run(TrainConfig.model_validate(make_config()))
        assert plan.sampler_cls is ProportionalSampler and plan.task_ids
        spelled = make_config(sampler={"name": "proportional"})  # as a run's config.yaml spells the default out (resume)
        assert plan_run(TrainConfig.model_validate(spelled)).sampler_cls is ProportionalSampler
        theirs = make_config(sampler={"name": "user:proportional"})
        assert plan_run(TrainConfig.model_validate(theirs)).sampler_cls is ProportionalSampler  # reached by its id
    finally:
        registry = load_registry(warn=False)
        registry.components["head"].pop("user:classification", None)
        registry.components["sampler"].pop("user:proportional", None)


SENTINEL = 0.123456


def _sentinel(predictions, references, task):
    return SENTINEL


def test_a_metric_namesake_is_its_plugins_own_and_leaves_defaults_and_other_plugins_tasks_alone(make_config, tmp_path):
    """A metric registered as 'accuracy' made every task naming 'accuracy' ambiguous (nli's definitions name it, and so
    do the kinds' defaults): a bare name a task names is now its own plugin's namesake, else mtcore's; the defaults are
    always mtcore's (also when a saved model is evaluated); a qualified id reaches any."""
    from mtcore import Trainer
    from mtcore.plugins import load_registry, register_component
    from mtcore.predict import evaluate_path
    from mtcore.train.config import TrainConfig
    from mtcore.train.validate import plan_run

    register_component("metric", "accuracy", _sentinel, "a namesake of mtcore's")
    try:
        named_by_nli = make_config(tasks=[{"id": "nli:headline-cause-full", "source": "sample"}])
        assert plan_run(TrainConfig.model_validate(named_by_nli)).task_ids == ["nli:headline-cause-full"]
        tasks = make_config()["tasks"]
        tasks[1]["define"]["metrics"] = ["accuracy", "f1_macro"]  # a user task naming 'accuracy': user code's own
        tasks[2]["metrics"] = ["user:accuracy"]  # qualified: whoever's
        summary = Trainer(make_config(tasks=tasks, schedule={"max_steps": 2, "warmup_steps": 0}),
                          output_dir=tmp_path / "run").train()
        accuracy = {task: result["final"].get("accuracy") for task, result in summary["tasks"].items()}
        assert accuracy["user:sent"] != SENTINEL and 0 <= accuracy["user:sent"] <= 1  # the kind's default: mtcore's
        assert accuracy["user:pair"] == SENTINEL and summary["tasks"]["user:mc"]["final"]["user:accuracy"] == SENTINEL
        for scored in (evaluate_path(tmp_path / "run", tasks=["user:sent"]),  # the task as the run's config defines it
                       evaluate_path(shutil.copytree(tmp_path / "run" / "model", tmp_path / "model"), tasks=["user:sent"],
                                     input=tasks[0]["define"]["files"]["validation"])):  # as its manifest saved it
            assert scored.metrics["user:sent/accuracy"] == accuracy["user:sent"]  # the saved defaults are still mtcore's
        pair = evaluate_path(tmp_path / "model", tasks=["user:pair"], input=tasks[1]["define"]["files"]["validation"])
        assert pair.metrics["user:pair/accuracy"] == SENTINEL  # named by the task itself (as the kind's): still its own
    finally:
        load_registry(warn=False).components["metric"].pop("user:accuracy", None)
