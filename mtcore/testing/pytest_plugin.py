"""pytest fixtures for plugin authors.

Load it from your plugin's top-level ``conftest.py``::

    pytest_plugins = ["mtcore.testing.pytest_plugin"]

Fixtures:

* ``tiny_encoder`` — the path of a tiny randomly initialised BERT and its tokenizer, built offline
  once per test session;
* ``tiny_encoder_factory`` — ``tiny_encoder_factory("roberta", words=[...])`` builds (and caches)
  other architectures;
* ``mt_registry`` — the plugin registry, freshly loaded (the installed plugins);
* ``mt_smoke_train`` — :func:`mtcore.testing.smoke_train` with the tiny encoder and a temporary
  output folder filled in: ``mt_smoke_train("myplugin:task", steps=3)``.

For a plugin's own test suite, :func:`plugin_test_fixtures` makes the fixtures that need to know
the package (``registry``, ``read_source``, a ``tiny_encoder`` whose vocabulary holds the words
of the package's data files); in ``tests/conftest.py``::

    from mtcore.testing.pytest_plugin import plugin_test_fixtures

    registry, read_source, tiny_encoder = plugin_test_fixtures("my_plugin")

Loading the plugin also switches the Hugging Face libraries to offline mode (``HF_HUB_OFFLINE=1``,
``HF_DATASETS_OFFLINE=1``, unless already set), so a test never downloads a model or a dataset.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

OFFLINE_VARIABLES = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


# Set when the plugin is loaded, before test modules import huggingface_hub (which reads them once).
for _name, _value in OFFLINE_VARIABLES.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def tiny_encoder_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build tiny offline encoders: ``factory(arch="bert", **build_tiny_encoder_options) -> Path``."""
    from mtcore.testing.tiny import build_tiny_encoder

    built: dict[tuple, Path] = {}

    def factory(arch: str = "bert", **options: Any) -> Path:
        key = (arch, tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in options.items())))
        if key not in built:
            built[key] = build_tiny_encoder(tmp_path_factory.mktemp(f"tiny-{arch}"), arch, **options)
        return built[key]

    return factory


@pytest.fixture(scope="session")
def tiny_encoder(tiny_encoder_factory: Callable[..., Path]) -> Path:
    """A tiny BERT encoder directory (``AutoModel`` / ``AutoTokenizer`` load it)."""
    return tiny_encoder_factory("bert")


@pytest.fixture
def mt_registry():  # type: ignore[no-untyped-def]
    """The registry of installed plugins, loaded afresh for this test."""
    from mtcore.plugins import load_registry

    return load_registry(refresh=True, warn=False)


@pytest.fixture
def mt_smoke_train(tiny_encoder: Path, tmp_path: Path) -> Callable[..., Any]:
    """``mt_smoke_train(task_or_id, steps=3, **options)``: a smoke training with the tiny encoder."""
    from mtcore.testing.smoke import smoke_train

    def run(tasks: Any, **options: Any) -> Any:
        options.setdefault("encoder", tiny_encoder)
        options.setdefault("output_dir", tmp_path / "smoke")
        return smoke_train(tasks, **options)

    return run


def plugin_test_fixtures(package: str) -> tuple[Any, Any, Any]:
    """Fixtures ``registry``, ``read_source`` and ``tiny_encoder`` for the tests of ``package``.

    * ``registry`` (session) — the installed plugins, loaded afresh once;
    * ``read_source(task, source, splits=("train", "validation", "test"), **options)`` — a task's
      source read as mtcore reads it, ``{split: Dataset}``, with a per-test datasets cache;
    * ``tiny_encoder`` (session) — a tiny random BERT whose vocabulary holds the words of the
      package's data files (``.jsonl``/``.json``/``.csv``/``.tsv``, in ``sample/``, ``data/`` or
      anywhere in it), built offline.

    ``package`` is the import package (``mt_toxic``); the plugin's entry-point or distribution
    name (``toxic``, ``mt-toxic``) works too.
    """

    @pytest.fixture(scope="session")
    def registry():  # type: ignore[no-untyped-def]
        from mtcore.plugins import load_registry

        return load_registry(refresh=True, warn=False)

    @pytest.fixture
    def read_source(tmp_path: Path) -> Callable[..., Any]:
        from mtcore.testing.sources import read_source as read

        return lambda task, source, splits=("train", "validation", "test"), **kw: read(
            task, source, splits, cache_dir=tmp_path / "hf-cache", **kw)

    @pytest.fixture(scope="session")
    def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
        from mtcore.testing.sources import sample_words
        from mtcore.testing.tiny import build_tiny_encoder

        return build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"), "bert", words=sample_words(package))

    return registry, read_source, tiny_encoder

