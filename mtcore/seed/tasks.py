"""``Tasks`` (was ``src.tasks``): the tasks of a notebook, tokenized for one encoder.

::

    tasks = Tasks([danetqa, terra], encoder_path)
    tasks.data            # {"danetqa": TaskData, "terra": TaskData}: for MultitaskBatchSampler
    tasks.heads           # {"danetqa": Task, "terra": Task}: for MultitaskModel
    model = MultitaskModel(encoder_path, tasks.heads)
    tasks.model is model  # True: the model last built from tasks.heads

``tasks.model`` — the seed's example moves and switches ``tasks.model`` although it built
``model`` itself — is the model most recently built from ``tasks.heads`` by
:class:`mtcore.seed.models.MultitaskModel`; when none was built yet, the first access builds
one (``MultitaskModel(encoder_path, tasks.heads)``) and keeps it.
"""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mtcore.errors import ConfigError, unknown
from mtcore.model.quiet_bars import transformers_bars_off
from mtcore.seed.classification import SequenceClassificationTask
from mtcore.task import SPLITS, Task

if TYPE_CHECKING:
    from mtcore.data.task_data import TaskData


#: Every live :class:`Tasks`, oldest first (weak: a notebook's old ones go with it).
_LIVE: list[weakref.ref[Tasks]] = []


def encoder_key(encoder: Any) -> str | None:
    """What identifies an encoder: its local directory (resolved), hub id, or a loaded model's ``name_or_path``."""
    if not isinstance(encoder, (str, os.PathLike)):
        encoder = getattr(encoder, "name_or_path", None) or getattr(getattr(encoder, "config", None), "_name_or_path", None)
        if not isinstance(encoder, (str, os.PathLike)) or not str(encoder):
            return None
    path = os.fspath(encoder)
    return os.path.realpath(path) if os.path.isdir(path) else path


def tasks_named(heads: Mapping[str, Any], encoder: Any = None) -> Tasks | None:
    """The live :class:`Tasks` whose task names are ``heads``' keys (a heads dict rebuilt from
    ``tasks.heads`` with a custom head in it), or None. When several have those names, the one for
    ``encoder``; a :class:`ConfigError` when that does not single one out."""
    def named() -> list[Tasks]:
        found = [ref() for ref in _LIVE]
        return [tasks for tasks in found if tasks is not None and set(tasks.names) == set(heads)]

    candidates = named()
    if len(candidates) > 1:
        candidates = []  # (holds them alive)
        gc.collect()  # a notebook's replaced Tasks objects live on in reference cycles until collected
        candidates = named()
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    key = encoder_key(encoder)
    matching = [tasks for tasks in candidates if key is not None and encoder_key(tasks.encoder_path) == key]
    if len(matching) == 1:
        return matching[0]
    which = "all for this encoder" if matching else "none for this encoder"
    raise ConfigError(f"MultitaskModel: the heads dict has the task names of {len(candidates)} Tasks objects ({which}: "
                      f"{', '.join(repr(t) for t in (matching or candidates))}), so it cannot tell whose tokenizer to take; "
                      "build the dict from the one you mean: MultitaskModel(encoder, tasks.heads | {'terra': my_head})")


class TaskHeads(dict):
    """Task name -> :class:`~mtcore.task.Task` (what ``MultitaskModel`` builds heads from).

    A plain dict that remembers the :class:`Tasks` it belongs to (``owner``), so a model built
    from it becomes ``owner.model`` and gets the tokenizer. ``tasks.heads | {"terra": my_head}``
    and ``tasks.heads.copy()`` keep the owner.
    """

    def __init__(self, tasks: Mapping[str, Any], owner: Tasks) -> None:
        super().__init__(tasks)
        self.owner = owner

    def copy(self) -> TaskHeads:
        return TaskHeads(self, self.owner)

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        return TaskHeads({**self, **other}, self.owner)

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        return TaskHeads({**other, **self}, self.owner)


class Tasks:
    """Several :class:`SequenceClassificationTask` tokenized for the encoder at ``encoder_path``.

    :param tasks: the tasks (names must differ).
    :param encoder_path: a hub id or local directory; its tokenizer is loaded from there (with the
        tasks' ``TokenizerConfig(init_config=...)``). ``model_path`` is the seed's name for it.
    :param tokenizer: a ready tokenizer instead.
    :param cache_dir: where tokenized data is cached (default: the ``datasets`` cache).
    """

    @transformers_bars_off()
    def __init__(self, tasks: Sequence[SequenceClassificationTask], encoder_path: str | None = None, *, model_path: str | None = None,
                 tokenizer: Any = None, cache_dir: str | None = None) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from mtcore.data.task_data import load_task_data

        if model_path is not None:  # the seed's name
            if encoder_path is not None and str(encoder_path) != str(model_path):
                raise ConfigError("Tasks got encoder_path and model_path (its seed name) with different values; pass one")
            encoder_path = model_path
        if encoder_path is None:
            raise ConfigError("Tasks([...], encoder_path) needs the encoder's hub id or local directory")
        if isinstance(tasks, str):
            raise ConfigError("Tasks(tasks, encoder_path): the list of tasks comes first, then the encoder path")
        items = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks)
        if not items:
            raise ConfigError("Tasks([...], encoder_path) needs at least one task (a list of SequenceClassificationTask)")
        for i, item in enumerate(items):
            if not isinstance(item, SequenceClassificationTask):
                raise ConfigError(f"Tasks([...], encoder_path): task {i + 1} is a {type(item).__name__}, not a SequenceClassificationTask "
                                  "(the list of tasks comes first, then the encoder path)")
        configs = {tuple(sorted((t.tokenizer_config.init_config or {}).items())) for t in items}
        if len(configs) > 1:
            raise ConfigError("the tasks' TokenizerConfig init_config differ; Tasks loads one tokenizer: give every task the same init_config")
        init_config = dict(next(iter(configs)))
        names = [t.name for t in items]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"task name {duplicates[0]!r} is used twice; give every task its own name")
        self.tasks: dict[str, SequenceClassificationTask] = {t.name: t for t in items}
        self.encoder_path = str(encoder_path)
        trust = bool(init_config.get("trust_remote_code", False))  # asked for in init_config, else said off (never a stdin prompt)
        self.tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(
            self.encoder_path, **{**init_config, "trust_remote_code": trust})
        self.encoder_config = AutoConfig.from_pretrained(self.encoder_path, trust_remote_code=trust)
        self.data: dict[str, TaskData] = {}
        specs: dict[str, Task] = {}
        for name, task in self.tasks.items():
            spec = task.to_task()
            specs[name] = spec
            self.data[name] = load_task_data(
                spec, self.tokenizer, source="memory", splits=tuple(s for s in SPLITS if s in task.dataset_dict),
                encoder_config=self.encoder_config, pad_to_multiple_of=task.tokenizer_config.pad_to_multiple_of,
                cache_dir=cache_dir,
            )
        self.heads = TaskHeads(specs, self)
        self._model: Any = None
        _LIVE[:] = [ref for ref in _LIVE if ref() is not None] + [weakref.ref(self)]

    # ---- the model ------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The model last built from :attr:`heads` (built now, once, if there is none yet)."""
        if self._model is None:
            from mtcore.seed.models import MultitaskModel

            MultitaskModel(self.encoder_path, self.heads)  # registers itself as self._model
        return self._model

    def remember_model(self, model: Any) -> None:
        """Make ``model`` this object's :attr:`model` (called by ``mtcore.seed.models.MultitaskModel``)."""
        self._model = model

    # ---- a read-only mapping of the tasks ---------------------------------------------------
    def __getitem__(self, name: str) -> SequenceClassificationTask:
        try:
            return self.tasks[name]
        except KeyError:
            raise unknown("task", name, self.tasks) from None

    def __iter__(self) -> Iterator[SequenceClassificationTask]:
        return iter(self.tasks.values())

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def names(self) -> list[str]:
        return list(self.tasks)

    def __repr__(self) -> str:
        return f"Tasks({self.names}, {self.encoder_path!r})"
