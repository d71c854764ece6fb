"""The seed's motivational example runs on mtcore with only its imports (and data paths) changed."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from authoring.rsg_files import rsg_data_files, write_rsg
from mtcore.errors import ConfigError
from mtcore.testing import build_tiny_encoder

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "seed_port.py"


@pytest.fixture(scope="module")
def seed_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("seed")
    encoder = build_tiny_encoder(root / "encoder", "bert")
    data = write_rsg(root / "RussianSuperGLUE")
    return encoder, data


def test_the_ported_seed_example_runs_to_completion(seed_inputs, tmp_path):
    encoder, data = seed_inputs
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLE), str(encoder), str(data)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = re.findall(r"^Training loss: (\S+) on task (\w+)$", done.stdout, flags=re.M)
    finished = re.search(r"^finished (\d+) of (\d+) steps$", done.stdout, flags=re.M)
    assert finished, done.stdout[-2000:]
    steps, total = int(finished.group(1)), int(finished.group(2))
    assert steps == total == len(losses) > 0
    assert {task for _, task in losses} == {"danetqa", "terra"}
    assert all(math.isfinite(float(value)) for value, _ in losses)


def test_seed_api_builds_tasks_data_heads_and_tracks_the_model(seed_inputs, tmp_path):
    import torch
    from datasets import load_dataset

    from mt_russian_superglue import preprocess_danetqa
    from mtcore.model import MultitaskModel as CoreModel
    from mtcore.seed import (MultitaskBatchSampler, MultitaskModel, NLIPreprocess, Preprocessor, SequenceClassificationTask,
                             Tasks, TokenizerConfig)

    encoder, data = seed_inputs
    cfg = TokenizerConfig(max_length=24)
    danetqa = SequenceClassificationTask("danetqa", load_dataset("json", data_files=rsg_data_files(data, "DaNetQA"), cache_dir=str(tmp_path)),
                                         Preprocessor([preprocess_danetqa]), cfg)
    terra = SequenceClassificationTask("terra", load_dataset("json", data_files=rsg_data_files(data, "TERRa"), cache_dir=str(tmp_path)),
                                       Preprocessor([NLIPreprocess()]), cfg)
    tasks = Tasks([danetqa, terra], str(encoder), cache_dir=str(tmp_path / "tok"))

    # labels read from the data: JSON booleans keep their stored form, strings are sorted
    assert tasks.heads["danetqa"].labels == ("False", "True") and tasks.heads["danetqa"].label_values == (False, True)
    assert tasks.heads["terra"].labels == ("entailment", "not_entailment")
    assert {t.kind.value for t in tasks.heads.values()} == {"pair_classification"}
    # every split is tokenized; test rows have no label but are kept; max_length is honoured
    terra_data = tasks.data["terra"]
    assert set(terra_data.splits) == {"train", "validation", "test"}
    assert list(terra_data.splits["test"]["labels"]) == [-1] * 5
    assert max(terra_data.lengths("train")) <= 24

    model = MultitaskModel(str(encoder), tasks.heads)
    assert tasks.model is model and isinstance(model, CoreModel)
    assert model.tokenizer is tasks.tokenizer
    sampler = MultitaskBatchSampler(tasks.data, "train", batch_size=12)
    batch = next(iter(sampler))
    assert batch.data.to(torch.device("cpu")) is batch.data
    model.train()
    loss = model.forward(batch.name, **batch.data).loss
    assert loss is not None and torch.isfinite(loss)

    saved = model.save_pretrained(tmp_path / "model")
    reloaded = CoreModel.from_pretrained(saved)
    assert set(reloaded.heads.keys()) == {"danetqa", "terra"}


def test_tasks_model_is_built_lazily_once_when_none_was_built(seed_inputs, tmp_path):
    from datasets import load_dataset

    from mtcore.seed import NLIPreprocess, Preprocessor, SequenceClassificationTask, Tasks

    encoder, data = seed_inputs
    terra = SequenceClassificationTask("terra", load_dataset("json", data_files=rsg_data_files(data, "TERRa"), cache_dir=str(tmp_path)),
                                       Preprocessor([NLIPreprocess()]))
    tasks = Tasks([terra], str(encoder), cache_dir=str(tmp_path / "tok"))
    first = tasks.model
    assert first is tasks.model
    assert list(first.heads.keys()) == ["terra"]


def test_seed_task_mistakes_are_one_line_errors(seed_inputs, tmp_path):
    from datasets import Dataset, DatasetDict

    from mtcore.seed import NLIPreprocess, SequenceClassificationTask, TokenizerConfig

    with pytest.raises(ConfigError, match="split 'val' is not one of"):
        SequenceClassificationTask("x", DatasetDict({"train": Dataset.from_list([{"text": "a", "label": 0}]),
                                                     "val": Dataset.from_list([{"text": "a", "label": 0}])}))
    one_label = SequenceClassificationTask("x", DatasetDict({"train": Dataset.from_list([{"premise": "a", "hypothesis": "b", "label": "yes"}] * 3)}),
                                           [NLIPreprocess()])
    with pytest.raises(ConfigError, match=r"pass labels=\[\.\.\.\]") as info:
        one_label.to_task()
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="max_length"):
        TokenizerConfig(max_length=2)
