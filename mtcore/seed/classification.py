"""``SequenceClassificationTask`` (was ``src.classification``): a task with its data in memory.

::

    task = SequenceClassificationTask(
        name="terra",
        dataset_dict=load_dataset("json", data_files={"train": "TERRa/train.jsonl", "validation": "TERRa/val.jsonl"}),
        preprocessor=Preprocessor([NLIPreprocess()]),
        tokenizer_config=TokenizerConfig(max_length=512),
    )
    task.to_task()        # the mtcore Task: kind, labels, head, metrics

The label names come from the data unless given: a ``ClassLabel`` column's names, else the
distinct stored values (JSON booleans give ``False, True``; strings are sorted; integers
``0..n-1``). After preprocessing, a row with ``text_pair`` makes a pair-classification task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtcore.errors import ConfigError, DataError
from mtcore.seed.tokenizers import TokenizerConfig
from mtcore.task import SPLITS, Source, Task

LABEL_FIELD = "label"


def _is_unlabelled(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value == -1)


class SequenceClassificationTask:
    """A (pair) sequence classification task whose data is a ``datasets.DatasetDict`` in memory.

    :param name: the task name (``batch.name`` and the model's head key).
    :param dataset_dict: splits ``train`` / ``validation`` / ``test`` of raw rows.
    :param preprocessor: a :class:`~mtcore.data.preprocess.Preprocessor` (or a list of row
        functions) producing ``text`` [, ``text_pair``] and ``label``.
    :param tokenizer_config: :class:`~mtcore.seed.tokenizers.TokenizerConfig` (default max_length 512).
    :param labels: label names in class-id order (default: read from the data).
    :param label_values: the stored form of each label when it is not the name (e.g. booleans).
    :param head: a registered head name (default ``"classification"``; ``"mlp"`` is the seed's
        N-linear-layers head) and ``head_options`` its options.
    :param metrics: registered metric names (default accuracy, f1_macro).
    """

    def __init__(
        self,
        name: str,
        dataset_dict: Mapping[str, Any],
        preprocessor: Any = None,
        tokenizer_config: TokenizerConfig | None = None,
        *,
        labels: Sequence[str] | None = None,
        label_values: Sequence[Any] | None = None,
        head: str | None = None,
        head_options: Mapping[str, Any] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> None:
        from mtcore.data.preprocess import Preprocessor

        if not isinstance(dataset_dict, Mapping) or "train" not in dataset_dict:
            have = ", ".join(dataset_dict) if isinstance(dataset_dict, Mapping) else type(dataset_dict).__name__
            raise ConfigError(f"task {name!r}: dataset_dict must be a DatasetDict with a 'train' split (it has: {have})")
        unknown = [split for split in dataset_dict if split not in SPLITS]
        if unknown:
            raise ConfigError(f"task {name!r}: split {unknown[0]!r} is not one of {', '.join(SPLITS)}; rename it "
                              "(e.g. load_dataset('json', data_files={'validation': 'val.jsonl'}))")
        self.name = name
        self.dataset_dict = dataset_dict
        if preprocessor is None:
            preprocessor = Preprocessor([])
        elif not isinstance(preprocessor, Preprocessor):
            preprocessor = Preprocessor(preprocessor if isinstance(preprocessor, (list, tuple)) else [preprocessor])
        self.preprocessor: Preprocessor = preprocessor
        self.tokenizer_config = tokenizer_config if tokenizer_config is not None else TokenizerConfig()
        self._labels = tuple(labels) if labels is not None else None
        self._label_values = tuple(label_values) if label_values is not None else None
        self._head = head
        self._head_options = dict(head_options or {})
        self._metrics = tuple(metrics) if metrics is not None else None
        self._task: Task | None = None

    @property
    def splits(self) -> list[str]:
        """The splits of ``dataset_dict``, in canonical order."""
        return [split for split in SPLITS if split in self.dataset_dict]

    def _first_prepared_row(self) -> dict[str, Any]:
        train = self.dataset_dict["train"]
        if len(train) == 0:
            raise DataError(f"task {self.name!r}: the train split has no rows")
        try:
            return self.preprocessor(dict(train[0]))
        except Exception as exc:
            raise DataError(f"task {self.name!r}, train row 1: preprocessing failed with {type(exc).__name__}: {exc}") from None

    def _label_values_seen(self) -> list[Any]:
        seen: list[Any] = []
        keys: set[tuple[str, Any]] = set()
        for split in ("train", "validation"):
            if split not in self.dataset_dict:
                continue
            dataset = self.dataset_dict[split]
            if LABEL_FIELD in getattr(dataset, "column_names", ()) and len(self.preprocessor) == 0:
                values = list(dataset[LABEL_FIELD])
            else:
                values = [self.preprocessor(dict(row)).get(LABEL_FIELD) for row in dataset]
            for value in values:
                key = (type(value).__name__, value)
                if not _is_unlabelled(value) and key not in keys:
                    keys.add(key)
                    seen.append(value)
        return seen

    def infer_labels(self) -> tuple[tuple[str, ...], tuple[Any, ...] | None]:
        """Label names (and stored values, when they differ) read from the data."""
        if self._labels is not None:
            return self._labels, self._label_values
        feature = getattr(self.dataset_dict["train"], "features", {}).get(LABEL_FIELD)
        if hasattr(feature, "names"):
            return tuple(feature.names), None
        values = self._label_values_seen()
        if len(values) < 2:
            raise ConfigError(f"task {self.name!r}: found {len(values)} distinct label value(s) in the data; "
                              "pass labels=[...] (and label_values=[...] when stored differently)")
        if all(isinstance(v, bool) for v in values):
            return ("False", "True"), (False, True)
        if all(isinstance(v, str) for v in values):
            return tuple(sorted(values)), None
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and min(values) >= 0:
            return tuple(str(i) for i in range(max(values) + 1)), None
        raise ConfigError(f"task {self.name!r}: labels of mixed types {sorted({type(v).__name__ for v in values})}; "
                          "pass labels=[...] and label_values=[...]")

    def _load(self, task: Task, splits: Sequence[str], /, **_: Any) -> dict[str, Any]:
        """The task's source loader: the in-memory splits."""
        return {split: self.dataset_dict[split] for split in splits if split in self.dataset_dict}

    def to_task(self) -> Task:
        """The mtcore :class:`~mtcore.task.Task` this describes (built once)."""
        if self._task is None:
            row = self._first_prepared_row()
            pair = "text_pair" in row
            if "text" not in row:
                raise DataError(f"task {self.name!r}, train row 1: preprocessing gives no 'text' field (it gives: {', '.join(row)}); "
                                "add a preprocessing step such as NLIPreprocess() or one that sets row['text']")
            labels, values = self.infer_labels()
            self._task = Task(
                name=self.name,
                kind="pair_classification" if pair else "text_classification",
                labels=labels,
                label_values=values,
                inputs={"text": "text", "text_pair": "text_pair"} if pair else {"text": "text"},
                preprocess=(self.preprocessor,) if len(self.preprocessor) else (),
                sources={"memory": Source("sample", self._load, {}, "in-memory DatasetDict")},
                head=self._head,
                head_options=self._head_options,
                metrics=self._metrics,
                max_length=self.tokenizer_config.max_length,
                truncation=self.tokenizer_config.truncation_strategy,
                id_field="idx" if "idx" in row else None,
            )
        return self._task

    def __repr__(self) -> str:
        return f"SequenceClassificationTask(name={self.name!r}, splits={self.splits}, preprocessor={self.preprocessor!r})"
