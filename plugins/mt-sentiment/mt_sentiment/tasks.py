"""The sentiment task specs: plain data, nothing heavy imported.

* ``mokoron`` — RuTweetCorp (positive.csv / negative.csv, no official split: a seeded stratified
  80/10/10 split made by ``mt_sentiment.loaders:load_mokoron``; source options ``seed`` and
  ``proportions`` change it);
* ``rusentiment`` — RuSentiment (files available from the authors on request; train + test, a
  seeded stratified validation share held out of train);
* ``sentiment`` — your own CSV/JSONL/TSV/Parquet: ``train.*``, ``validation.*``, ``test.*`` under
  ``data_dir`` (or ``sources.local.files``); ``inputs`` and ``labels`` when yours differ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mtcore.task import OWN_DATA_USAGE, Source, Task, own_data_sources

PACKAGE = "mt_sentiment"
SAMPLE_NOTE = "synthetic, for demos and tests"
DEFAULT_SEED = 42

MOKORON_COLUMNS = ("id", "tdate", "tname", "ttext", "ttype", "trep", "trtw", "tfav", "tstcount", "tfoll", "tfrien", "listcount")
MOKORON_FILES = {"positive": "positive.csv", "negative": "negative.csv"}
MOKORON_PROPORTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
#: What the default split gives on the full corpus (114,911 positive + 111,923 negative rows).
MOKORON_SPLIT_SIZES = {"train": 181468, "validation": 22683, "test": 22683}

RUSENTIMENT_LABELS = ("positive", "negative", "neutral", "speech", "skip")
RUSENTIMENT_FILES = {"train": "rusentiment_random_posts.csv", "test": "rusentiment_test.csv"}


def _shares(proportions: Any) -> str:
    """``{"train": 0.8, "validation": 0.1, "test": 0.1}`` -> ``"80/10/10"`` (as given when not a mapping of numbers)."""
    try:
        return "/".join(f"{float(v) * 100:g}" for v in dict(proportions).values())
    except (TypeError, ValueError):
        return repr(proportions)


def describe_mokoron_split(options: Mapping[str, Any]) -> str:
    return f"split {_shares(options.get('proportions'))} with seed {options.get('seed')!r}"


def describe_rusentiment_split(options: Mapping[str, Any]) -> str:
    share = options.get("validation_share")
    try:
        if not float(share):
            return "no validation split held out of train (validation_share 0)"
        return f"{float(share) * 100:g}% of train held out as validation (seed {options.get('seed')!r})"
    except (TypeError, ValueError):
        return f"validation_share {share!r} of train held out (seed {options.get('seed')!r})"


@dataclass(frozen=True)
class SplitSource(Source):
    """A Source whose description ends with how its split is made, rebuilt from its options whenever they
    change (a config's ``sources.local.seed: 7`` makes a copy of it), so that the model's ``mtcore.json``
    records the split really made, not the default one."""

    what: str = ""
    describe_split: Callable[[Mapping[str, Any]], str] = field(default=describe_mokoron_split, compare=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "description", f"{self.what}, {self.describe_split(self.options)}")


def mokoron_task() -> Task:
    """``mokoron``: tweets labelled by emoticon, ttype 1 / -1 -> positive / negative."""
    # "corpus_files", not "files": these files are not splits (mtcore reads a source's "files" keys as split names).
    options = {"format": "csv", "sep": ";", "header": None, "corpus_files": dict(MOKORON_FILES), "seed": DEFAULT_SEED, "proportions": dict(MOKORON_PROPORTIONS)}
    # The small sample gets 60/20/20 so that each of its splits has at least 50 rows.
    sample = {**options, "package": PACKAGE, "corpus_files": {k: f"sample/mokoron/{v}" for k, v in MOKORON_FILES.items()},
              "proportions": {"train": 0.6, "validation": 0.2, "test": 0.2}}
    return Task(
        name="mokoron",
        kind="text_classification",
        description="RuTweetCorp (mokoron): positive / negative tweets, seeded stratified split",
        labels=("negative", "positive"),
        inputs={"text": "ttext"},
        sources={
            "local": SplitSource("local", "mt_sentiment.loaders:load_mokoron", options,
                                 what="positive.csv + negative.csv under data_dir (';'-separated, quoted, no header)"),
            "sample": SplitSource("sample", "mt_sentiment.loaders:load_mokoron", sample, what="shipped synthetic sample (official layout)"),
        },
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=128,
        id_field="id",
        metadata={
            "size": {"positive": 114911, "negative": 111923, "total": 226834},
            "split": "no official split: seeded stratified, by default 80/10/10 with seed 42 (source options seed, "
                     f"proportions; the source's description records the split used); default sizes {MOKORON_SPLIT_SIZES}",
            "url": "https://study.mokoron.com/",
            "licence": "free for research use (Rubtsova, RuTweetCorp); cite the corpus paper",
            "sample": SAMPLE_NOTE,
        },
    )


def rusentiment_task() -> Task:
    """``rusentiment``: VK posts, five classes; files from the authors (available on request)."""
    options = {"format": "csv", "files": dict(RUSENTIMENT_FILES), "seed": DEFAULT_SEED, "validation_share": 0.1}
    sample = {**options, "package": PACKAGE, "files": {k: f"sample/rusentiment/{v}" for k, v in RUSENTIMENT_FILES.items()}, "validation_share": 0.25}
    return Task(
        name="rusentiment",
        kind="text_classification",
        description="RuSentiment: sentiment of VK posts (positive, negative, neutral, speech act, skip)",
        labels=RUSENTIMENT_LABELS,
        inputs={"text": "text"},
        sources={
            "local": SplitSource("local", "mt_sentiment.loaders:load_rusentiment", options,
                                 what="rusentiment_random_posts.csv (train) + rusentiment_test.csv (test) under data_dir",
                                 describe_split=describe_rusentiment_split),
            "sample": SplitSource("sample", "mt_sentiment.loaders:load_rusentiment", sample, what="shipped synthetic sample (official layout)",
                                  describe_split=describe_rusentiment_split),
        },
        metrics=("f1_macro", "f1_weighted", "f1_micro", "accuracy"),
        main_metric="f1_macro",
        max_length=256,
        metadata={
            "size": {"train (random posts)": 21268, "test": 2967, "also available": "rusentiment_preselected_posts.csv, 6950"},
            "url": "https://github.com/text-machine-lab/rusentiment",
            "licence": "available on request from the authors, research use under their terms",
            "note": "the paper reports weighted F1 (f1_weighted); the validation split is held out of the training file",
            "sample": SAMPLE_NOTE,
        },
    )


def generic_sentiment_task() -> Task:
    """``sentiment``: bring your own CSV/JSONL (format from the file extension)."""
    return Task(
        name="sentiment",
        kind="text_classification",
        description="your own sentiment data: text -> negative / neutral / positive (train.*, validation.*, test.* in data_dir)",
        labels=("negative", "neutral", "positive"),
        inputs={"text": "text"},
        sources=own_data_sources(PACKAGE, "sample/sentiment"),
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=256,
        metadata={"sample": SAMPLE_NOTE, "usage": OWN_DATA_USAGE},
    )


def build_tasks() -> list[Task]:
    """The three tasks this plugin provides."""
    return [mokoron_task(), rusentiment_task(), generic_sentiment_task()]
