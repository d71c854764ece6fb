"""An unexpected exception's one line names the plugin or user code it came from (mtcore.error_origin).

Was: ``error: unexpected ZeroDivisionError: division by zero (set MT_DEBUG=1 to see the traceback)``, naming
no component, when a plugin's (or the user's own) sampler, head or loss strategy raised during ``mt train``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
from authoring.plugin_paths import plugin_paths

from mtcore.error_origin import Origin, origin, unexpected_line

FAULTY = '''def divide(total, parts):
    return total / parts


def through_json(text):
    import json

    return json.loads(text)
'''
PLUGIN = '''from mtcore.hookspecs import hookimpl


@hookimpl
def mt_register_loss_strategies(register):
    register("boom", "mt_origin_e2e.losses:Boom", "fails at its first step")
'''
LOSSES = '''from mtcore.train.losses import SingleTaskLoss


class Boom(SingleTaskLoss):
    def begin_step(self, step, reduce_mean=None):
        self.scale = 1 / (step - step)
'''


def _caught(function, *args):
    """The exception ``function(*args)`` raises, as a caller inside mtcore sees it (this test's frame left out)."""
    try:
        function(*args)
    except Exception as exc:  # noqa: BLE001
        return exc.with_traceback(exc.__traceback__.tb_next)
    raise AssertionError("it did not raise")


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.fixture
def installed(tmp_path):
    """``installed(package, files)``: a plugin distribution (``.dist-info`` with an ``mtcore`` entry point) on sys.path."""
    for paths in plugin_paths("mt_origin_"):
        def put(package: str, files: dict[str, str]) -> Path:
            paths.put(tmp_path / package, package, files)
            return tmp_path / package / package

        yield put


def test_a_frame_of_an_installed_plugin_names_its_distribution_file_line_and_function(installed):
    package = installed("mt_origin_unit", {"plugin.py": "", "faulty.py": FAULTY})
    faulty = importlib.import_module("mt_origin_unit.faulty")
    error = _caught(faulty.divide, 1, 0)
    line = _line_of(package / "faulty.py", "total / parts")
    assert origin(error) == Origin(str(package / "faulty.py"), line, "divide", "mt-origin-unit", "mt_origin_unit/faulty.py")
    assert unexpected_line(error) == ("unexpected ZeroDivisionError: division by zero "
                                      f"(from plugin 'mt-origin-unit', at mt_origin_unit/faulty.py:{line} in divide)")
    from_library = _caught(faulty.through_json, "{")  # the innermost frames are json's: the plugin's call is named
    assert origin(from_library).lineno == _line_of(package / "faulty.py", "json.loads(text)")


def test_the_bundled_plugins_are_plugins_too():
    import mt_nli

    path = str(Path(mt_nli.__file__).parent / "faulty.py")
    scope = {"__name__": "mt_nli.faulty"}
    exec(compile(FAULTY, path, "exec"), scope)  # code of mt_nli's package, as its own modules run
    assert unexpected_line(_caught(scope["divide"], 1, 0)).endswith("(from plugin 'mt-nli', at mt_nli/faulty.py:2 in divide)")


def test_the_users_own_module_is_named_by_its_path(tmp_path, monkeypatch):
    (tmp_path / "my_heads_origin.py").write_text(FAULTY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module("my_heads_origin")
    try:
        error = _caught(module.divide, 1, 0)
        assert unexpected_line(error) == "unexpected ZeroDivisionError: division by zero (at my_heads_origin.py:2 in divide)"
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")  # outside the working directory: the whole path
        assert origin(error).describe() == f"at {(tmp_path / 'my_heads_origin.py').resolve()}:2 in divide"
    finally:
        sys.modules.pop("my_heads_origin", None)


def test_an_error_inside_mtcore_or_libraries_alone_keeps_the_plain_line():
    from mtcore.train.loop import batch_stream, error_line

    error = _caught(next, batch_stream([]))  # mtcore's own RuntimeError
    assert origin(error) is None
    assert error_line(error) == unexpected_line(error) == "unexpected RuntimeError: the batch sampler yields no batches"
    assert origin(_caught(json.loads, "{")) is None  # the standard library
    idna = pytest.importorskip("idna")  # an installed distribution that is no plugin
    assert origin(_caught(idna.encode, "a..b")) is None
    assert unexpected_line(_caught(int.from_bytes, "x")).startswith("unexpected TypeError: ")  # no frame at all
    generated = {"__name__": "dataclass_like"}
    exec(compile(FAULTY, "<string>", "exec"), generated)  # generated code: no file to point at
    assert origin(_caught(generated["divide"], 1, 0)) is None


def test_the_cause_is_looked_at_when_the_error_itself_came_from_mtcore(installed):
    installed("mt_origin_cause", {"plugin.py": "", "faulty.py": FAULTY})
    faulty = importlib.import_module("mt_origin_cause.faulty")
    wrapped = _caught(json.loads, "{")  # e.g. mtcore's ``raise X from exc`` around a plugin's error
    wrapped.__cause__ = _caught(faulty.divide, 1, 0)
    assert origin(wrapped).plugin == "mt-origin-cause" and origin(wrapped).function == "divide"
    wrapped.__cause__, wrapped.__context__ = None, wrapped.__cause__  # raised while handling it
    wrapped.__suppress_context__ = False  # (setting __cause__ set it)
    assert origin(wrapped).function == "divide"
    wrapped.__suppress_context__ = True  # ``from None``: not its origin
    assert origin(wrapped) is None
    own = _caught(faulty.through_json, "{")  # its own frames name a plugin: that one, not the cause's
    own.__cause__ = _caught(faulty.divide, 1, 0)
    assert origin(own).function == "through_json"


def test_mt_train_names_the_plugin_component_that_raised_and_records_it(installed, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mtcore.cli.app import app
    from mtcore.plugins import load_registry
    from mtcore.testing import build_tiny_encoder

    package = installed("mt_origin_e2e", {"plugin.py": PLUGIN, "losses.py": LOSSES})
    load_registry(refresh=True, warn=False)
    words = ["good", "bad", "film", "the", "was"]
    encoder = build_tiny_encoder(tmp_path / "encoder", "bert", words=words, hidden_size=16, num_layers=1, num_heads=2)
    rows = [{"idx": i, "text": f"the film was {'good' if i % 2 else 'bad'}", "label": ["neg", "pos"][i % 2]} for i in range(8)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = {"seed": 1, "cpu": True, "precision": "fp32", "encoder": {"path": str(encoder)},
              "tasks": [{"define": {"name": "sent", "kind": "text_classification", "labels": ["neg", "pos"],
                                    "files": {"train": str(tmp_path / "train.jsonl")}}}],
              "schedule": {"max_steps": 2, "warmup_steps": 0}, "batching": {"batch_size": 4},
              "loss": {"strategy": "origin_e2e:boom"}, "evaluation": {"every": None, "at_end": False},
              "checkpoint": {"every": None}, "logging": {"every": 1, "progress": "none", "plot": False}}
    (tmp_path / "train.yaml").write_text(json.dumps(config))
    monkeypatch.delenv("MT_DEBUG", raising=False)
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(tmp_path / "train.yaml"), "--output-dir", str(run)])
    line = _line_of(package / "losses.py", "1 / (step - step)")
    said = f"unexpected ZeroDivisionError: division by zero (from plugin 'mt-origin-e2e', at mt_origin_e2e/losses.py:{line} in begin_step)"
    assert result.exit_code == 1, result.output
    said_lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("note: ")]  # the run's notes
    assert said_lines == [f"error: {said} (set MT_DEBUG=1 to see the traceback)"]
    assert "Traceback" not in result.output
    events = [json.loads(text) for text in (run / "metrics.jsonl").read_text().splitlines() if text.strip()]
    assert events[-1]["event"] == "error" and events[-1]["message"] == said
