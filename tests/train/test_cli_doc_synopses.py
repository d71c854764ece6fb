"""Every command's synopsis in docs/cli.md names exactly its real options and required arguments (from the Typer
app itself), and the value lists it gives for ``--format`` and ``--input-format`` hold every real one.

The bug: the ``mt predict`` synopsis lacked the ``conll`` writer and ``--input-format``, ``mt evaluate``'s lacked
``--input-format`` (and both lacked ``--batch-size``, ``--device``, ...)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from mtcore.cli.app import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def synopses() -> dict[str, str]:
    """Command name -> its synopsis: the table rows of `mt ...` and the lines of code blocks that start with `mt `
    (indented lines continue the one above)."""
    found: dict[str, str] = {}
    inside, last = False, None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside, last = not inside, None
            continue
        row = re.match(r"^\| `(mt [^`]+)` \|", line)
        if row:
            text = row.group(1).replace("\\|", "|")
            found[text.split()[1]] = text
        elif inside and line.startswith("mt "):
            last = line.split()[1]
            found[last] = line
        elif inside and last and line.startswith(" "):
            found[last] += " " + line.strip()
    return found


GROUP = typer.main.get_command(app)
DOCUMENTED = synopses()


@pytest.mark.parametrize("name", sorted(GROUP.commands))
def test_the_synopsis_names_every_option_and_required_argument(name: str):
    assert name in DOCUMENTED, f"mt {name} has no synopsis in docs/cli.md"
    text = DOCUMENTED[name]
    command = GROUP.commands[name]
    options = [p for p in command.params if p.param_type_name == "option" and p.name != "help"]
    named = set(FLAG.findall(text))
    real = {flag for p in options for flag in (*p.opts, *p.secondary_opts) if flag.startswith("--")}
    assert named <= real, f"mt {name}: {sorted(named - real)} are no options of it"
    missing = [p.opts[-1] for p in options if not named & {*p.opts, *p.secondary_opts}]
    assert not missing, f"mt {name}: the synopsis lacks {missing}"
    leading = []
    for word in text.split()[2:]:
        if not re.fullmatch(r"[A-Z][A-Z_]*(\.yaml)?", word):
            break
        leading.append(word)
    required = [p for p in command.params if p.param_type_name == "argument" and p.required]
    assert len(leading) == len(required), f"mt {name}: {leading} for the arguments {[p.name for p in required]}"


def _choices(text: str, flag: str) -> set[str]:
    found = re.search(rf"{flag} ([\w|]+)", text)
    assert found, f"{flag} without its values in {text!r}"
    return set(found.group(1).split("|"))


def test_the_value_lists_hold_every_format():
    from mtcore import builtin_plugin
    from mtcore.predict.evaluate import INPUT_FORMATS as SCORED
    from mtcore.predict.inputs import INPUT_FORMATS as READ

    writers: list[str] = []
    builtin_plugin.mt_register_writers(lambda name, *args, **kwargs: writers.append(name))
    assert set(writers) <= _choices(DOCUMENTED["predict"], "--format") and "conll" in writers
    assert _choices(DOCUMENTED["predict"], "--input-format") == set(READ)
    assert _choices(DOCUMENTED["evaluate"], "--input-format") == {"auto", *SCORED}


def test_the_version_option_is_real():
    assert DOCUMENTED.get("--version") == "mt --version" and any("--version" in p.opts for p in GROUP.params)
