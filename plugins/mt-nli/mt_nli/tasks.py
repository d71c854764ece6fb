"""The NLI task specs: plain data, nothing heavy imported.

* ``xnli-ru`` — the Russian part of XNLI (hub ``facebook/xnli`` config ``ru``, or the official
  XNLI-1.0 / XNLI-MT-1.0 files);
* ``headline-cause-simple`` / ``headline-cause-full`` — HeadlineCause (Russian), 3 or 7 classes,
  with an optional left/right swap augmentation of the training split (source option
  ``swap_augment``);
* ``nli`` — your own premise/hypothesis data (the seed's ``NLIPreprocess``, generalised): files
  ``train.*``, ``validation.*``, ``test.*`` under ``data_dir`` (or ``sources.local.files``), and
  ``inputs`` / ``labels`` when your fields differ.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mtcore.errors import ConfigError
from mtcore.task import OWN_DATA_USAGE, Source, Task, own_data_sources

from mt_nli.augment import FULL_LABELS, SIMPLE_LABELS

PACKAGE = "mt_nli"
SAMPLE_NOTE = "synthetic, for demos and tests"
NLI_LABELS = ("entailment", "neutral", "contradiction")

XNLI_FILES = {
    "train": "XNLI-MT-1.0/multinli/multinli.train.ru.tsv",
    "validation": "XNLI-1.0/xnli.dev.tsv",
    "test": "XNLI-1.0/xnli.test.tsv",
}
HEADLINE_CAUSE_HUB = "IlyaGusev/headline_cause"
HEADLINE_CAUSE_FILES = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}
HEADLINE_CAUSE_LOADER = "mt_nli.loaders:load_headline_cause"


def xnli_task() -> Task:
    """``xnli-ru``: premise/hypothesis, 3 classes; the train file's ``contradictory`` is an alias."""
    official = {"files": dict(XNLI_FILES), "language": "ru"}
    sample = {"package": PACKAGE, "files": {s: f"sample/{p}" for s, p in XNLI_FILES.items()}, "language": "ru", "quoting": "none"}
    return Task(
        name="xnli-ru",
        kind="pair_classification",
        description="XNLI, Russian: entailment / neutral / contradiction (train machine-translated from MultiNLI)",
        labels=NLI_LABELS,
        label_aliases={"contradictory": "contradiction"},
        inputs={"text": "premise", "text_pair": "hypothesis"},
        sources={
            "hub": Source.hub("facebook/xnli", "ru"),
            "local": Source("local", "mt_nli.loaders:load_xnli_official", official,
                            "official files: XNLI-1.0/xnli.{dev,test}.tsv (language == 'ru') and XNLI-MT-1.0/multinli/multinli.train.ru.tsv"),
            "sample": Source("sample", "mt_nli.loaders:load_xnli_official", sample, "shipped synthetic sample (official layout)"),
        },
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=128,
        metadata={
            "size": {"train": 392702, "validation": 2490, "test": 5010},
            "url": "https://github.com/facebookresearch/XNLI",
            "licence": "CC BY-NC 4.0 (XNLI); the train set is machine-translated MultiNLI",
            "sample": SAMPLE_NOTE,
        },
    )


def _headline_sources(scheme: str) -> dict[str, Source]:
    config = f"ru_{scheme}"
    hub = {"via": "hub", "path": HEADLINE_CAUSE_HUB, "revision": "refs/convert/parquet", "data_dir": config, "swap_augment": False}
    files = {split: f"ru/{scheme}/{name}" for split, name in HEADLINE_CAUSE_FILES.items()}
    local = {"via": "local", "format": "jsonl", "files": files, "swap_augment": False}
    sample = {"via": "sample", "package": PACKAGE, "format": "jsonl", "files": {s: f"sample/{p}" for s, p in files.items()}, "swap_augment": False}
    return {
        "hub": Source("hub", HEADLINE_CAUSE_LOADER, hub, f"hub {HEADLINE_CAUSE_HUB} (Parquet export, {config})"),
        "local": Source("local", HEADLINE_CAUSE_LOADER, local, f"raw files ru/{scheme}/{{train,val,test}}.jsonl under data_dir"),
        "sample": Source("sample", HEADLINE_CAUSE_LOADER, sample, "shipped synthetic sample (raw-file layout)"),
    }


def headline_cause_task(scheme: str) -> Task:
    """``headline-cause-simple`` (3 classes) or ``headline-cause-full`` (7 classes)."""
    labels = SIMPLE_LABELS if scheme == "simple" else FULL_LABELS
    sizes: dict[str, Any] = {"train": 7641, "validation": 955, "test": 957} if scheme == "simple" else "see the dataset card"
    return Task(
        name=f"headline-cause-{scheme}",
        kind="pair_classification",
        description=f"HeadlineCause (Russian, {scheme}): is one news headline the cause of the other? ({len(labels)} classes)",
        labels=labels,
        label_values=tuple(range(len(labels))),  # the files store the class id: predictions write it, as the raw `label`
        inputs={"text": "left_title", "text_pair": "right_title"},
        sources=_headline_sources(scheme),
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=128,
        id_field="id",
        metadata={
            "size": sizes,
            "url": "https://huggingface.co/datasets/IlyaGusev/headline_cause",
            "licence": "annotations CC0 1.0; the headlines themselves are not openly licensed (see the dataset card)",
            "augmentation": "source option swap_augment=true adds every training pair swapped (labels mirrored)",
            "sample": SAMPLE_NOTE,
        },
    )


def with_swap_augment(task: Task, enabled: bool = True) -> Task:
    """A copy of a HeadlineCause task whose sources add the swapped training pairs (or not)."""
    if not task.name.startswith("headline-cause-"):
        raise ConfigError(f"swap augmentation is for the HeadlineCause tasks, not {task.id!r}")
    sources = {name: dataclasses.replace(src, options={**src.options, "swap_augment": bool(enabled)}) for name, src in task.sources.items()}
    return task.replace(sources=sources)


def generic_nli_task() -> Task:
    """``nli``: bring your own premise/hypothesis files (format from each file's extension)."""
    return Task(
        name="nli",
        kind="pair_classification",
        description="your own NLI data: premise / hypothesis -> entailment / neutral / contradiction (train.*, validation.*, test.* in data_dir)",
        labels=NLI_LABELS,
        label_aliases={"contradictory": "contradiction"},
        inputs={"text": "premise", "text_pair": "hypothesis"},
        sources=own_data_sources(PACKAGE, "sample/nli"),
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=256,
        metadata={"sample": SAMPLE_NOTE, "usage": OWN_DATA_USAGE},
    )


def build_tasks() -> list[Task]:
    """The four tasks this plugin provides."""
    return [xnli_task(), headline_cause_task("simple"), headline_cause_task("full"), generic_nli_task()]
