"""A plugin's loss strategy and the engine: it may keep plain data through ``nn.Module.get_extra_state`` (checkpoints
hold it, safetensors + JSON, no pickle, and ``--resume`` gives it back; data a checkpoint cannot hold is one line
naming the strategy), and what its ``term`` / ``combine`` return is checked, with one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtcore import Trainer
from mtcore.errors import MtError
from mtcore.plugins import register_component
from mtcore.train.losses import LossStrategy


class CountingSum(LossStrategy):
    """A sum that counts its steps in plain Python state."""

    uses_weights = False
    resumed_with: dict | None = None

    def __init__(self, task_ids, weights=None, keep: str = "plain") -> None:
        super().__init__(task_ids, weights)
        self.steps, self.keep = 0, keep

    def begin_step(self, step, reduce_mean=None) -> None:
        self.steps += 1

    def term(self, task_id, loss):
        return loss

    def get_extra_state(self):
        return {"steps": self.steps, "names": ["a", "b"]} if self.keep == "plain" else {"steps": object()}

    def set_extra_state(self, state) -> None:
        self.steps = state["steps"]
        CountingSum.resumed_with = dict(state)


def test_extra_state_of_a_strategy_is_checkpointed_and_resumed(tmp_path: Path, make_config):
    register_component("loss", "counting_sum", CountingSum, "a sum counting its steps")
    config = make_config(loss={"strategy": "counting_sum"}, schedule={"max_steps": 4, "warmup_steps": 0},
                         checkpoint={"every": 2, "keep_last": 3})
    Trainer(config, output_dir=tmp_path / "run").train()
    import shutil

    shutil.rmtree(tmp_path / "run/checkpoints/step-000004")  # as if stopped after step 2's checkpoint
    (tmp_path / "run/summary.json").unlink()
    Trainer(config, output_dir=tmp_path / "run", resume=True).train()
    assert CountingSum.resumed_with == {"steps": 2, "names": ["a", "b"]}


def test_extra_state_a_checkpoint_cannot_hold_is_one_line_naming_the_strategy(tmp_path: Path, make_config):
    register_component("loss", "counting_sum_bad", CountingSum, "keeps an object")
    config = make_config(loss={"strategy": "counting_sum_bad", "options": {"keep": "object"}},
                         schedule={"max_steps": 2, "warmup_steps": 0}, checkpoint={"every": 2})
    with pytest.raises(MtError) as caught:
        Trainer(config, output_dir=tmp_path / "run").train()
    assert str(caught.value).startswith("loss strategy tests.train.test_strategy_contract.CountingSum keeps state") and "keeps state a checkpoint cannot hold: " in str(caught.value)
    assert "a object is neither a tensor nor plain data" in str(caught.value), caught.value


class VectorTerm(CountingSum):
    def term(self, task_id, loss):
        return loss.reshape(1).repeat(2)  # a vector: "grad can be implicitly created only for scalar outputs"


def _short_combiner():
    from mtcore.train.losses import GradientCombiner

    class ShortCombiner(GradientCombiner):
        uses_weights = False

        def combine(self, grads, step):
            return grads[0][:10]  # "shape [...] is invalid for input of size 10"

    return ShortCombiner


def _nan_combiner():
    from mtcore.train.losses import GradientCombiner

    class NaNCombiner(GradientCombiner):
        uses_weights = False

        def combine(self, grads, step):
            return grads[0] * float("nan")  # was blamed on a task's data at the next step

    return NaNCombiner


@pytest.mark.parametrize("name, factory, said", [
    ("vector_term", VectorTerm, "VectorTerm: term('user:pair', loss) returned a tensor of shape (2,); it returns one number as a "
                                "0-d float tensor"),
    ("short_combiner", _short_combiner(), "ShortCombiner: combine(grads, step) returned a tensor of shape (10,); it returns one flat "
                                          "gradient of the shared parameters, a 1-d tensor of "),
    ("nan_combiner", _nan_combiner(), "NaNCombiner: combine(grads, step) returned NaN or infinite values from finite gradients at "
                                      "step 1; fix that method"),
])
def test_what_a_strategy_returns_is_checked_and_the_error_names_it(tmp_path: Path, make_config, name, factory, said):
    register_component("loss", name, factory, "returns the wrong thing")
    config = make_config(loss={"strategy": name}, schedule={"max_steps": 1, "warmup_steps": 0}, checkpoint={"every": None})
    if name.endswith("_combiner"):
        config["sampler"] = {}
    with pytest.raises(MtError) as caught:
        Trainer(config, output_dir=tmp_path / "run").train()
    assert said in str(caught.value) and str(caught.value).startswith("loss strategy tests.train.test_strategy_contract."), caught.value


class TextWeights(CountingSum):
    logs_weights = True

    def task_weights(self):
        return "weights"  # was written into metrics.jsonl as it was


def test_task_weights_that_are_no_mapping_of_numbers_are_named(tmp_path: Path, make_config):
    register_component("loss", "text_weights", TextWeights, "logs a string")
    config = make_config(loss={"strategy": "text_weights"}, schedule={"max_steps": 1, "warmup_steps": 0}, checkpoint={"every": None})
    with pytest.raises(MtError, match=r"TextWeights: task_weights\(\) returned str 'weights'; it returns \{task id: weight\}"):
        Trainer(config, output_dir=tmp_path / "run").train()


class NaNTerm(CountingSum):
    def term(self, task_id, loss):
        return loss * float("nan")


def test_a_strategy_whose_term_is_nan_is_named_at_the_step_it_did_so(tmp_path: Path, make_config):
    """Only the task's own loss was watched: the NaN term ruined the weights at step 1 and the error came at step 2,
    blaming the task's data and the learning rate."""
    from mtcore.train.monitor import NonFiniteLossError

    register_component("loss", "nan_term", NaNTerm, "a NaN of every loss")
    config = make_config(loss={"strategy": "nan_term"}, schedule={"max_steps": 4, "warmup_steps": 0}, logging={"every": 2, "progress": "none", "plot": False})
    with pytest.raises(NonFiniteLossError, match=r"^loss strategy 'nan_term' made the loss of task '[^']+' NaN or infinite at step 1 "
                                                 r"\(the task's own loss was finite\); .*fix the strategy's term\(\), or choose another "
                                                 r"loss.strategy\)$"):
        Trainer(config, output_dir=tmp_path / "run").train()


def test_a_combination_that_overflows_on_gradients_too_large_to_square_is_left_to_the_nan_check():
    """PCGrad's float32 dot products of gradients of norm ~1e20 overflow: a diverged run, not the combiner's fault."""
    import torch

    from mtcore.train.losses import project_conflicting
    from mtcore.train.strategy_checks import checked_combined

    huge = [torch.full((4,), 1e20), torch.tensor([-1e20, 1e20, -1e20, 1e20])]
    combined = project_conflicting(huge, torch.Generator().manual_seed(0))
    assert not bool(combined.isfinite().all())
    assert checked_combined(CountingSum(["a", "b"]), combined, huge, step=3) is combined
    with pytest.raises(MtError, match=r"combine\(grads, step\) returned NaN or infinite values from finite gradients at step 3"):
        checked_combined(CountingSum(["a", "b"]), torch.full((4,), float("nan")), [torch.ones(4), torch.ones(4)], step=3)
