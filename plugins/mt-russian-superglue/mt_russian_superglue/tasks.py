"""The Russian SuperGLUE task specs: plain data, nothing heavy imported.

Every task reads three sources:

* ``hub`` — the Hugging Face Parquet export of ``RussianNLP/russian_super_glue`` (the main
  branch holds a loading script that datasets >= 4 refuses), config in ``data_dir``;
* ``local`` — the official files under ``data_dir``: the per-task zip layout
  ``<Task>/train.jsonl, val.jsonl, test.jsonl`` or the all-tasks zip's ``combined/<Task>/``
  (``__MACOSX/`` ignored, a byte-order mark accepted);
* ``sample`` — a small synthetic sample shipped in this package, in the official layout.
"""

from __future__ import annotations

import dataclasses

from mtcore.task import Source, Task

HUB_PATH = "RussianNLP/russian_super_glue"
HUB_REVISION = "refs/convert/parquet"
SAMPLE_PACKAGE = "mt_russian_superglue"
SAMPLE_NOTE = "synthetic, for demos and tests"
LICENCE = "MIT per the Hugging Face dataset card; see russiansuperglue.com for each task's terms"
ENCODING = "utf-8-sig"  # the official baselines read the files this way: a BOM must be accepted

#: Official file name of each canonical split (LiDiRus ships a single labelled file).
OFFICIAL_FILES = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}
LIDIRUS_FILES = {"test": "LiDiRus.jsonl"}

#: Task name -> the official folder / submission file stem.
OFFICIAL_NAMES = {"danetqa": "DaNetQA", "terra": "TERRa", "parus": "PARus", "rcb": "RCB", "lidirus": "LiDiRus",
                  "russe": "RUSSE", "rwsd": "RWSD", "muserc": "MuSeRC", "rucos": "RuCoS"}

#: Tasks whose official files nest rows in a passage: the reader's ``row_expand`` flattens them as the export does.
ROW_EXPANDERS = {"muserc": "mt_russian_superglue.nested:muserc_rows", "rucos": "mt_russian_superglue.nested:rucos_rows"}


def candidate_paths(folder: str, file_name: str) -> list[str]:
    """Where the official file of one split may be, relative to ``data_dir``, in order of preference."""
    return [f"{folder}/{file_name}", f"combined/{folder}/{file_name}", f"*/{folder}/{file_name}", file_name]


def rsg_sources(name: str) -> dict[str, Source]:
    """The hub, local and sample sources of the task ``name`` (a key of :data:`OFFICIAL_NAMES`)."""
    folder = OFFICIAL_NAMES[name]
    files = LIDIRUS_FILES if name == "lidirus" else OFFICIAL_FILES
    hub_splits = {"test": "test"} if name == "lidirus" else None
    expand = {"row_expand": ROW_EXPANDERS[name]} if name in ROW_EXPANDERS else {}
    local = Source(
        "local",
        "mt_russian_superglue.loaders:load_rsg_files",
        {"format": "jsonl", "files": {split: candidate_paths(folder, f) for split, f in files.items()}, "encoding": ENCODING, **expand},
        f"official files: {folder}/{'|'.join(files.values())} (or combined/{folder}/...) under data_dir",
    )
    sample_files = {split: f"sample/{folder}/{f}" for split, f in files.items()}
    return {
        "hub": dataclasses.replace(Source.hub(HUB_PATH, revision=HUB_REVISION, data_dir=name, splits=hub_splits),
                                   loader="mt_russian_superglue.loaders:load_rsg_hub"),  # its warnings about RUSSE/RWSD test rows
        "local": local,
        "sample": Source.sample(SAMPLE_PACKAGE, "jsonl", sample_files, encoding=ENCODING, description="shipped synthetic sample (official layout)",
                                **expand),
    }


def _metadata(name: str, sizes: dict[str, int], **extra: object) -> dict[str, object]:
    return {
        "size": sizes,
        "url": f"https://russiansuperglue.com/tasks/task_info/{OFFICIAL_NAMES[name]}",
        "licence": LICENCE,
        "sample": SAMPLE_NOTE,
        **extra,
    }


def build_tasks() -> list[Task]:
    """The nine Russian SuperGLUE tasks this plugin provides."""
    danetqa = Task(
        name="danetqa",
        kind="pair_classification",
        description="DaNetQA: yes/no question answering over a Wikipedia passage",
        labels=("False", "True"),
        label_values=(False, True),
        inputs={"text": "question", "text_pair": "passage"},
        sources=rsg_sources("danetqa"),
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=512,
        writer="rsg",
        metadata=_metadata("danetqa", {"train": 1749, "validation": 821, "test": 805}, majority_test_accuracy=0.642),
    )
    terra = Task(
        name="terra",
        kind="pair_classification",
        description="TERRa: textual entailment (entailment / not_entailment)",
        labels=("entailment", "not_entailment"),
        inputs={"text": "premise", "text_pair": "hypothesis"},
        sources=rsg_sources("terra"),
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=256,
        writer="rsg",
        metadata=_metadata("terra", {"train": 2616, "validation": 307, "test": 3198}, majority_test_accuracy=0.549),
    )
    parus = Task(
        name="parus",
        kind="multiple_choice",
        description="PARus: choose the more plausible cause or effect of a premise (two choices)",
        preprocess=("mt_russian_superglue.preprocess:preprocess_parus",),
        sources=rsg_sources("parus"),
        metrics=("accuracy",),
        max_length=128,
        writer="rsg",
        metadata=_metadata(
            "parus",
            {"train": 400, "validation": 100, "test": 500},
            note="only 400 training examples: compare scores over several seeds",
            majority_test_accuracy=0.478,
        ),
    )
    rcb = Task(
        name="rcb",
        kind="pair_classification",
        description="RCB: Russian CommitmentBank, three-way entailment of an embedded clause",
        labels=("entailment", "contradiction", "neutral"),
        inputs={"text": "premise", "text_pair": "hypothesis"},
        sources=rsg_sources("rcb"),
        metrics=("f1_accuracy_mean", "f1_macro", "accuracy"),  # the official score first: it selects the model
        max_length=256,
        writer="rsg",
        metadata=_metadata("rcb", {"train": 438, "validation": 220, "test": 438}, official_metric="average F1 and accuracy"),
    )
    lidirus = Task(
        name="lidirus",
        kind="pair_classification",
        description="LiDiRus: labelled diagnostic set scored with Matthews correlation (evaluation only)",
        labels=("entailment", "not_entailment"),
        inputs={"text": "sentence1", "text_pair": "sentence2"},
        sources=rsg_sources("lidirus"),
        metrics=("mcc",),
        max_length=256,
        evaluate_only=True,
        writer="rsg",
        metadata=_metadata(
            "lidirus", {"test": 1104}, note="diagnostic: test split only, labelled; usually predicted with a TERRa-trained head",
            predict_with="rsg:terra",
        ),
    )
    return [danetqa, terra, parus, rcb, lidirus, *build_reading_and_word_tasks()]


def _yes_no_task(name: str, description: str, sizes: dict[str, int], **metadata: object) -> Task:
    """RUSSE and RWSD: JSON-bool labels, a row function building the marked pair (and its targets' spans), accuracy."""
    return Task(
        name=name,
        kind="pair_classification",
        description=description,
        labels=("False", "True"),
        label_values=(False, True),
        preprocess=(f"mt_russian_superglue.preprocess:preprocess_{name}",),
        inputs={"text": "text", "text_pair": "text_pair", "spans": "spans"},  # the targets' characters, for pooling: spans
        sources=rsg_sources(name),
        metrics=("accuracy", "f1_macro"),
        main_metric="accuracy",
        max_length=128,
        writer="rsg",
        metadata=_metadata(name, sizes, **metadata),
    )


def build_reading_and_word_tasks() -> list[Task]:
    """RUSSE, RWSD, MuSeRC and RuCoS."""
    russe = _yes_no_task("russe", "RUSSE: is a word used in the same sense in two sentences? (word in context)",
                         {"train": 19845, "validation": 8505, "test": 18892})
    rwsd = _yes_no_task("rwsd", "RWSD: Winograd schema, does the pronoun refer to the marked noun phrase?",
                        {"train": 606, "validation": 204, "test": 154},
                        note="small and adversarial: most models score the majority class; compare over seeds")
    muserc = Task(
        name="muserc",
        kind="pair_classification",
        description="MuSeRC: is each candidate answer to a question about a paragraph right? (multi-sentence reading)",
        labels=("False", "True"),
        label_values=(0, 1),
        preprocess=("mt_russian_superglue.preprocess:preprocess_muserc",),
        inputs={"text": "text", "text_pair": "text_pair"},
        sources=rsg_sources("muserc"),
        metrics=("muserc_score", "f1_binary", "muserc_em"),  # the official F1a/EM's mean first: it selects the model
        max_length=512,
        writer="rsg",
        metadata=_metadata("muserc", {"train": 11950, "validation": 2235, "test": 7614},
                           rows="one per candidate answer (500 / 100 / 322 paragraphs)",
                           official_metric="F1a (f1_binary) and EM (muserc_em)"),
    )
    rucos = Task(
        name="rucos",
        kind="extractive_qa",
        description="RuCoS: fill the @placeholder of a query with an entity of a news passage (cloze reading)",
        preprocess=("mt_russian_superglue.preprocess:preprocess_rucos",),
        inputs={"candidates": "entities"},  # the answer is one of the passage's entities: predictions pick among them
        sources=rsg_sources("rucos"),
        metrics=("rucos_f1", "rucos_em"),  # the official script's normalisation: SQuAD's without removing English articles
        max_length=512,
        writer="rsg",
        metadata=_metadata("rucos", {"train": 72193, "validation": 7577, "test": 7257}, rows="one per query",
                           official_metric="F1 and EM over the gold entity texts (RSG's RuCoS.py: rucos_f1, rucos_em; "
                                           "lower case, ASCII punctuation removed, articles kept)"),
    )
    return [russe, rwsd, muserc, rucos]
