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
            "local": Source("local", "mt_sentiment.loaders:load_mokoron", options,
                            "positive.csv + negative.csv under data_dir (';'-separated, quoted, no header), split 80/10/10 with seed 42"),
            "sample": Source("sample", "mt_sentiment.loaders:load_mokoron", sample, "shipped synthetic sample (official layout), split 60/20/20"),
        },
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=128,
        id_field="id",
        metadata={
            "size": {"positive": 114911, "negative": 111923, "total": 226834},
            "split": "no official split: seeded stratified 80/10/10 (source options seed=42, proportions); "
                     f"default sizes {MOKORON_SPLIT_SIZES}",
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
            "local": Source("local", "mt_sentiment.loaders:load_rusentiment", options,
                            "rusentiment_random_posts.csv (train) + rusentiment_test.csv (test) under data_dir; 10% of train held out (seed 42)"),
            "sample": Source("sample", "mt_sentiment.loaders:load_rusentiment", sample, "shipped synthetic sample (official layout)"),
        },
        metrics=("f1_macro", "f1_micro", "accuracy"),
        main_metric="f1_macro",
        max_length=256,
        id_field=None,
        metadata={
            "size": {"train (random posts)": 21268, "test": 2967, "also available": "rusentiment_preselected_posts.csv, 6950"},
            "url": "https://github.com/text-machine-lab/rusentiment",
            "licence": "available on request from the authors, research use under their terms",
            "note": "the paper reports weighted F1; the validation split is held out of the training file",
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
