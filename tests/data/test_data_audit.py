"""Data-pipeline audit: cache entries are never served after the code or settings that made them
changed, an unwritable cache is one line, and the bundled loaders refuse data that would train
silently on one class."""

from __future__ import annotations

import errno
import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from clitools import run_mt

from mtcore.data import load_task_data
from mtcore.data.files import files_fingerprint
from mtcore.data.rows import dataset_from_rows
from mtcore.errors import DataError
from mtcore.task import Source, Task

ROWS = [{"text": "кот", "label": "no", "idx": 0}, {"text": "спит", "label": "yes", "idx": 1}]


def _module(folder: Path, name: str, source: str) -> object:
    """Write (or rewrite) ``folder/name.py`` and import it afresh, as a new run would."""
    path = folder / (name.replace(".", "/") + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    for loaded in [m for m in sys.modules if m == name or m.startswith(name.split(".")[0] + ".") or m == name.split(".")[0]]:
        sys.modules.pop(loaded)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def _texts(data, tokenizer) -> list[str]:
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in data.splits["train"]["input_ids"]]


@pytest.fixture
def code_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


STEP = """
class Suffix:
    def __init__(self, word):
        self.word = word
    def __call__(self, row):
        return {**row, "text": row["text"] + " " + self.word%s}
    def fingerprint_key(self):
        return [self.word]
"""


def test_an_edited_preprocessing_class_with_a_fingerprint_key_is_not_served_from_the_cache(bert, tmp_path, write, cache_dir, code_dir):
    """A step keyed by ``fingerprint_key()`` (its settings) was keyed without its code: editing the
    class in a plugin being developed, version unchanged, kept the old prepared rows."""
    tokenizer, config = bert
    write.jsonl(tmp_path / "data" / "train.jsonl", ROWS)

    def load(module):
        task = Task(name="steps", kind="text_classification", labels=("no", "yes"), preprocess=(module.Suffix("yes"),),
                    sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
        return load_task_data(task, tokenizer, source="local", data_dir=tmp_path / "data", splits=("train",), encoder_config=config,
                              cache_dir=cache_dir)

    assert _texts(load(_module(code_dir, "mt_audit_step", STEP % "")), tokenizer) == ["кот yes", "спит yes"]
    edited = _module(code_dir, "mt_audit_step", STEP % ' + " no"')
    assert _texts(load(edited), tokenizer) == ["кот yes no", "спит yes no"]


LOADER = """
from mtcore.data.sources import rows_from_files

def convert(row):
    return {**row, "text": row["text"]%s}

def rows_of(paths):
    raw = rows_from_files(paths, "jsonl")
    def rows():
        for path, number, row in raw():
            yield path, number, convert(row)
    return rows
"""


def test_a_loader_whose_row_conversion_was_edited_is_not_served_the_cached_rows(tmp_path, write, cache_dir, code_dir):
    """A plugin loader's ``fingerprint=`` carries its LOADER_VERSION; an edit without a bump (an
    editable install) used to get the rows converted by the old code."""
    path = write.jsonl(tmp_path / "train.jsonl", ROWS)
    key = files_fingerprint([path], "my-loader", 1)  # the same version before and after the edit
    module = _module(code_dir, "mt_audit_loader", LOADER % "")
    assert dataset_from_rows(module.rows_of([path]), fingerprint=key, what="x", cache_dir=cache_dir)["text"] == ["кот", "спит"]
    module = _module(code_dir, "mt_audit_loader", LOADER % ".upper()")
    assert dataset_from_rows(module.rows_of([path]), fingerprint=key, what="x", cache_dir=cache_dir)["text"] == ["КОТ", "СПИТ"]


def test_a_preprocessing_helper_in_a_sibling_module_of_its_package_is_part_of_the_key(bert, tmp_path, write, cache_dir, code_dir):
    """``pkg.steps:add_word`` imports its word from ``pkg.words``: editing that module changes the rows."""
    tokenizer, config = bert
    write.jsonl(tmp_path / "data" / "train.jsonl", ROWS)
    task = Task(name="pkg", kind="text_classification", labels=("no", "yes"), preprocess=("mt_audit_pkg.steps:add_word",),
                sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
    (code_dir / "mt_audit_pkg").mkdir()
    (code_dir / "mt_audit_pkg" / "__init__.py").write_text("")
    (code_dir / "mt_audit_pkg" / "steps.py").write_text("from mt_audit_pkg.words import WORD\n\n"
                                                        "def add_word(row):\n    return {**row, 'text': row['text'] + ' ' + WORD}\n")

    def load(word: str):
        _module(code_dir, "mt_audit_pkg.words", f"WORD = {word!r}\n")
        return load_task_data(task, tokenizer, source="local", data_dir=tmp_path / "data", splits=("train",), encoder_config=config,
                              cache_dir=cache_dir)

    assert _texts(load("yes"), tokenizer) == ["кот yes", "спит yes"]
    assert _texts(load("no"), tokenizer) == ["кот no", "спит no"]


def test_another_mtcore_version_does_not_read_the_caches_an_older_one_wrote(bert, tmp_path, write, cache_dir, monkeypatch):
    import mtcore

    tokenizer, config = bert
    write.jsonl(tmp_path / "train.jsonl", ROWS)
    task = Task(name="v", kind="text_classification", labels=("no", "yes"), sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})

    def cache_files():
        data = load_task_data(task, tokenizer, source="local", data_dir=tmp_path, splits=("train",), encoder_config=config, cache_dir=cache_dir)
        return {entry["filename"] for entry in data.splits["train"].cache_files}

    first = cache_files()
    assert cache_files() == first  # same code: a cache hit
    monkeypatch.setattr(mtcore, "__version__", mtcore.__version__ + ".post1")
    assert cache_files().isdisjoint(first)


def test_a_full_disk_while_caching_is_one_line_naming_the_cache(bert, tmp_path, write, cache_dir, monkeypatch):
    """``datasets`` wraps the OSError of a full disk in DatasetGenerationError; the user sees the cache folder and the fix.
    (The disk fills where the Arrow file is written.)"""
    from datasets.arrow_writer import ArrowWriter

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    write.jsonl(tmp_path / "train.jsonl", ROWS)
    task = Task(name="disk", kind="text_classification", labels=("no", "yes"), sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
    monkeypatch.setattr(ArrowWriter, "_write_table", full)
    with pytest.raises(DataError, match=rf"task 'disk', the data cache {cache_dir} cannot be written: No space left on device; "
                                        r"make it writable, free space on its disk, or point HF_DATASETS_CACHE"):
        load_task_data(task, bert[0], source="local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)


def test_the_file_size_limit_while_caching_is_one_line_with_its_fix(bert, tmp_path, write, cache_dir, monkeypatch):
    """``ulimit -f`` reached by a cache's Arrow file (EFBIG) was "unexpected DatasetGenerationError"."""
    from datasets.arrow_writer import ArrowWriter

    def too_large(*args, **kwargs):
        raise OSError(errno.EFBIG, "File too large")

    write.jsonl(tmp_path / "train.jsonl", ROWS)
    task = Task(name="big", kind="text_classification", labels=("no", "yes"), sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
    monkeypatch.setattr(ArrowWriter, "_write_table", too_large)
    with pytest.raises(DataError) as info:
        load_task_data(task, bert[0], source="local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)
    assert str(info.value) == (f"task 'big', the data cache {cache_dir} cannot be written: File too large; a cache file outgrew this "
                               "process's file-size limit: raise it (ulimit -f), or point HF_DATASETS_CACHE (Python: cache_dir=) at "
                               "another folder")


@pytest.mark.parametrize("below,reason", [("cache", "Not a directory"), ("", "File exists"),
                                          ("link", "No such file or directory: its folder cannot be made (a link to a missing drive?)")])
def test_mt_check_with_an_unwritable_cache_says_so_in_one_line(tmp_path, below, reason):
    """A cache below a file (ENOTDIR), HF_DATASETS_CACHE set to the file itself (EEXIST from makedirs: it was
    'unexpected FileExistsError'), or below a link to a drive that is not mounted (it was 'unexpected FileNotFoundError')."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cache = blocker / below if below else blocker
    if below == "link":
        (tmp_path / "drive").symlink_to(tmp_path / "unmounted" / "volume")
        cache = tmp_path / "drive" / "cache"
    config = tmp_path / "run.yaml"
    config.write_text("encoder: {tiny: {arch: bert, hidden_size: 32, num_layers: 1, num_heads: 2}}\n"
                      "tasks:\n  - {id: rsg:terra, source: sample, max_length: 32}\n")
    result = run_mt("check", str(config), env={"HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
                                               "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: task 'rsg:terra', the data cache {cache} cannot be written: {reason}; "
                                     "make it writable, free space on its disk, or point HF_DATASETS_CACHE (Python: cache_dir=) at "
                                     "another folder")


def test_the_same_tokenizer_in_another_folder_reuses_the_tokenized_cache(tmp_path, write, cache_dir, monkeypatch):
    """The tokenizer's key held its folder: a demo encoder built afresh in each run (or a model folder copied)
    tokenized everything again, and the cache grew by a file per split each run."""
    from transformers import AutoTokenizer

    from mtcore.data.tokenize import tokenizer_fingerprint
    from mtcore.testing import build_tiny_encoder

    words = ["кот", "спит", "yes", "no"]
    first, second = (AutoTokenizer.from_pretrained(build_tiny_encoder(tmp_path / name, "bert", words=words)) for name in ("a", "b"))
    other = AutoTokenizer.from_pretrained(build_tiny_encoder(tmp_path / "c", "bert", words=[*words, "мышь"]))
    assert tokenizer_fingerprint(first) == tokenizer_fingerprint(second) != tokenizer_fingerprint(other)
    first("кот " * 50, truncation=True, max_length=8)  # a call's truncation state is not content
    assert tokenizer_fingerprint(first) == tokenizer_fingerprint(second)

    from transformers import AutoConfig

    rows = [{"text": f"кот спит {i}", "text_pair": "yes " * (i % 5), "label": ["no", "yes"][i % 2]} for i in range(40)]
    write.jsonl(tmp_path / "data" / "train.jsonl", rows)
    write.jsonl(tmp_path / "data" / "val.jsonl", rows[:10])
    task = Task(name="pair", kind="pair_classification", labels=("no", "yes"),
                sources={"local": Source.local("jsonl", {"train": "train.jsonl", "validation": "val.jsonl"})})
    config = AutoConfig.from_pretrained(tmp_path / "a")
    loaded = load_task_data(task, first, source="local", data_dir=tmp_path / "data", encoder_config=config, cache_dir=cache_dir)
    calls = []
    original = type(second).__call__
    monkeypatch.setattr(type(second), "__call__", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    again = load_task_data(task, second, source="local", data_dir=tmp_path / "data", encoder_config=config, cache_dir=cache_dir)
    assert calls == [] and again.splits["train"].cache_files == loaded.splits["train"].cache_files


# ---- bundled plugins ------------------------------------------------------------------------
def test_mokoron_with_an_empty_negative_file_is_refused_not_trained_on_one_class(tmp_path, write, cache_dir):
    from mtcore.data import load_raw
    from mtcore.plugins import get_task

    tweet = '"{i}";"1386325927";"user";"текст {i}";"{t}";"0";"0";"0";"1";"1";"1";"0"\n'
    write.text(tmp_path / "positive.csv", "".join(tweet.format(i=i, t=1) for i in range(20)))
    write.text(tmp_path / "negative.csv", "")
    with pytest.raises(DataError, match=rf"{tmp_path / 'negative.csv'}: the file has no rows; RuTweetCorp needs both"):
        load_raw(get_task("sentiment:mokoron"), "local", data_dir=tmp_path, splits=("train",), cache_dir=cache_dir)


def test_headline_swap_augmentation_is_keyed_by_the_code_of_the_swap(cache_dir, monkeypatch):
    import mt_nli.loaders as loaders
    from mtcore.plugins import get_task

    task = get_task("nli:headline-cause-simple")
    options = dict(task.sources["sample"].options, swap_augment=True, cache_dir=str(cache_dir))
    first = loaders.load_headline_cause(task, ["train"], **options)["train"]
    rows = first.num_rows // 2
    monkeypatch.setattr(loaders, "swap_headlines", lambda row, scheme: {**row, "left_title": "edited"})
    second = loaders.load_headline_cause(task, ["train"], **options)["train"]
    assert second["left_title"][rows:] == ["edited"] * rows != first["left_title"][rows:]
