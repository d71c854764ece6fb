"""Seed notebooks ported literally (an audit against the seed's own source): a step that relabels a ClassLabel column,
the notebooks' ``only_head=``, ``tasks.model(encoder_path)``, seed positional arguments in mtcore's slots, the seed's
``NLinearsHead(...)`` and ``MultitaskMetabatchSampler``."""

from __future__ import annotations

import pytest

from mtcore.errors import ConfigError
from mtcore.testing import build_tiny_encoder

WORDS = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 good bad".split()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return str(build_tiny_encoder(tmp_path_factory.mktemp("enc") / "encoder", "bert", words=WORDS))


def _three_classes():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "neu", "pos"])})
    return DatasetDict({"train": Dataset.from_list([{"text": f"w{i % 10}", "label": i % 3} for i in range(30)], features=features)})


def positive_vs_rest(row):
    return {**row, "label": 1 if row["label"] == 2 else 0}


def test_a_step_that_relabels_a_classlabel_column_names_the_classes_from_its_values(encoder):
    """The raw ClassLabel names were kept: 3 outputs, and class 1 ('pos' after the step) named 'neu'."""
    from mtcore.seed import Preprocessor, SequenceClassificationTask, Tasks

    data = _three_classes()
    task = SequenceClassificationTask("pos", data, Preprocessor([positive_vs_rest]))
    assert task.to_task().labels == ("0", "1")
    assert SequenceClassificationTask("pos2", data, Preprocessor([positive_vs_rest]), num_labels=2).to_task().num_labels == 2
    unchanged = SequenceClassificationTask("three", data, Preprocessor([lambda row: {**row, "text": row["text"].upper()}]))
    assert unchanged.to_task().labels == ("neg", "neu", "pos")  # a step that keeps the label keeps the names
    assert Tasks([task], encoder).heads["pos"].labels == ("0", "1")


def test_the_notebooks_forward_call_and_tasks_model_call(encoder):
    from mtcore.seed import MultitaskBatchSampler, MultitaskModel, Preprocessor, SequenceClassificationTask, Tasks

    tasks = Tasks([SequenceClassificationTask("pos", _three_classes(), Preprocessor([positive_vs_rest]))], encoder)
    model = MultitaskModel(encoder, tasks.heads)
    batch = next(iter(MultitaskBatchSampler(tasks.data, "train", batch_size=4)))
    loss = model.forward(batch.name, only_head={"labels"}, **batch.data).loss  # custom_head.ipynb, sum_losses.ipynb
    assert loss.item() > 0
    with pytest.raises(ConfigError, match=r"looks like an encoder path, not a task: the seed's tasks.model\(encoder_path\) built"):
        tasks.model(encoder)


def test_seed_positional_arguments_in_mtcores_slots_name_the_seeds_field(encoder):
    from mtcore.seed import (MetabatchSampler, MultitaskBatchSampler, NLinearsSequenceClassificationTask, Preprocessor,
                             SequenceClassificationTask, Tasks, TokenizerConfig)

    data = _three_classes()
    with pytest.raises(ConfigError, match=r"the seed put num_layers there\); write num_layers=3"):
        NLinearsSequenceClassificationTask("x", data, 3)
    with pytest.raises(ConfigError, match=r"the seed put num_labels there\); write num_labels=3"):
        SequenceClassificationTask("x", data, 3)
    with pytest.raises(ConfigError, match=r"the seed's init_config there; write init_config=\{'use_fast': True\}"):
        TokenizerConfig({"use_fast": True})
    tasks = Tasks([SequenceClassificationTask("pos", data, Preprocessor([positive_vs_rest]))], encoder)
    for sampler in (MultitaskBatchSampler, MetabatchSampler):
        with pytest.raises(ConfigError, match=r"is the seed's parts \(a split per task\) there; write parts=\{'pos': 'train'\}"):
            sampler(tasks.data, "train", {"pos": "train"})


def test_the_seeds_nlinears_head_built_by_hand_and_its_sampler_name():
    from mtcore.seed import MetabatchSampler, MultitaskMetabatchSampler, NLinearsHead
    from mtcore.seed.classification import _head_name

    assert MultitaskMetabatchSampler is MetabatchSampler and _head_name(NLinearsHead) == "mlp"
    with pytest.raises(ConfigError, match=r"NLinearsHead\(dropout=\.\.\., encoder_hidden_size=\.\.\., output_size=\.\.\.\): mtcore builds"):
        NLinearsHead(num_layers=2, dropout=0.1, output_size=3, encoder_hidden_size=32)
