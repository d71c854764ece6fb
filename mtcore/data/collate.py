"""Dynamic padding: tokenized rows -> one :class:`~mtcore.data.batch.BatchData` of tensors.

Sequences are padded (on the right) to the longest in the batch, rounded up to
``pad_to_multiple_of`` when set. Labels become int64 (classes, choices, tags; tags padded with
-100; extractive QA's ``(batch, 2)`` answer start and end tokens) or float32 (regression, multi-label). Multiple-choice rows collate to
``(batch, choices, length)``; rows with fewer choices than the batch's most are padded with
stand-in choices (one token: the row's first, usually ``[CLS]``) and the batch carries
``choice_mask`` ``(batch, choices)``, false at those. The model sets their logits to the dtype's
lowest value, so they never win, get no probability and no loss: every row scores as it would
alone. A batch whose rows all have the same number of choices has no ``choice_mask``.

Rows with ``span_tokens`` (tasks mapping ``spans``) give ``span_tokens`` ``(batch, spans, 2)``.

With ``padding_free=True`` the batch also carries ``token_index`` and ``cu_seqlens`` (see
:mod:`mtcore.model.padding_free`), computed here on the CPU so the device never waits for them.

Unlabelled rows (labels -1, NaN, all -1.0, or all -100) are for prediction: ``labels`` is left
out of a batch in which no row is labelled. In a batch mixing both (a partly labelled ``test``
split), every kind keeps its "no label" marker, which the losses and metrics skip: class ids
become -100, regression targets stay NaN, multi-label rows stay all -1.0, tags stay -100.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mtcore.data.batch import Batch, BatchData
from mtcore.task import TaskKind

_FLOAT_KINDS = (TaskKind.REGRESSION, TaskKind.MULTI_LABEL)
_TOKEN_KINDS = (TaskKind.TOKEN_CLASSIFICATION, TaskKind.MASKED_LM)  # labels per token, -100: none


def _columns(rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    if isinstance(rows, Mapping):  # dataset[indices] gives columns already
        return {key: list(value) for key, value in rows.items()}
    if not rows:
        raise ValueError("cannot collate an empty batch")
    return {key: [row[key] for row in rows] for key in rows[0]}


def is_labelled(kind: TaskKind, label: Any) -> bool:
    """Whether one row's ``labels`` value is a real label (not the "no label" marker of its kind)."""
    if kind is TaskKind.REGRESSION:
        return not math.isnan(label)
    if kind is TaskKind.MULTI_LABEL:
        return not all(value == -1.0 for value in label)
    if kind in _TOKEN_KINDS:
        return any(value != -100 for value in label)
    if kind is TaskKind.EXTRACTIVE_QA:  # [first, last] token of the answer; [-100, -100]: none, or cut off
        return label[0] >= 0
    return label != -1


def _span_tensor(rows: list[list[list[int]]]) -> Any:
    import torch

    from mtcore.errors import DataError

    counts = sorted({len(spans) for spans in rows})
    if len(counts) > 1:
        raise DataError(f"rows of one batch have {' and '.join(map(str, counts))} spans; every row of a task needs the same number "
                        "(start == end marks a span a row lacks)")
    return torch.tensor(rows, dtype=torch.long).reshape(len(rows), counts[0], 2)


class Collator:
    """``collator(rows) -> BatchData``; ``rows`` is a list of row dicts or a dict of columns."""

    def __init__(self, pad_token_id: int, kind: TaskKind | str, pad_to_multiple_of: int | None = None,
                 uses_token_type_ids: bool = True, padding_free: bool = False):
        self.pad_token_id = int(pad_token_id if pad_token_id is not None else 0)
        self.kind = TaskKind(kind)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.uses_token_type_ids = uses_token_type_ids
        self.padding_free = padding_free
        #: a masked_lm task's :class:`~mtcore.data.masking.Masker`: the training sampler draws new masks with it
        self.masker: Any = None

    def __repr__(self) -> str:
        return (f"Collator(pad_token_id={self.pad_token_id}, kind={self.kind.value!r}, "
                f"pad_to_multiple_of={self.pad_to_multiple_of}, uses_token_type_ids={self.uses_token_type_ids}, "
                f"padding_free={self.padding_free})")

    def padded_length(self, longest: int) -> int:
        multiple = self.pad_to_multiple_of
        return -(-longest // multiple) * multiple if multiple else longest

    @staticmethod
    def _mask(sequences: list[list[int]], length: int) -> Any:
        import torch

        lengths = torch.tensor([len(sequence) for sequence in sequences], dtype=torch.long)
        return torch.arange(length)[None, :] < lengths[:, None]

    @staticmethod
    def _pad(sequences: list[list[int]], mask: Any, value: int) -> Any:
        """``sequences`` laid into a ``mask``-shaped int64 tensor, ``value`` elsewhere. In NumPy: torch's boolean
        ``index_put_`` took 4-30 times as long (13.7 ms for 64 x 253 tokens with two threads, a cpuperf audit)."""
        import numpy as np
        import torch

        out = np.full(tuple(mask.shape), value, dtype=np.int64)
        values = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64)
        positions = mask.numpy()
        if values.size != int(positions.sum()):  # a row's labels longer than its input_ids: never spilt into the next row
            raise ValueError(f"the batch's sequences hold {values.size} values for {int(positions.sum())} token positions: a row's "
                             "labels (or token_type_ids) are not as long as its input_ids")
        out[positions] = values
        return torch.from_numpy(out)

    def __call__(self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> BatchData:
        import torch

        columns = _columns(rows)
        ids = columns["input_ids"]
        multiple_choice = self.kind is TaskKind.MULTIPLE_CHOICE
        choice_mask = None
        if multiple_choice:
            counts = [len(choices) for choices in ids]
            n_choices = max(counts)
            if min(counts) < n_choices:
                ids = self._pad_choices(ids, n_choices)
                choice_mask = torch.arange(n_choices)[None, :] < torch.tensor(counts)[:, None]
                if columns.get("token_type_ids") is not None:
                    columns["token_type_ids"] = self._pad_choices(columns["token_type_ids"], n_choices)
            flat = [sequence for choices in ids for sequence in choices]
        else:
            flat = ids
        length = self.padded_length(max(len(sequence) for sequence in flat))
        mask = self._mask(flat, length)
        data = BatchData()
        data["input_ids"] = self._pad(flat, mask, self.pad_token_id)
        data["attention_mask"] = mask.long()
        # no padded position (e.g. a batch of one row, or rows of one length): the model can go without the mask
        data.no_padding = not multiple_choice and not self.padding_free and bool(mask.all())
        if self.uses_token_type_ids:
            types = columns.get("token_type_ids")
            if types is not None:
                types = [sequence for choices in types for sequence in choices] if multiple_choice else types
                data["token_type_ids"] = self._pad(types, mask, 0)
            else:
                data["token_type_ids"] = torch.zeros_like(data["input_ids"])
        if multiple_choice:
            for key in list(data):
                data[key] = data[key].view(len(ids), n_choices, length)
            if choice_mask is not None:
                data["choice_mask"] = choice_mask
        if columns.get("span_tokens") is not None:  # each row's spans: (batch, spans, 2) first and last token
            data["span_tokens"] = _span_tensor(columns["span_tokens"])
        if self.padding_free:
            from mtcore.model.padding_free import pack_indices

            data["token_index"], data["cu_seqlens"] = pack_indices(mask)
        labels = columns.get("labels")
        if labels is not None:
            labelled = [is_labelled(self.kind, label) for label in labels]
            # QA: a batch of cut answers, token tasks: one of sentences whose words give no token (empty, zero-width
            # characters; length grouping puts them together) trains on nothing, with a graph: a zero loss, not none
            if any(labelled) or self.kind in (TaskKind.EXTRACTIVE_QA, *_TOKEN_KINDS):
                data["labels"] = self._labels(labels, labelled, mask)
        return data

    @staticmethod
    def _pad_choices(rows: list[list[list[int]]], n_choices: int) -> list[list[list[int]]]:
        """Each row's choices, then one-token stand-ins (its first token) up to ``n_choices``."""
        return [list(choices) + [list(choices[0][:1])] * (n_choices - len(choices)) for choices in rows]

    def _labels(self, labels: list[Any], labelled: list[bool], mask: Any) -> Any:
        import torch

        if self.kind in _TOKEN_KINDS:
            return self._pad(labels, mask, -100)
        if self.kind is TaskKind.EXTRACTIVE_QA:
            return torch.tensor([list(label) if known else [-100, -100] for label, known in zip(labels, labelled)], dtype=torch.long)
        if self.kind in _FLOAT_KINDS:  # unlabelled rows keep NaN / all -1.0, which the losses and metrics skip
            return torch.tensor(labels, dtype=torch.float32)
        return torch.tensor([label if known else -100 for label, known in zip(labels, labelled)], dtype=torch.long)

    def batch(self, name: str, rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> Batch:
        """Collate ``rows`` into a :class:`Batch` of task ``name`` (size, real tokens and ids filled in)."""
        columns = _columns(rows)
        data = self(columns)
        lengths = columns.get("length") or [len(sequence) for sequence in columns["input_ids"]]
        return Batch(name=name, data=data, size=len(columns["input_ids"]), num_tokens=int(sum(lengths)), idx=columns.get("idx"))
