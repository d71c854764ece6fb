"""A third-party plugin implementing every hook with real components, used in a real training run.

Nothing in mtcore is touched: the plugin is written here, installed with pip into a folder, and
``mt train`` picks its task, head, sampler, loss strategy and metric by name; ``mt predict
--format`` uses its writer for the trained model's predictions. ``tests/test_hook_docs.py`` checks that this file
implements every hook.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import resources

from clitools import MT, clean_env

PLUGIN = "allhooks"
PACKAGE = "mt_authoring_allhooks"

PLUGIN_PY = '''
"""Every hook, lazily: nothing heavy is imported here."""
from mtcore.hookspecs import hookimpl
from mtcore.task import Source, Task

C = "mt_authoring_allhooks.components"


@hookimpl
def mt_register_tasks(register):
    register(Task(name="reviews", kind="text_classification", labels=("negative", "positive"), inputs={"text": "review"},
                  sources={"sample": Source.sample("mt_authoring_allhooks", "jsonl", {"train": "sample/train.jsonl", "validation": "sample/validation.jsonl"})},
                  head="attention_pool", metrics=("accuracy", "balanced_accuracy"), main_metric="balanced_accuracy",
                  writer="lines", max_length=32))


@hookimpl
def mt_register_heads(register):
    register("attention_pool", f"{C}:AttentionPoolHead", "learned attention pooling + linear", kinds=("text_classification", "pair_classification"))


@hookimpl
def mt_register_samplers(register):
    register("squared", f"{C}:SquaredSizeSampler", "p_i ~ n_i^2")


@hookimpl
def mt_register_loss_strategies(register):
    register("halved", f"{C}:HalvedLoss", "one task per step, half its loss")


@hookimpl
def mt_register_metrics(register):
    register("balanced_accuracy", f"{C}:balanced_accuracy", "mean recall over classes")


@hookimpl
def mt_register_writers(register):
    register("lines", f"{C}:write_lines", "idx<TAB>label lines")
'''

COMPONENTS_PY = '''
"""The plugin's components: imported only when a run uses them."""
import numpy as np
import torch
from torch import nn

from mtcore.model.heads.base import Head, HeadOutput
from mtcore.model.heads.losses import classification_loss
from mtcore.sampling.base import Sampler
from mtcore.train.losses import LossStrategy


class AttentionPoolHead(Head):
    kinds = ("text_classification", "pair_classification")

    def __init__(self, hidden_size, num_labels):
        super().__init__(hidden_size, num_labels)
        self.score = nn.Linear(hidden_size, 1)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden_states, attention_mask, *, pooler_output=None, labels=None, num_choices=None):
        scores = self.score(hidden_states).squeeze(-1).masked_fill(attention_mask == 0, -1e4)
        pooled = (torch.softmax(scores, dim=-1).unsqueeze(-1) * hidden_states).sum(1)
        logits = self.classifier(pooled)
        loss = classification_loss(logits, labels, training=self.training) if labels is not None else None
        return HeadOutput(logits=logits, loss=loss)


class SquaredSizeSampler(Sampler):
    name = "squared"

    def probabilities(self, epoch):
        return np.asarray([self.sizes[t] ** 2 for t in self.tasks], dtype=np.float64)


class HalvedLoss(LossStrategy):
    batches = "single"

    def term(self, task_id, loss):
        return 0.5 * loss


def balanced_accuracy(predictions, references, task):
    recalls = [float(np.mean(predictions[references == c] == c)) for c in np.unique(references)]
    return float(np.mean(recalls))


def write_lines(task, rows, output_path):
    with open(output_path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(f"{row['idx']}\\t{row['label']}\\n")
    return [output_path]
'''

PYPROJECT = f'''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "mt-authoring-allhooks"
version = "0.0.1"

[project.entry-points.mtcore]
{PLUGIN} = "{PACKAGE}.plugin"

[tool.setuptools.packages.find]
include = ["{PACKAGE}*"]

[tool.setuptools.package-data]
{PACKAGE} = ["sample/*.jsonl"]
'''


def _write_plugin(root):
    package = root / PACKAGE
    (package / "sample").mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(textwrap.dedent(PLUGIN_PY))
    (package / "components.py").write_text(textwrap.dedent(COMPONENTS_PY))
    template = resources.files("mtcore").joinpath("templates", "plugin", "__package__", "sample")
    for name in ("train.jsonl", "validation.jsonl"):
        (package / "sample" / name).write_bytes(template.joinpath(name).read_bytes())


def test_a_plugin_using_every_hook_trains_evaluates_and_writes_predictions(tmp_path):
    _write_plugin(tmp_path / "plugin")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--target", str(site), str(tmp_path / "plugin")], check=True, capture_output=True, text=True)
    env = clean_env(PYTHONPATH=str(site), OMP_NUM_THREADS="1", HF_DATASETS_CACHE=str(tmp_path / "hf-cache"), MT_STRICT_PLUGINS="1")

    config = {"seed": 1, "cpu": True, "encoder": {"tiny": "bert"},
              "tasks": [f"{PLUGIN}:reviews", {"id": "rsg:terra", "source": "sample", "max_length": 64}],
              "sampler": {"name": "squared"}, "loss": {"strategy": "halved"},
              "schedule": {"max_steps": 6}, "batching": {"batch_size": 4},
              "checkpoint": {"every": None}, "logging": {"every": 1, "progress": "none", "plot": False}}
    (tmp_path / "train.yaml").write_text(json.dumps(config))
    run_dir = tmp_path / "run"
    done = subprocess.run([MT, "train", str(tmp_path / "train.yaml"), "--output-dir", str(run_dir)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    summary = json.loads((run_dir / "summary.json").read_text())
    reviews = summary["tasks"][f"{PLUGIN}:reviews"]
    assert reviews["main_metric"] == "balanced_accuracy"
    assert 0.0 <= reviews["final"]["balanced_accuracy"] <= 1.0
    manifest = json.loads((run_dir / "model" / "mtcore.json").read_text())
    assert manifest["tasks"][f"{PLUGIN}:reviews"]["head_class"].endswith(":AttentionPoolHead")
    trained_on = [json.loads(line)["task"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
                  if json.loads(line).get("event") == "train"]
    assert set(trained_on) == {f"{PLUGIN}:reviews", "rsg:terra"}

    # the writer: `mt predict --format lines` writes the trained model's predictions in the plugin's format
    (tmp_path / "new.jsonl").write_text('{"idx": 7, "review": "works well"}\n{"idx": 8, "review": "broke"}\n')
    output = tmp_path / "predictions.tsv"
    wrote = subprocess.run([MT, "predict", str(run_dir / "model"), "--task", f"{PLUGIN}:reviews", "--input", str(tmp_path / "new.jsonl"),
                            "--format", "lines", "--output", str(output), "--device", "cpu"], env=env, capture_output=True, text=True, timeout=300)
    assert wrote.returncode == 0, wrote.stderr[-3000:]
    lines = output.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["7", "8"]
    assert {line.split("\t")[1] for line in lines} <= {"negative", "positive"}
