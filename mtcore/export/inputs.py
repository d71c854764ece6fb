"""How a task's raw rows become the exported model's input, in words, for ``mt export``'s README and
``mtcore_export.json``: a user of the plain model must build the text as mtcore did (PARus: the premise
without its final punctuation, then "потому что" or "поэтому"), or the scores are of other inputs.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
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


def describe_inputs(task: Task, unsaved: list[str] | None = None) -> dict[str, Any]:
    """``{"encoding", "columns", "preprocess"}``: the kind's encoding, where each column comes from (raw field names that
    differ from the column's), and each preprocessing step with the first paragraph of its docstring (``unsaved``:
    the steps a model saved from Python could not name, when its Task is not at hand)."""
    columns = {column: field for column, field in task.input_map.items() if column not in ("label", "idx")}
    steps = [_describe_step(step) for step in task.preprocess] + [
        f"{name}: a function the model could not save by name (its code is not in the model; where it ran among the steps "
        "above is not recorded): build the columns as it did" for name in unsaved or []]
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


def encoded_length(task: Task, tokenizer: Any, encoder_config: Any) -> int:
    """The length mtcore cut the task's rows at: its ``max_length``, or less where the tokenizer or the encoder's
    positions take less (what :func:`~mtcore.data.encoder_limits.resolve_max_length` warned about in training)."""
    from mtcore.data.encoder_limits import resolve_max_length

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return resolve_max_length(task, tokenizer, encoder_config=encoder_config)
        except Exception:  # noqa: BLE001 - a length the tokenizer cannot honour: the task's, as recorded
            return task.max_length


def readme(title: str, usage: str, info: dict[str, Any]) -> str:
    """An exported task's README.md: the usage snippet, the export's facts, how rows are encoded."""
    lines = [f"# {title}", "", "Exported by mtcore from a multitask model; plain transformers, no custom code.", "", "```python", usage, "```", ""]
    lines += [f"- {key}: {value}" for key, value in info.items() if value not in (None, [], {}) and key != "inputs"]
    if info.get("inputs"):
        lines += readme_lines(info["inputs"])
    return "\n".join(lines) + "\n"


def usage_lines(auto_class: str, pipeline: str | None, out_dir: Path, pair: bool, max_length: int | None = None,
                truncation: str = "longest_first") -> str:
    """The README's snippet, cutting as mtcore did: a pair (and a multiple-choice text with its choice) by the task's
    ``truncation``, one text at ``max_length``; nothing for ``do_not_truncate``."""
    strategy = "True" if truncation == "longest_first" or not pair and pipeline else repr(truncation)
    cut = f", truncation={strategy}, max_length={max_length}" if max_length and truncation != "do_not_truncate" else ""
    fallback = strategy != "True" and bool(cut)  # only_first / only_second: a row whose kept text is too long is cut longest_first
    whole = f", truncation=True, max_length={max_length}"
    why = "  # the kept text alone is longer than max_length: mtcore cut such a row longest_first"
    if pipeline == "text-classification":
        example = '{"text": "...", "text_pair": "..."}' if pair else '"..."'
        start = f'from transformers import pipeline\nclassify = pipeline("text-classification", model="{out_dir}")\nrow = {example}\n'
        if fallback:
            return (f"{start}try:\n    scores = classify(row, top_k=None{cut})\nexcept Exception:{why}\n"
                    f"    scores = classify(row, top_k=None{whole})")
        return f"{start}scores = classify(row, top_k=None{cut})"
    if pipeline:
        return f'from transformers import pipeline\nrun = pipeline("{pipeline}", model="{out_dir}")'
    if auto_class == "AutoModelForMultipleChoice":
        start = (f'from transformers import {auto_class}, AutoTokenizer\nmodel = {auto_class}.from_pretrained("{out_dir}")\n'
                 f'tokenizer = AutoTokenizer.from_pretrained("{out_dir}")\ntext, choices = "...", ["...", "..."]  # built as under Input\n')
        best = '\nbest = model(**{k: v.unsqueeze(0) for k, v in encoded.items()}).logits.argmax(-1).item()  # index of the answer'
        alone = f", truncation=True, max_length={max_length}" if cut else ""
        body = (f"    try:\n        return tokenizer(text, choice{cut})\n    except Exception:{why}\n        return tokenizer(text, choice{whole})"
                if fallback else f"    return tokenizer(text, choice{cut})")
        return (f"{start}def encode(choice):\n    if not text:  # a row without text: the choice alone, as mtcore encoded it\n"
                f"        return tokenizer(choice{alone})\n{body}\n"
                f'encoded = tokenizer.pad([encode(choice) for choice in choices], return_tensors="pt"){best}')
    return (f'from transformers import {auto_class}, AutoTokenizer\nmodel = {auto_class}.from_pretrained("{out_dir}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{out_dir}")')
