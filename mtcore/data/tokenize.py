"""Prepared rows -> token ids, per task kind, cached with the data.

=========================  =============================================================
kind                       what one row becomes
=========================  =============================================================
classification, pair,      ``tokenizer(text[, text_pair])`` truncated to ``max_length`` with
regression, multi-label    the task's pair strategy (``task.truncation``)
multiple_choice            one ``(text, choice_i)`` encoding per choice (``input_ids`` is a
                           list of lists; the choice alone when ``text`` is empty)
token_classification       the words encoded with ``is_split_into_words``; each word's tag on
                           its first sub-token, -100 on continuations and special tokens;
                           ``cut_labels``: the tags of the words ``max_length`` cut off
extractive_qa              ``tokenizer(question, context)`` in windows of the context sharing
                           ``task.stride`` tokens (a row per window, ``example`` its question);
                           ``labels`` the first answer's first and last token ([CLS] where
                           another window holds it); ``offsets``, ``context`` and ``answers``
                           (texts) for scoring (:mod:`mtcore.data.answers`), ``candidates`` when
                           the task maps them
=========================  =============================================================

A task that maps ``spans`` also gets ``span_tokens``: each span's first and last token (see :mod:`mtcore.data.spans`).

Every row gets ``length``: its real tokens (summed over choices); multiple-choice rows also get
``slots``: choices x longest choice, the token slots the row fills once its choices are padded. ``token_type_ids`` are kept
only when the encoder has segment embeddings (``type_vocab_size > 1``). The output is written
under a fingerprint of the input, the tokenizer and the settings, so a second run with the same
data and tokenizer reads the cache file instead of tokenizing again.

Words of a token-classification row past ``max_length`` are not seen by the model; their tags
stay in ``cut_labels`` (empty when the row fits), so evaluation scores them as missed (see
:mod:`mtcore.train.evaluation`) and :func:`warn_cut_words` tells the user, also on a cache hit.
"""

from __future__ import annotations

import warnings
from typing import Any

from mtcore.data.cache import fingerprint, map_or_rebuild, pipeline_key
from mtcore.data.prepare import labels_feature
from mtcore.data.encoder_limits import position_limit, resolve_max_length, uses_token_type_ids  # noqa: F401  (re-exported)
from mtcore.data.spans import SPAN_TOKENS, token_spans
from mtcore.errors import ConfigError
from mtcore.data.masking import MASKING_VERSION, WORDS, Masker, token_words
from mtcore.task import Task, TaskKind

#: Bump when tokenization changes what it writes: old caches are then not reused.
TOKENIZE_VERSION = 3
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Token classification: the tags of each row's words cut off by ``max_length`` (empty when it fits).
CUT_COLUMN = "cut_labels"
#: Token classification: the tags of a row's words the tokenizer turned into no token (a soft hyphen or a zero-width
#: character alone), scored like the cut ones (predicted ``O``) instead of vanishing from the scores.
UNSEEN_COLUMN = "unseen_labels"
#: Token classification: where those words are in the row (word numbers), so they are scored in their places.
UNSEEN_WORDS_COLUMN = "unseen_words"
#: Token classification: each word's first sub-token (-1: none, cut or unseen), where predictions read its label.
FIRST_TOKEN_COLUMN = "first_tokens"


class CutWordsWarning(UserWarning):
    """Words of token-classification rows were cut off by ``max_length`` (they are scored as missed)."""


#: Tokenizer settings that say where it was loaded from, or what its last call did: not what it computes.
_NOT_CONTENT = frozenset({"name_or_path", "cache_dir", "is_local", "local_files_only", "max_length", "stride", "truncation_strategy"})


#: Tokenizer attributes a call reads that may be set after loading (``tokenizer.split_special_tokens = True``), when
#: ``init_kwargs`` still says what loading gave.
_LIVE_SETTINGS = ("split_special_tokens", "add_bos_token", "add_eos_token", "do_lower_case", "clean_up_tokenization_spaces")


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A stable hash of what a tokenizer computes: its vocabulary, rules and settings, not the folder it came from.

    ``datasets``' own hash of a tokenizer includes its path, so a demo encoder built afresh in each
    run directory, or a model folder copied elsewhere, tokenized everything again (and the cache
    grew each run). A fast tokenizer is hashed from its serialized backend (truncation and padding
    state left out) and its settings without paths; any other tokenizer as ``datasets`` hashes it.
    """
    import json

    from datasets.fingerprint import Hasher

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not hasattr(backend, "to_str"):
        return Hasher.hash(tokenizer)
    rules = json.loads(backend.to_str())
    rules.pop("truncation", None), rules.pop("padding", None)
    settings = {key: value for key, value in getattr(tokenizer, "init_kwargs", {}).items()
                if key not in _NOT_CONTENT and not key.endswith(("_file", "_dir"))}
    live = {name: getattr(tokenizer, name) for name in _LIVE_SETTINGS if hasattr(tokenizer, name)}  # set after loading too
    return Hasher.hash({"class": type(tokenizer).__name__, "rules": rules, "settings": settings, "live": live,
                        "model_max_length": getattr(tokenizer, "model_max_length", None),
                        "sides": (getattr(tokenizer, "padding_side", None), getattr(tokenizer, "truncation_side", None))})


class _Encoder:
    """Batch encoding with the task's settings; rows that cannot be truncated as asked fall back to longest_first."""

    def __init__(self, tokenizer: Any, task: Task, max_length: int, use_token_type_ids: bool):
        if task.truncation not in TRUNCATION_STRATEGIES:
            raise ConfigError(f"task {task.id!r}: truncation {task.truncation!r} is not one of {', '.join(TRUNCATION_STRATEGIES)}")
        self.tokenizer = tokenizer
        self.truncation: Any = False if task.truncation == "do_not_truncate" else task.truncation
        self.max_length = max_length
        self.keys = ("input_ids", "attention_mask") + (("token_type_ids",) if use_token_type_ids else ())
        self.common = dict(max_length=max_length, return_token_type_ids=use_token_type_ids, return_attention_mask=True)
        self.masker = Masker(tokenizer, task.id, task.mask_probability, task.mask_whole_words) if task.kind is TaskKind.MASKED_LM else None

    def texts(self, first: list[str], second: list[str] | None, spans: list[Any] | None = None) -> dict[str, list[list[int]]]:
        """``tokenizer(first[, second])``; with ``spans`` (each row's character spans) also ``span_tokens``."""
        truncation = self.truncation if second is not None or not self.truncation else "longest_first"
        common = dict(self.common, return_offsets_mapping=True) if spans is not None else self.common
        try:
            encoded = self.tokenizer(first, second, truncation=truncation, **common)
            out = {key: encoded[key] for key in self.keys}
            if self.masker is not None and self.masker.whole_words:
                out[WORDS] = [token_words(encoded, i) for i in range(len(first))]
            if spans is not None:
                out[SPAN_TOKENS] = [token_spans(spans[i], encoded["offset_mapping"][i], encoded.sequence_ids(i),
                                                len(encoded["input_ids"][i]) >= self.max_length) for i in range(len(first))]
            return out
        except Exception:  # e.g. only_second with a first text longer than max_length: retry row by row
            words = self.masker is not None and self.masker.whole_words
            out = {key: [] for key in (*self.keys, *((SPAN_TOKENS,) if spans is not None else ()), *((WORDS,) if words else ()))}
            for i, text in enumerate(first):
                pair = second[i] if second is not None else None
                try:
                    encoded = self.tokenizer(text, pair, truncation=truncation, **common)
                except Exception:
                    encoded = self.tokenizer(text, pair, truncation="longest_first", **common)
                for key in self.keys:
                    out[key].append(encoded[key])
                if words:
                    out[WORDS].append(token_words(encoded, 0))
                if spans is not None:
                    out[SPAN_TOKENS].append(token_spans(spans[i], encoded["offset_mapping"], encoded.sequence_ids(0),
                                                        len(encoded["input_ids"]) >= self.max_length))
            return out

    def questions(self, questions: list[str], contexts: list[str], answers: list[dict[str, list[Any]]], rows: list[int],
                  stride: int, ids: list[Any] | None = None, candidates: list[list[str]] | None = None) -> dict[str, list[Any]]:
        """Extractive QA: ``(question, context)`` in windows of the context (``stride`` tokens shared between
        neighbours; 0: one window, the rest cut), each window's offsets, and the first answer's span in it
        (and the row's answer ``candidates`` on each of its windows, when the task has them)."""
        from mtcore.data.answers import NO_SPAN, answer_span, context_offsets, is_no_answer

        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError("extractive_qa needs a fast tokenizer (character offsets); load it with use_fast=True")
        def encode(members: list[int], shared: int) -> Any:
            options = dict(self.common, return_offsets_mapping=True, return_overflowing_tokens=shared > 0, stride=shared)
            return self.tokenizer([questions[m] for m in members], [contexts[m] for m in members], truncation="only_second", **options)

        def cut(member: int) -> Any:  # a question too long for a window with context: one window, cut on both sides
            return self.tokenizer([questions[member]], [contexts[member]], truncation="longest_first",
                                  **dict(self.common, return_offsets_mapping=True))

        specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        lengths = [len(ids) for ids in self.tokenizer(questions, add_special_tokens=False)["input_ids"]] if stride > 0 else []
        # each row's overlap from its own question (the rows tokenized beside it change nothing): the stride, or half of
        # the room its window leaves for context when the stride does not fit (tokenizers panics, a Rust panic with its
        # backtrace on stderr, unless the stride is below that room); no room at all: one window, cut
        groups: dict[int, list[int]] = {}
        for row in range(len(questions)):
            room = self.max_length - lengths[row] - specials if stride > 0 else 0
            groups.setdefault(0 if stride == 0 else stride if stride < room else (room - 1) // 2, []).append(row)
        per_row: dict[int, list[tuple[Any, int]]] = {}
        for shared, members in groups.items():
            encoding = None
            if stride == 0 or shared > 0:
                try:
                    encoding = encode(members, shared)
                except Exception:  # noqa: BLE001 - a question too long for a window: those rows one by one, below
                    encoding = None
            if encoding is None:
                for member in members:
                    try:
                        if stride > 0 and shared <= 0:
                            raise ValueError("no room for the stride")
                        one = encode([member], shared)
                    except Exception:  # noqa: BLE001 - that row in one window, cut on both sides
                        one = cut(member)
                    per_row.setdefault(member, []).extend((one, i) for i in range(len(one["input_ids"])))
                continue
            mapping = encoding.get("overflow_to_sample_mapping") or list(range(len(encoding["input_ids"])))
            for i, sample in enumerate(mapping):
                per_row.setdefault(members[sample], []).append((encoding, i))
        out: dict[str, list[Any]] = {key: [] for key in (*self.keys, "labels", "offsets", "context", "answers", "example")}
        windows_of: dict[int, list[int]] = {}
        for j in range(len(questions)):  # in row order, each row's windows in order
            for encoding, i in per_row.get(j, []):
                for key in self.keys:
                    out[key].append(encoding[key][i])
                offsets = context_offsets(encoding["offset_mapping"][i], encoding.sequence_ids(i))
                texts, starts = answers[j]["text"], answers[j]["answer_start"]
                if is_no_answer(texts):  # no answer in the context (no_answer tasks): every window points at [CLS]
                    out["labels"].append([0, 0])
                else:
                    out["labels"].append(answer_span(offsets, starts[0], starts[0] + len(texts[0]), contexts[j]) if texts else list(NO_SPAN))
                out["offsets"].append(offsets)
                out["context"].append(contexts[j])
                out["answers"].append(list(texts))
                out["example"].append(rows[j])
                if ids is not None:  # one row per window: the example's id on each
                    out.setdefault("idx", []).append(ids[j])
                if candidates is not None:
                    out.setdefault("candidates", []).append(list(candidates[j] or ()))
                windows_of.setdefault(j, []).append(len(out["labels"]) - 1)
        for positions in windows_of.values():  # another window holds the answer: this one's target is [CLS] ("not here")
            if len(positions) > 1 and any(out["labels"][p][0] >= 0 for p in positions):
                for p in positions:
                    if out["labels"][p][0] < 0:
                        out["labels"][p] = [0, 0]
        return out

    def words(self, tokens: list[list[str]], tags: list[list[int]]) -> dict[str, list[Any]]:
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError("token classification needs a fast tokenizer (word alignment); load it with use_fast=True")
        encoded = self.tokenizer(tokens, is_split_into_words=True, truncation=True, **self.common)
        out: dict[str, list[Any]] = {key: encoded[key] for key in self.keys}
        out["labels"], out[CUT_COLUMN], out[UNSEEN_COLUMN], out[UNSEEN_WORDS_COLUMN], out[FIRST_TOKEN_COLUMN] = [], [], [], [], []
        for i, word_tags in enumerate(tags):
            aligned, previous, last, seen, first = [], None, -1, set(), [-1] * len(word_tags)
            for position, word in enumerate(encoded.word_ids(i)):
                starts = word is not None and word != previous
                aligned.append(word_tags[word] if starts else -100)
                if starts and first[word] < 0:
                    first[word] = position
                previous, last = word, last if word is None else max(last, word)
                seen.add(word)
            out["labels"].append(aligned)
            out[FIRST_TOKEN_COLUMN].append(first)
            full = len(out["input_ids"][i]) >= self.max_length  # truncation cut the row: the words after the last seen one are gone
            out[CUT_COLUMN].append(list(word_tags[last + 1:]) if full else [])
            unseen = [word for word in range(len(word_tags)) if word not in seen and (word < last or not full)]
            out[UNSEEN_COLUMN].append([word_tags[word] for word in unseen])
            out[UNSEEN_WORDS_COLUMN].append(unseen)
        return out


def _encode_batch(batch: dict[str, list[Any]], task: Task, encoder: _Encoder, indices: list[int] | None = None) -> dict[str, list[Any]]:
    kind = task.kind
    if kind is TaskKind.TOKEN_CLASSIFICATION:
        out = encoder.words(batch["tokens"], batch["labels"])
        out["length"] = [len(ids) for ids in out["input_ids"]]
        return out
    if kind is TaskKind.EXTRACTIVE_QA:
        out = encoder.questions(batch["text"], batch["text_pair"], batch["labels"], list(indices or range(len(batch["text"]))),
                                task.stride, batch.get("idx"), batch.get("candidates"))
        out["length"] = [len(ids) for ids in out["input_ids"]]
        return out
    if kind is TaskKind.MULTIPLE_CHOICE:
        out = {key: [] for key in encoder.keys}
        for text, choices in zip(batch["text"], batch["choices"]):
            encoded = encoder.texts(choices, None) if not text else encoder.texts([text] * len(choices), list(choices))
            for key in encoder.keys:
                out[key].append(encoded[key])
        out["length"] = [sum(len(ids) for ids in row) for row in out["input_ids"]]
        out["slots"] = [len(row) * max((len(ids) for ids in row), default=0) for row in out["input_ids"]]
    else:
        out = encoder.texts(batch["text"], batch.get("text_pair"), batch.get("spans") if with_spans(task, encoder.tokenizer) else None)
        out["length"] = [len(ids) for ids in out["input_ids"]]
    if encoder.masker is not None:  # masked_lm: the masked tokens are the targets
        rows = list(indices if indices is not None else range(len(out["input_ids"])))
        out["input_ids"], out["labels"] = encoder.masker(out["input_ids"], rows, out.get(WORDS))
        return out
    out["labels"] = batch["labels"]
    return out


def with_spans(task: Task, tokenizer: Any) -> bool:
    """Whether a task's rows get ``span_tokens``: it maps spans and the tokenizer gives character offsets (a fast one); a
    task whose head pools spans refuses a slow tokenizer, one whose head does not goes without them."""
    if "spans" not in task.input_map:
        return False
    if getattr(tokenizer, "is_fast", False):
        return True
    from mtcore.data.spans import pools_spans

    if pools_spans(task):
        raise ConfigError(f"task {task.id!r}: its head pools spans (head_options: {{pooling: spans}}), which needs a fast tokenizer "
                          f"(character offsets), and {type(tokenizer).__name__} is not one; use an encoder with a tokenizer.json, or "
                          "choose pooling cls")
    return False


def tokenized_features(task: Task, use_token_type_ids: bool, idx_feature: Any = None, spans: bool | None = None) -> Any:
    """The ``datasets.Features`` of a tokenized split."""
    from datasets import Features, List, Value

    def ids(dtype: str) -> Any:
        feature = List(Value(dtype))
        return List(feature) if task.kind is TaskKind.MULTIPLE_CHOICE else feature

    features = {"input_ids": ids("int32"), "attention_mask": ids("int8")}
    if use_token_type_ids:
        features["token_type_ids"] = ids("int8")
    features["labels"] = List(Value("int64")) if task.kind in (TaskKind.EXTRACTIVE_QA, TaskKind.MASKED_LM) else labels_feature(task)
    features["length"] = Value("int32")
    if task.kind is TaskKind.EXTRACTIVE_QA:  # what turns a predicted token span back into text
        features["offsets"] = List(List(Value("int32")))
        features["context"] = Value("string")
        features["answers"] = List(Value("string"))
        features["example"] = Value("int64")  # the prepared row a window comes from
        if "candidates" in task.input_map:  # the texts an answer may be: predictions pick among their spans
            features["candidates"] = List(Value("string"))
    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        features[CUT_COLUMN] = labels_feature(task)
        features[UNSEEN_COLUMN] = labels_feature(task)
        features[UNSEEN_WORDS_COLUMN] = List(Value("int32"))
        features[FIRST_TOKEN_COLUMN] = List(Value("int32"))
    if task.kind is TaskKind.MASKED_LM and task.mask_whole_words:  # each token's word, for masks drawn again in training
        features[WORDS] = List(Value("int32"))
    if ("spans" in task.input_map) if spans is None else spans:  # each span's first and last token, for pooling: spans
        features[SPAN_TOKENS] = List(List(Value("int32")))
    if task.kind is TaskKind.MULTIPLE_CHOICE:
        features["slots"] = Value("int32")  # choices x longest choice: what the row costs once padded
    if idx_feature is not None:
        features["idx"] = idx_feature
    return Features(features)


def tokenize_split(prepared: Any, task: Task, tokenizer: Any, *, max_length: int, use_token_type_ids: bool,
                   split: str = "", tokenizer_key: str | None = None) -> Any:
    """Tokenize one prepared split (see the module docstring); cached under a fingerprint.

    ``tokenizer_key`` saves hashing the tokenizer again when several splits share it.
    """
    encoder = _Encoder(tokenizer, task, max_length, use_token_type_ids)
    idx_feature = prepared.features.get("idx")
    features = tokenized_features(task, use_token_type_ids, idx_feature, with_spans(task, tokenizer))
    windows = task.kind is TaskKind.EXTRACTIVE_QA  # rows of long contexts become several windows
    key = fingerprint("tokenize", TOKENIZE_VERSION, prepared._fingerprint, tokenizer_key or tokenizer_fingerprint(tokenizer),
                      task.kind, task.truncation, max_length, use_token_type_ids, pipeline_key(), task.stride if windows else None,
                      (MASKING_VERSION, task.mask_probability, task.mask_whole_words) if task.kind is TaskKind.MASKED_LM else None)
    drop = [column for column in prepared.column_names if column != "idx" or windows]

    def encode(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        return _encode_batch(batch, task, encoder, indices)

    from mtcore.data.map_batches import text_batch_size

    return map_or_rebuild(prepared, encode, batched=True, batch_size=text_batch_size(prepared), with_indices=True, remove_columns=drop,
                          features=features, new_fingerprint=key, desc=f"Tokenizing {task.id} {split}".rstrip())


def cut_words(rows: Any) -> tuple[int, int]:
    """``(rows, words)``: how many rows of a tokenized token-classification split lost words to
    ``max_length``, and how many words they lost (read from ``cut_labels``: works on a cache hit)."""
    names = getattr(rows, "column_names", None)
    if names is None or CUT_COLUMN not in names:
        return 0, 0
    import pyarrow.compute as pc

    counts = pc.list_value_length(rows.with_format("arrow")[CUT_COLUMN])
    return int(pc.sum(pc.greater(counts, 0)).as_py() or 0), int(pc.sum(counts).as_py() or 0)


def warn_cut_words(rows: Any, task: Task, split: str, max_length: int, limit: int | None = None, outcome: str | None = None,
                   where: str | None = None) -> int:
    """One :class:`CutWordsWarning` line when rows of ``split`` lost words to ``max_length``; returns the
    number of words cut. ``limit``: the most the tokenizer's model accepts (raising max_length cannot help past it);
    ``outcome``: what becomes of those words (default: how evaluation scores them); ``where``: the rows'
    origin for the message (default: ``"<split> split"``)."""
    cut_rows, words = cut_words(rows)
    if not words:
        return 0
    if isinstance(limit, int) and 0 < limit <= max_length:
        fix = f"{max_length} is the most the encoder accepts: split long rows into shorter ones (e.g. one sentence a row)"
    else:
        fix = "raise the task's max_length (config: tasks.<i>.max_length=N; Python: Task(max_length=N))"
    if outcome is None:
        outcome = "evaluation scores them as " + ("predicted 'O'" if "O" in task.labels else "wrong")
    warnings.warn(f"task {task.id!r}, {where or split + ' split'}: {cut_rows} of {rows.num_rows} rows lose {words} word(s) past max_length "
                  f"{max_length} (the model never sees them; {outcome}): {fix}", CutWordsWarning, stacklevel=3)
    return words
