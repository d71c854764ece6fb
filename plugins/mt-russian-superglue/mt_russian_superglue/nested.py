"""Row expanders for the two nested Russian SuperGLUE layouts (mtcore's ``row_expand`` reader option).

The official MuSeRC and RuCoS files hold one passage per line with its questions (and their
answers) nested inside. The Hugging Face Parquet export flattens them; these functions flatten the
official files the same way, so every source of a task (and ``mt predict --input`` on an official
file) gives the same columns:

* MuSeRC: one row per answer — ``paragraph``, ``question``, ``answer``, ``label`` (0/1, absent in
  the test file), ``idx`` = ``{"paragraph", "question", "answer"}``;
* RuCoS: one row per query — ``passage``, ``query``, ``entities`` and ``answers`` (the distinct
  texts, sorted, as the export has them), ``idx`` = ``{"passage", "query"}``. Entity and answer
  offsets in the official files are inclusive: ``text[start:end + 1]`` is the mention; a record whose
  offsets are exclusive (``text[start:end]``, as RuCoS's scorer reads them) is told by its own answers or
  entities and read as such (:func:`inclusive_offsets`).

Pure Python, nothing heavy imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def _get(record: Mapping[str, Any], name: str, where: str) -> Any:
    value = record.get(name) if isinstance(record, Mapping) else None
    if value is None:
        raise KeyError(f"{where}.{name}" if where else name)
    return value


def muserc_rows(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per answer of one official MuSeRC line (``{"idx", "passage": {"text", "questions"}}``);
    a row already flat (no ``passage`` object: the export's layout) is kept as it is."""
    if not isinstance(record.get("passage"), Mapping):
        yield dict(record)
        return
    passage = _get(record, "passage", "")
    text = _get(passage, "text", "passage")
    paragraph = _get(record, "idx", "")
    for q, question in enumerate(_get(passage, "questions", "passage")):
        at = f"passage.questions[{q}]"
        for a, answer in enumerate(_get(question, "answers", at)):
            row: dict[str, Any] = {
                "paragraph": text,
                "question": _get(question, "question", at),
                "answer": _get(answer, "text", f"{at}.answers[{a}]"),
            }
            label = answer.get("label")
            if label is not None:
                if isinstance(label, bool) or label not in (0, 1):
                    raise ValueError(f"{at}.answers[{a}].label {label!r} is not 0 or 1")
                row["label"] = label
            row["idx"] = {"paragraph": paragraph, "question": _get(question, "idx", at), "answer": _get(answer, "idx", f"{at}.answers[{a}]")}
            yield row


def mention(text: str, span: Mapping[str, Any], what: str = "passage.entities[]", inclusive: bool = True) -> str:
    """The mention ``span`` marks in ``text``: ``text[start:end + 1]`` (RuCoS's offsets are inclusive), or
    ``text[start:end]`` with ``inclusive=False``."""
    start, end = int(_get(span, "start", what)), int(_get(span, "end", what))
    stop = end + 1 if inclusive else end
    if not 0 <= start < stop <= len(text):
        raise ValueError(f"{what} offsets start {start}, end {end} fall outside the passage ({len(text)} characters)")
    return text[start:stop]


def inclusive_offsets(record: Mapping[str, Any]) -> bool:
    """Whether a RuCoS record's ``end`` offsets are inclusive (the official files and the Hugging Face script read
    ``text[start:end + 1]``) or exclusive (as RuCoS's own scorer reads them, and some copies are written). Told by
    the record itself: by its answers whose text is given, else (the test file) by its entities, whose inclusive
    ``end`` falls on the mention's last letter and whose exclusive one on the character after it (a space, a mark)."""
    passage = record.get("passage") if isinstance(record.get("passage"), Mapping) else {}
    text = str(passage.get("text") or "")
    votes = 0
    for qa in record.get("qas") or ():
        for answer in (qa.get("answers") or ()) if isinstance(qa, Mapping) else ():
            said, start, end = answer.get("text"), answer.get("start"), answer.get("end")
            if said and isinstance(start, int) and isinstance(end, int):
                votes += (text[start:end + 1] == said) - (text[start:end] == said)
    if votes:
        return votes > 0
    ends = [span.get("end") for span in passage.get("entities") or () if isinstance(span, Mapping) and isinstance(span.get("end"), int)]
    after = sum(1 for end in ends if end >= len(text) or not text[end].isalnum())
    return after * 2 <= len(ends)


def rucos_rows(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per query of one official RuCoS line (``{"idx", "passage": {"text", "entities"}, "qas"}``);
    a row already flat (``passage`` is the text: the export's layout) is kept as it is."""
    if not isinstance(record.get("passage"), Mapping):
        yield dict(record)
        return
    passage = _get(record, "passage", "")
    text = _get(passage, "text", "passage")
    inclusive = inclusive_offsets(record)
    entities = sorted({mention(text, span, inclusive=inclusive) for span in _get(passage, "entities", "passage")})
    for q, qa in enumerate(_get(record, "qas", "")):
        at = f"qas[{q}]"
        answers = sorted({str(answer.get("text") or mention(text, answer, f"{at}.answers[{a}]", inclusive))
                          for a, answer in enumerate(qa.get("answers") or ())})
        yield {
            "passage": text,
            "query": _get(qa, "query", at),
            "entities": entities,
            "answers": answers,
            "idx": {"passage": _get(record, "idx", ""), "query": _get(qa, "idx", at)},
        }
