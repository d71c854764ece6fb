"""How a task's raw rows become the exported model's input, in words, for ``mt export``'s README and
``mtcore_export.json``: a user of the plain model must build the text as mtcore did (PARus: the premise
without its final punctuation, then "потому что" or "поэтому"), or the scores are of other inputs.
"""

from __future__ import annotations

import inspect
from typing import Any

from mtcore.task import Task, TaskKind

#: What mtcore encodes for one row, per kind (after the preprocessing steps, from the canonical columns).
ENCODING = {
    TaskKind.TEXT_CLASSIFICATION: "tokenizer(text)",
    TaskKind.REGRESSION: "tokenizer(text)",
    TaskKind.MULTI_LABEL: "tokenizer(text)",
    TaskKind.PAIR_CLASSIFICATION: "tokenizer(text, text_pair) (text is the first segment)",
    TaskKind.MULTIPLE_CHOICE: "tokenizer(text, choice) for every choice, the choices stacked as one example of shape "
                              "(1, choices, length) (the choice alone when text is empty); the highest logit is the answer",
    TaskKind.TOKEN_CLASSIFICATION: "tokenizer(tokens, is_split_into_words=True); each word's tag is its first sub-token's",
    TaskKind.EXTRACTIVE_QA: "tokenizer(text, text_pair) (the question, then the context)",
    TaskKind.MASKED_LM: "tokenizer(text) with the tokenizer's mask token where a word is to be filled in",
}


def describe_inputs(task: Task) -> dict[str, Any]:
    """``{"encoding", "columns", "preprocess"}``: the kind's encoding, where each column comes from (raw field names that
    differ from the column's), and each preprocessing step with the first paragraph of its docstring."""
    columns = {column: field for column, field in task.input_map.items() if column not in ("label", "idx")}
    steps = [_describe_step(step) for step in task.preprocess]
    out: dict[str, Any] = {"encoding": ENCODING.get(task.kind, "")}
    renamed = {column: field for column, field in columns.items() if column != field}
    if renamed:
        out["columns"] = {column: f"the row's {field!r} field" for column, field in renamed.items()}
    if steps:
        out["preprocess"] = steps
    return out


def _describe_step(step: Any) -> str:
    """``name: what its docstring says`` (the first paragraph, on one line); the name alone when the step cannot be
    imported here or has no docstring."""
    name = step if isinstance(step, str) else f"{getattr(step, '__module__', '?')}:{getattr(step, '__qualname__', repr(step))}"
    try:
        from mtcore.refs import resolve

        function = resolve(step)
    except Exception:  # a plugin not installed here: the export still names the step
        return name
    doc = inspect.getdoc(function) or ""
    first = " ".join(doc.split("\n\n", 1)[0].split())
    return f"{name}: {first}" if first else name


def readme_lines(described: dict[str, Any]) -> list[str]:
    """The README's "Input" section."""
    lines = ["", "## Input", "", f"Each row is encoded as {described['encoding']}."]
    for column, origin in (described.get("columns") or {}).items():
        lines.append(f"- `{column}` is {origin}")
    steps = described.get("preprocess") or []
    if steps:
        lines += ["", "Before that, mtcore built the columns from the raw row with these steps (do the same):"]
        lines += [f"- {step}" for step in steps]
    return lines
