"""What the cache keys of user code see: a stale key reuses prepared rows computed by other code or settings.
Each case below kept its key when it should not (found by an audit of the cache)."""

from __future__ import annotations

import functools
import importlib
import subprocess
import sys
import textwrap

from mtcore.data.cache import fingerprint


class Cleaner:
    def __init__(self, lowercase: bool) -> None:
        self.lowercase = lowercase

    def apply(self, row: dict) -> dict:
        return {**row, "text": row["text"].lower() if self.lowercase else row["text"]}


def replace(row: dict, rules: dict) -> dict:
    return row


def test_a_bound_methods_object_is_part_of_its_key():
    assert fingerprint(Cleaner(True).apply) != fingerprint(Cleaner(False).apply)
    assert fingerprint(Cleaner(True).apply) == fingerprint(Cleaner(True).apply)


def test_settings_nested_deep_are_part_of_the_key():
    def rules(value: str) -> dict:
        nested: dict = {"to": value}
        for level in range(10):
            nested = {f"level{level}": nested}
        return nested

    keys = {value: fingerprint(functools.partial(replace, rules=rules(value))) for value in ("fine", "bad")}
    assert keys["fine"] != keys["bad"] and keys["fine"] == fingerprint(functools.partial(replace, rules=rules("fine")))


def test_a_notebook_functions_globals_are_part_of_its_key():
    """A function with no source file (a notebook cell, a REPL, python -c) was keyed by its own code alone."""
    def defined(suffix: str):
        scope = {"__name__": "notebook_cell", "SUFFIX": suffix, "functools": functools}
        exec("def step(row):\n    return {**row, 'text': row['text'] + SUFFIX}\n", scope)
        return scope["step"]

    assert fingerprint(defined("")) != fingerprint(defined(" zzz"))
    assert fingerprint(defined("")) == fingerprint(defined(""))


def _module_files(root, helper_body: str) -> None:
    (root / "helpers_beside.py").write_text(f"def clean(text):\n    return text{helper_body}\n", encoding="utf-8")
    (root / "steps_using_helper.py").write_text(textwrap.dedent("""
        from helpers_beside import clean

        def step(row):
            return {**row, "text": clean(row["text"])}
    """), encoding="utf-8")


def _fresh_key(root) -> str:
    code = "import sys; sys.path.insert(0, sys.argv[1]); import steps_using_helper as m; from mtcore.data.cache import fingerprint; print(fingerprint(m.step))"
    return subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True).stdout.strip()


def test_a_helper_imported_from_a_module_outside_the_steps_folder_is_part_of_its_key(tmp_path, monkeypatch):
    """Only the step module's own folder was hashed: editing a helper beside it on the path kept the stale cache; and a
    process that went on with the code it had imported stored that code's rows under the edited file's key."""
    _module_files(tmp_path, "")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("steps_using_helper", "helpers_beside"):
        sys.modules.pop(name, None)
    module = importlib.import_module("steps_using_helper")
    before = fingerprint(module.step)
    assert before == _fresh_key(tmp_path)  # the same code in another process: the same key (the cache is reused)
    (tmp_path / "helpers_beside.py").write_text("def clean(text):\n    return text + ' zzz'\n", encoding="utf-8")
    in_this_process = fingerprint(module.step)  # this process still runs the old helper
    fresh = _fresh_key(tmp_path)  # a new process runs the edited one
    assert len({before, in_this_process, fresh}) == 3
    for name in ("steps_using_helper", "helpers_beside"):
        sys.modules.pop(name, None)


def test_a_tokenizer_setting_changed_after_loading_is_part_of_its_key(tmp_path):
    from transformers import AutoTokenizer

    from mtcore.data.tokenize import tokenizer_fingerprint
    from mtcore.testing import build_tiny_encoder

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_encoder(tmp_path / "encoder"))
    plain = tokenizer_fingerprint(tokenizer)
    tokenizer.split_special_tokens = True  # a literal "[SEP]" in a text is then text, not the separator
    assert tokenizer_fingerprint(tokenizer) != plain


def test_a_step_whose_object_cannot_be_pickled_is_keyed_to_this_process_not_a_crash():
    """Hashing a bound method's object (one holding a database connection) stopped mt check and mt train."""
    import sqlite3

    class Lookup:
        def __init__(self) -> None:
            self.connection = sqlite3.connect(":memory:")

        def step(self, row: dict) -> dict:
            return row

    lookup = Lookup()
    assert fingerprint(lookup.step) == fingerprint(lookup.step)  # reused within this process
    assert fingerprint(lookup.step) != fingerprint(Lookup().step)  # another object: its own key
