"""Row functions that turn raw Russian SuperGLUE rows into mtcore's canonical columns.

Each function takes one raw row (a dict) and returns the row with the canonical columns added
(``text``, ``text_pair``, ``choices``); every raw field, ``label`` and ``idx`` included, is kept.
They are pure Python (no torch, no datasets) and deterministic.

A RUSSE or RWSD row whose target cannot be marked (offsets that mark no word, a span not in the
text) is an error when it is labelled (train, validation); an unlabelled (test) row is read with
what can be marked, so that the submission still has its ``idx``. :func:`marking_problem` says
what went wrong, for the warning the local source gives per file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: The Russian connective that joins a PARus premise to its candidate causes or effects.
PARUS_CONNECTIVES = {"cause": "потому что", "effect": "поэтому"}


def _field(row: Mapping[str, Any], name: str) -> Any:
    """``row[name]``; a KeyError naming the field when the row lacks it or holds null there.

    mtcore hands a step a field that other rows of the file have and this one lacks as None, so
    None is refused too: ``str(None)`` would silently become the text 'None' (a PARus choice).
    """
    value = row.get(name)
    if value is None:
        has = ", ".join(sorted(str(k) for k, v in row.items() if v is not None)) or "no fields"
        raise KeyError(f"missing field {name!r} (row has: {has})") from None
    return value


def preprocess_danetqa(row: Mapping[str, Any]) -> dict[str, Any]:
    """DaNetQA: ``text`` = the yes/no question, ``text_pair`` = the passage.

    The question goes first so that truncation (longest first) shortens the passage, never the
    question. The seed-port example uses it as ``Preprocessor([preprocess_danetqa])``.
    """
    return {**row, "text": str(_field(row, "question")), "text_pair": str(_field(row, "passage"))}


def parus_context(premise: str, question: str) -> str:
    """The PARus context: the premise (final punctuation dropped) followed by the connective.

    ``"Мальчик упал." + "cause"`` -> ``"Мальчик упал, потому что"``; each choice then completes
    the sentence as the second segment.
    """
    try:
        connective = PARUS_CONNECTIVES[question]
    except KeyError:
        raise ValueError(f"PARus question must be 'cause' or 'effect', got {question!r}") from None
    return f"{premise.strip().rstrip('.!?…').rstrip()}, {connective}"


def preprocess_parus(row: Mapping[str, Any]) -> dict[str, Any]:
    """PARus as multiple choice: ``text`` = the premise without its final punctuation (. ! ? …), a comma and
    the connective, "потому что" when ``question`` is "cause" and "поэтому" when it is "effect" ("Мальчик упал."
    -> "Мальчик упал, потому что"); ``choices`` = [choice1, choice2], each the second segment after ``text``."""
    premise = str(_field(row, "premise"))
    question = str(_field(row, "question"))
    return {
        **row,
        "text": parus_context(premise, question),
        "choices": [str(_field(row, "choice1")), str(_field(row, "choice2"))],
    }


def _is_word(char: str) -> bool:
    return char.isalnum() or char in "-\u0301"  # a hyphenated word, a stress mark


def word_bounds(sentence: str, start: Any, end: Any) -> tuple[int, int] | None:
    """The whole word(s) at character offsets ``[start, end)`` of ``sentence``, or None when they mark no word.

    The span shrinks past spaces at its edges and grows to whole words, so an inclusive ``end``
    (one short), an end past a space or a start inside the word give the same word.
    """
    try:
        s, e = int(start), int(end)
    except (TypeError, ValueError):
        return None
    if not 0 <= s < e <= len(sentence) + 1:
        return None
    e = min(e, len(sentence))
    while e > s and not _is_word(sentence[e - 1]):  # an end one past the word (a space) marks the word only
        e -= 1
    while s < e and not _is_word(sentence[s]):
        s += 1
    if s >= e:
        return None
    while s > 0 and _is_word(sentence[s - 1]):
        s -= 1
    while e < len(sentence) and _is_word(sentence[e]):
        e += 1
    return s, e


def mark_span(sentence: str, start: Any, end: Any, left: str = "*", right: str = "*") -> str:
    """``sentence`` with the word at character offsets ``[start, end)`` (see :func:`word_bounds`) wrapped in
    ``left``/``right``; offsets that fall outside the sentence, or mark no word, leave it as is."""
    bounds = word_bounds(sentence, start, end)
    if bounds is None:
        return sentence
    s, e = bounds
    return f"{sentence[:s]}{left}{sentence[s:e]}{right}{sentence[e:]}"


def is_unlabelled(row: Mapping[str, Any]) -> bool:
    """Whether the row has no label: absent or null (the official test files) or -1 (the hub export's test split)."""
    label = row.get("label")
    return label is None or (not isinstance(label, bool) and label == -1)


def _russe_sentence(row: Mapping[str, Any], n: int) -> tuple[str, str | None, list[int]]:
    """Sentence ``n`` of a RUSSE row with its target marked, None and the target's characters in the marked sentence;
    or the sentence as it is, why it is not marked and ``[0, 0]`` (no span)."""
    sentence = str(_field(row, f"sentence{n}"))
    start, end = row.get(f"start{n}"), row.get(f"end{n}")
    bounds = word_bounds(sentence, start, end)
    if bounds is None:
        return sentence, f"start{n} {start!r} / end{n} {end!r} mark no word of sentence{n} ({len(sentence)} characters)", [0, 0]
    s, e = bounds
    return f"{sentence[:s]}*{sentence[s:e]}*{sentence[e:]}", None, [s + 1, e + 1]


def preprocess_russe(row: Mapping[str, Any]) -> dict[str, Any]:
    """RUSSE (word in context): ``text`` = "word: sentence1", ``text_pair`` = sentence2, the target
    occurrence marked ``*…*`` in both (from ``start1/end1``, ``start2/end2``), and ``spans``: the two targets'
    characters (in ``text``, then in ``text_pair``), for ``pooling: spans``. Offsets that mark no word are an error naming
    the row in a labelled row; an unlabelled (test) row keeps that sentence unmarked (and that span empty)."""
    word = str(_field(row, "word"))
    (first, problem1, span1), (second, problem2, span2) = _russe_sentence(row, 1), _russe_sentence(row, 2)
    problem = problem1 or problem2
    if problem and not is_unlabelled(row):
        raise ValueError(f"{problem}; fix the offsets or remove the row")
    shift = len(word) + 2 if span1[1] else 0  # "word: " before sentence1
    return {**row, "text": f"{word}: {first}", "text_pair": second, "spans": [[span1[0] + shift, span1[1] + shift], [*span2, 1]]}


def _norm_word(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalnum())


def _find_words(words: list[str], span: str, near: Any) -> tuple[int, int] | None:
    """Where the words of ``span`` are in ``words``: at index ``near`` if they match there, else the
    match closest to it (case and punctuation ignored); None when they are not in the text."""
    wanted = [_norm_word(w) for w in span.split()]
    wanted = [w for w in wanted if w]
    if not wanted:
        return None
    found = [i for i in range(len(words) - len(wanted) + 1)
             if [_norm_word(w) for w in words[i:i + len(wanted)]] == wanted]
    if not found:
        return None
    try:
        anchor = int(near)
    except (TypeError, ValueError):
        anchor = 0
    start = min(found, key=lambda i: (abs(i - anchor), i))
    return start, start + len(wanted)


def _rwsd_target(row: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if isinstance(row.get("target"), Mapping):
        return row["target"], "target."
    if "span1_text" in row:
        return row, ""
    raise KeyError(f"missing field 'target' (row has: {', '.join(sorted(map(str, row))) or 'no fields'})")


def _rwsd_marks(row: Mapping[str, Any]) -> tuple[list[str], dict[str, tuple[int, int]], str | None]:
    """The text's words, where span1 and span2 are in them (those found), and why one is not placed (or None)."""
    target, where = _rwsd_target(row)
    words = str(_field(row, "text")).split()  # runs of spaces count once
    found, problem = {}, None
    for name in ("span1", "span2"):
        span = str(_field(target, f"{name}_text"))
        place = _find_words(words, span, target.get(f"{name}_index"))
        if place is None:
            problem = problem or f"{where}{name}_text {span!r} is not in the text; fix it or remove the row"
        else:
            found[name] = place
    if len(found) == 2:
        (s1, e1), (s2, e2) = found["span1"], found["span2"]
        if not (e1 <= s2 or e2 <= s1):
            problem = (f"{where}span1_text {str(target['span1_text'])!r} and {where}span2_text {str(target['span2_text'])!r} "
                       "mark the same words; fix the indices")
            del found["span2"]  # an unlabelled row keeps the candidate marked
    return words, found, problem


def preprocess_rwsd(row: Mapping[str, Any]) -> dict[str, Any]:
    """RWSD (Winograd schema): ``text`` = the text with the candidate marked ``[…]`` and the pronoun
    ``*…*``; ``text_pair`` = "«pronoun» — это «candidate»?". Reads the official ``target`` object
    or the export's flat ``span1_text``, ``span1_index``, ... fields. Word indices that are off (a
    few official rows) fall back to the nearest occurrence of the span's words. A span whose words
    are not in the text, or two spans on the same words, are an error naming the row in a labelled
    row; an unlabelled (test) row marks only the span(s) found."""
    target, _ = _rwsd_target(row)
    words, found, problem = _rwsd_marks(row)
    if problem and not is_unlabelled(row):
        raise ValueError(problem)
    marks = {found[name][0]: (found[name][1], left, right, name) for name, left, right in (("span1", "[", "]"), ("span2", "*", "*"))
             if name in found}
    pieces, spans, length, i = [], {"span1": [0, 0], "span2": [0, 0]}, 0, 0
    while i < len(words):  # the words joined by single spaces, each span wrapped in its marks, and where its words are
        end, left, right, name = marks.get(i, (i + 1, "", "", None))
        piece = " ".join(words[i:end])
        start = length + (1 if pieces else 0) + len(left)
        if name is not None:
            spans[name] = [start, start + len(piece)]
        pieces.append(left + piece + right)
        length, i = start + len(piece) + len(right), end
    span1, span2 = str(_field(target, "span1_text")), str(_field(target, "span2_text"))
    return {**row, "text": " ".join(pieces), "text_pair": f"«{span2}» — это «{span1}»?", "spans": [spans["span1"], spans["span2"]]}


def marking_problem(task_name: str, row: Mapping[str, Any]) -> str | None:
    """Why the target of a RUSSE (``russe``) or RWSD (``rwsd``) row cannot be marked, or None (also for other tasks)."""
    try:
        if task_name == "russe":
            return _russe_sentence(row, 1)[1] or _russe_sentence(row, 2)[1]
        if task_name == "rwsd":
            return _rwsd_marks(row)[2]
    except (KeyError, ValueError, TypeError):  # a missing field: preprocessing names it with the row
        return None
    return None


def preprocess_muserc(row: Mapping[str, Any]) -> dict[str, Any]:
    """MuSeRC, one row per answer (the export's layout, or :func:`mt_russian_superglue.nested.muserc_rows`):
    ``text`` = "question Ответ: answer", ``text_pair`` = the paragraph (cut first when too long)."""
    question, answer = str(_field(row, "question")).strip(), str(_field(row, "answer")).strip()
    return {**row, "text": f"{question} Ответ: {answer}", "text_pair": str(_field(row, "paragraph"))}


HIGHLIGHT = "@highlight"


def rucos_context(passage: str) -> str:
    """The passage without RuCoS's ``@highlight`` markers: each becomes a line break."""
    lines = [line.strip() for line in passage.replace(HIGHLIGHT, "\n").split("\n")]
    return "\n".join(line for line in lines if line)


def answer_start(context: str, text: str) -> int:
    """Where ``text`` first occurs in ``context`` as whole words ("Иран" not inside "Ирана"); its first
    occurrence anywhere when it never stands alone; -1 when it does not occur."""
    match = re.search(rf"(?<!\w){re.escape(text)}(?!\w)", context)
    return match.start() if match else context.find(text)


def preprocess_rucos(row: Mapping[str, Any]) -> dict[str, Any]:
    """RuCoS as extractive QA: ``question`` = the query (``@placeholder`` kept), ``context`` = the
    passage without ``@highlight`` markers, ``answers`` = each distinct gold entity text at its
    first occurrence as whole words (:func:`answer_start`; none in the test split)."""
    context = rucos_context(str(_field(row, "passage")))
    texts, starts = [], []
    for answer in row.get("answers") or ():
        text = str(answer)
        start = answer_start(context, text)
        if start < 0:
            raise ValueError(f"answer {text!r} does not occur in the passage")
        texts.append(text)
        starts.append(start)
    return {**row, "question": str(_field(row, "query")), "context": context,
            "answers": {"text": texts, "answer_start": starts}}
