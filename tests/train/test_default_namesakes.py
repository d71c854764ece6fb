"""mtcore's defaults (a task kind's head, the sampler) are looked up by their qualified ids: a plugin's or user code's
namesake leaves the tasks and configs that name none alone (a Python API audit's finding)."""

from __future__ import annotations


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
