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
``0..n-1``). After preprocessing, a row with ``text_pair`` makes a pair-classification task and
a row with ``choices`` (``preprocess_parus``) a multiple-choice task. A row in the seed's shape,
``{"input": text or (text, text_pair), "label": ...}``, works as it is.

``NLinearsSequenceClassificationTask`` (the seed's N-linear-layers task) is this task with
``head="mlp"`` and the seed's head settings; ``NLinearsHead`` names that head (``head=NLinearsHead``).
"""

from __future__ import annotations

import functools

from collections.abc import Mapping, Sequence
from typing import Any

from mtcore.errors import ConfigError, DataError, MtError
from mtcore.seed.tokenizers import TokenizerConfig
from mtcore.task import SPLITS, Source, Task

LABEL_FIELD = "label"
SEED_INPUT = "input"
#: the seed's ``activation_fun`` callables, by ``__name__``, -> the mlp head's ``activation``
ACTIVATIONS = ("relu", "gelu", "tanh", "silu", "leaky_relu")


def seed_input(example: dict[str, Any]) -> dict[str, Any] | None:
    """The seed's ``input`` field (a text, or a pair of texts) -> ``text`` [, ``text_pair``]."""
    if SEED_INPUT not in example or "text" in example:
        return None
    value = example[SEED_INPUT]
    if isinstance(value, str):
        return {**example, "text": value}
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return {**example, "text": value[0], "text_pair": value[1]}
    raise DataError(f"field 'input' must be a text or a pair of texts (text, text_pair), got {str(value)[:80]!r}")


def __getattr__(name: str) -> Any:
    if name == "NLinearsHead":  # the seed's N-linear-layers head is mtcore's "mlp" head (imported lazily: torch)
        return _nlinears_head()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.lru_cache(maxsize=1)
def _nlinears_head() -> type:
    """mtcore's ``MLPHead`` under the seed's name; built with the seed's keywords it says how to get one instead."""
    from mtcore.model.heads.classification import MLPHead

    class NLinearsHead(MLPHead):
        def __init__(self, *args: Any, **options: Any) -> None:
            seed = sorted(set(options) & {"dropout", "output_size", "encoder_hidden_size", "linear_hidden_size", "activation_fun"})
            if seed:
                raise ConfigError(f"NLinearsHead({', '.join(f'{k}=...' for k in seed)}): mtcore builds the head for the task; pass "
                                  "head=NLinearsHead (the class), or use NLinearsSequenceClassificationTask(name, data, num_layers=..., "
                                  "dropout=..., linear_hidden_size=..., activation_fun=...)")
            super().__init__(*args, **options)

    return NLinearsHead


def _head_name(head: Any) -> str | None:
    if head is None or head == "mlp":
        return head
    if head == "NLinearsHead" or getattr(head, "__name__", None) in ("MLPHead", "NLinearsHead"):
        return "mlp"
    if not isinstance(head, str):
        raise ConfigError(f"head must be a registered head name such as 'classification' or 'mlp' (NLinearsHead), got {head!r}")
    return head


def _is_unlabelled(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value == -1)


class SequenceClassificationTask:
    """A (pair) sequence classification task whose data is a ``datasets.DatasetDict`` in memory.

    :param name: the task name (``batch.name`` and the model's head key).
    :param dataset_dict: splits ``train`` / ``validation`` / ``test`` of raw rows.
    :param preprocessor: a :class:`~mtcore.seed.preprocessing.Preprocessor` (or a list of row
        functions) producing ``text`` [, ``text_pair``] and ``label``; as in the seed, a row for
        which a step returns ``None`` is dropped (from every split).
    :param tokenizer_config: :class:`~mtcore.seed.tokenizers.TokenizerConfig` (default max_length 512).
    :param labels: label names in class-id order (default: read from the data).
    :param label_values: the stored form of each label when it is not the name (e.g. booleans).
    :param head: a registered head name (default ``"classification"``; ``"mlp"`` is the seed's
        N-linear-layers head) and ``head_options`` its options.
    :param metrics: registered metric names (default accuracy, f1_macro).
    """

    #: What the seed's class took third (positionally), named in the message for an int given there.
    _third_seed_field = "num_labels"

    def __init__(
        self,
        name: str,
        dataset_dict: Mapping[str, Any],
        preprocessor: Any = None,
        tokenizer_config: TokenizerConfig | None = None,
        *,
        labels: Sequence[str] | None = None,
        label_values: Sequence[Any] | None = None,
        num_labels: int | None = None,
        head: str | None = None,
        head_options: Mapping[str, Any] | None = None,
        metrics: Sequence[str] | None = None,
        compute_metrics: Any = None,
    ) -> None:
        from mtcore.seed.preprocessing import Preprocessor

        if not isinstance(name, str):
            raise ConfigError(f"SequenceClassificationTask(name, dataset_dict, ...): the name comes first, got a {type(name).__name__}")
        if isinstance(preprocessor, int):
            seed_field = self._third_seed_field
            raise ConfigError(f"task {name!r}: the third argument is the preprocessor (the seed put {seed_field} there); "
                              f"write {seed_field}={preprocessor!r}, preprocessor=..., tokenizer_config=... as keywords")
        if compute_metrics is not None or callable(metrics):
            raise ConfigError(f"task {name!r}: mtcore computes registered metrics, not a compute_metrics function; "
                              "pass metrics=['accuracy', 'f1_macro'] (names from `mt components metric`)")
        if num_labels is not None and (isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2):
            raise ConfigError(f"task {name!r}: num_labels must be an integer >= 2, got {num_labels!r}")

        if not isinstance(dataset_dict, Mapping) or "train" not in dataset_dict:
            have = ", ".join(dataset_dict) if isinstance(dataset_dict, Mapping) else type(dataset_dict).__name__
            raise ConfigError(f"task {name!r}: dataset_dict must be a DatasetDict with a 'train' split (it has: {have})")
        unknown = [split for split in dataset_dict if split not in SPLITS]
        if unknown:
            raise ConfigError(f"task {name!r}: split {unknown[0]!r} is not one of {', '.join(SPLITS)}; rename it "
                              "(e.g. load_dataset('json', data_files={'validation': 'val.jsonl'}))")
        self.name = name
        self.dataset_dict = dataset_dict
        if not isinstance(preprocessor, Preprocessor):  # None, a list of steps, one step, mtcore's own Preprocessor
            preprocessor = Preprocessor(preprocessor)
        #: the seed's Preprocessor: a step returning None drops the row
        self.preprocessor: Preprocessor = preprocessor
        self.tokenizer_config = tokenizer_config if tokenizer_config is not None else TokenizerConfig()
        self._labels = tuple(labels) if labels is not None else None
        self._label_values = tuple(label_values) if label_values is not None else None
        self._head = _head_name(head)
        self.num_labels = num_labels
        self._head_options = dict(head_options or {})
        self._metrics = tuple(metrics) if metrics is not None else None
        self._task: Task | None = None
        self._scans: dict[str, tuple[list[int] | None, list[Any]]] = {}

    @property
    def splits(self) -> list[str]:
        """The splits of ``dataset_dict``, in canonical order."""
        return [split for split in SPLITS if split in self.dataset_dict]

    def _prepared(self, row: Mapping[str, Any], split: str, number: int) -> dict[str, Any] | None:
        """``row`` after the preprocessor, or None when a step dropped it (returned None, as in the seed)."""
        try:
            return self.preprocessor(dict(row))
        except MtError as exc:  # a step that failed names itself (mtcore.data.preprocess)
            raise DataError(f"task {self.name!r}, {split} row {number}: {exc}") from None
        except Exception as exc:
            raise DataError(f"task {self.name!r}, {split} row {number}: preprocessing failed with {type(exc).__name__}: {exc}") from None

    def _first_prepared_row(self) -> dict[str, Any]:
        train = self.dataset_dict["train"]
        if len(train) == 0:
            raise DataError(f"task {self.name!r}: the train split has no rows")
        for number, row in enumerate(train, 1):
            prepared = self._prepared(row, "train", number)
            if prepared is not None:
                return prepared
        raise DataError(f"task {self.name!r}: preprocessing dropped every train row (a step that returns None drops the row, "
                        "as in the seed); make the steps return the row")

    def _scan(self, split: str) -> tuple[list[int] | None, list[Any], bool]:
        """``(indices of the rows kept, None when all are; label values of the kept rows, distinct; whether a step
        changed a kept row's label)`` of ``split`` after the preprocessor (run once per split)."""
        if split not in self._scans:
            dataset = self.dataset_dict[split]
            kept: list[int] = []
            labels: dict[tuple[str, Any], Any] = {}
            changed = False
            for index, row in enumerate(dataset):
                prepared = self._prepared(row, split, index + 1)
                if prepared is not None:
                    kept.append(index)
                    value = prepared.get(LABEL_FIELD)
                    labels.setdefault((type(value).__name__, value), value)
                    changed = changed or value != row.get(LABEL_FIELD)
            self._scans[split] = (kept if len(kept) < len(dataset) else None, list(labels.values()), changed)
        return self._scans[split]

    def _relabelled(self) -> bool:
        """Whether a preprocessing step changes the ``label`` of a row (binarising neg/neu/pos): the raw column's
        ``ClassLabel`` names then no longer name the classes."""
        return len(self.preprocessor) > 0 and any(self._scan(split)[2] for split in ("train", "validation") if split in self.dataset_dict)

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
                values = self._scan(split)[1]
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
        if hasattr(feature, "names") and not self._relabelled():
            return tuple(feature.names), None
        values = self._label_values_seen()
        if not values:
            raise ConfigError(f"task {self.name!r}: no row has a {LABEL_FIELD!r} after preprocessing; make a step set it "
                              "(NLIPreprocess(label='<the data's label field>')) or pass labels=[...]")
        if len(values) < 2:
            raise ConfigError(f"task {self.name!r}: found {len(values)} distinct label value(s) in the data; "
                              "pass labels=[...] (and label_values=[...] when stored differently)")
        if all(isinstance(v, bool) for v in values):
            return ("False", "True"), (False, True)
        if all(isinstance(v, str) for v in values):
            numeric = all(v.strip().isdigit() for v in values)  # "1", "2", "10": in number order, not "1", "10", "2"
            return tuple(sorted(values, key=lambda v: (int(v), v) if numeric else (0, v))), None
        if all(isinstance(v, float) and v.is_integer() for v in values):  # 0.0 / 1.0 (pandas, CSV): the class ids 0 and 1
            values = [int(v) for v in values]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and min(values) >= 0:
            return tuple(str(i) for i in range(max(values) + 1)), None
        kinds = sorted({type(v).__name__ for v in values})
        what = f"of mixed types {kinds}" if len(kinds) > 1 else f"of type {kinds[0]} that are not class ids 0, 1, ..."
        raise ConfigError(f"task {self.name!r}: labels {what}; pass labels=[...] and label_values=[...]")

    def _load(self, task: Task, splits: Sequence[str], /, **_: Any) -> dict[str, Any]:
        """The task's source loader: the in-memory splits, less the rows a preprocessing step dropped."""
        loaded: dict[str, Any] = {}
        for split in splits:
            if split not in self.dataset_dict:
                continue
            dataset = self.dataset_dict[split]
            kept = self._scan(split)[0] if len(self.preprocessor) else None
            if kept is not None:
                dataset = dataset.select(kept) if hasattr(dataset, "select") else [dataset[i] for i in kept]
            loaded[split] = dataset
        return loaded

    def _checked_labels(self) -> tuple[tuple[str, ...], tuple[Any, ...] | None]:
        """:meth:`infer_labels`, held against ``num_labels`` (integer labels 0..k-1 grow to ``num_labels``)."""
        labels, values = self.infer_labels()
        wanted = self.num_labels
        if wanted is None or wanted == len(labels):
            return labels, values
        numbered = self._labels is None and values is None and labels == tuple(str(i) for i in range(len(labels)))
        if numbered and wanted > len(labels):
            return tuple(str(i) for i in range(wanted)), None
        raise ConfigError(f"task {self.name!r}: num_labels={wanted} but the labels are {', '.join(labels)} ({len(labels)}); "
                          "fix num_labels or pass labels=[...]")

    def to_task(self, model_path: str | None = None) -> Task:
        """The mtcore :class:`~mtcore.task.Task` this describes (built once); ``model_path`` (the seed's
        argument) is not needed: ``Tasks`` gives the encoder."""
        if self._task is None:
            from mtcore.seed.preprocessing import step_reference

            row = self._first_prepared_row()
            # the steps by name where they can be imported back, so a saved model prepares rows by itself
            steps = tuple(step_reference(step) for step in self.preprocessor.steps)
            if SEED_INPUT in row and "text" not in row:
                steps += (f"{__name__}:seed_input",)
                row = seed_input(row) or row
            pair = "text_pair" in row
            if "text" not in row:
                raise DataError(f"task {self.name!r}, train row 1: preprocessing gives no 'text' field (it gives: {', '.join(row)}); "
                                "add a preprocessing step such as NLIPreprocess() or one that sets row['text'] (or row['input'])")
            if "choices" in row:  # preprocess_parus: the context and its choices
                kind, labels, values, inputs = "multiple_choice", (), None, {"text": "text", "choices": "choices"}
            else:
                kind = "pair_classification" if pair else "text_classification"
                labels, values = self._checked_labels()
                inputs = {"text": "text", "text_pair": "text_pair"} if pair else {"text": "text"}
            self._task = Task(
                name=self.name,
                kind=kind,
                labels=labels,
                label_values=values,
                inputs=inputs,
                preprocess=steps,
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
        return f"{type(self).__name__}(name={self.name!r}, splits={self.splits}, preprocessor={self.preprocessor!r})"


def _activation_name(function: Any) -> str:
    if function is None:
        return "none"
    name = function if isinstance(function, str) else getattr(function, "__name__", "")
    if name not in ACTIVATIONS + ("none",):
        raise ConfigError(f"activation_fun {function!r} has no mlp-head equivalent; use one of {', '.join(ACTIVATIONS)} "
                          "(torch.nn.functional.relu, ... or its name) or None")
    return name


class NLinearsSequenceClassificationTask(SequenceClassificationTask):
    """The seed's N-linear-layers task: :class:`SequenceClassificationTask` with ``head="mlp"``, on the
    encoder's pooler output (as the seed's ``NLinearsHead``): ``num_layers`` linear layers,
    ``dropout`` on the pooled vector, ``activation_fun`` (relu, gelu, tanh, silu, leaky_relu or None)."""

    _third_seed_field = "num_layers"

    def __init__(self, name: str, dataset_dict: Mapping[str, Any], preprocessor: Any = None, tokenizer_config: TokenizerConfig | None = None,
                 *, num_layers: int = 3, dropout: float = 0.1, linear_hidden_size: int | None = None, activation_fun: Any = "relu",
                 pooling: str = "pooler", **options: Any) -> None:
        head_options: dict[str, Any] = {"num_layers": num_layers, "dropout_in": dropout, "activation": _activation_name(activation_fun),
                                        "pooling": pooling}
        if linear_hidden_size is not None:
            head_options["linear_hidden_size"] = linear_hidden_size
        if options.get("head") not in (None, "mlp"):
            raise ConfigError(f"task {name!r}: NLinearsSequenceClassificationTask uses the mlp head; use SequenceClassificationTask for head={options['head']!r}")
        options.pop("head", None)
        head_options.update(options.pop("head_options", None) or {})
        super().__init__(name, dataset_dict, preprocessor, tokenizer_config, head="mlp", head_options=head_options, **options)
