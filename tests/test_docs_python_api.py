"""docs/python-api.md stays true: its signatures match the code, and its cheap snippets run.

The snippets run as written, but for a tiny offline encoder in place of the hub one, a few
training steps instead of 50, and paths in a temporary folder.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "python-api.md"
PLUGIN_DOC = ROOT / "docs" / "writing-plugins.md"


def python_blocks(path: Path) -> dict[str, list[str]]:
    """The ```python blocks of a Markdown file, by the ``## `` heading they are under."""
    blocks: dict[str, list[str]] = {}
    heading = ""
    for part in re.split(r"^(## .*)$", path.read_text(encoding="utf-8"), flags=re.M):
        if part.startswith("## "):
            heading = part[3:].strip()
            continue
        blocks.setdefault(heading, []).extend(re.findall(r"^```python\n(.*?)^```", part, flags=re.M | re.S))
    return blocks


def substituted(code: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in code, f"the doc's snippet no longer holds {old!r}: update this test"
        code = code.replace(old, new)
    return code


# name as the doc writes it -> (where it lives, the doc's names for renamed parameters)
SIGNATURES = {
    "Trainer": ("mtcore.train.trainer:Trainer", {}),
    "train_seeds": ("mtcore.train.seeds:train_seeds", {}),
    "load_task_data": ("mtcore.data.task_data:load_task_data", {}),
    "load_raw": ("mtcore.data.task_data:load_raw", {}),
    "Batch": ("mtcore.data.batch:Batch", {}),
    "MultitaskBatchSampler": ("mtcore.sampling.batch_sampler:MultitaskBatchSampler", {}),
    "MultitaskModel": ("mtcore.model.multitask_model:MultitaskModel", {}),
    ".parameter_groups": ("mtcore.model.multitask_model:MultitaskModel.parameter_groups", {}),
    "MultitaskModel.from_pretrained": ("mtcore.model.multitask_model:MultitaskModel.from_pretrained", {"directory": "dir"}),
    "predict": ("mtcore.predict.predictor:predict", {}),
    "mtcore.predict.evaluate_path": ("mtcore.predict.evaluate:evaluate_path", {}),
    "evaluate_model": ("mtcore.predict.evaluate:evaluate_model", {}),
    "mtcore.export.export_task": ("mtcore.export.hf:export_task", {}),
    "export_encoder": ("mtcore.export.hf:export_encoder", {}),
    "task_from_definition": ("mtcore.yaml_tasks:task_from_definition", {}),
    "build_tiny_encoder": ("mtcore.testing.tiny:build_tiny_encoder", {}),
    "check_plugin": ("mtcore.testing.checks:check_plugin", {}),
    "check_task": ("mtcore.testing.checks:check_task", {}),
    "check_sample": ("mtcore.testing.sample_check:check_sample", {}),
    "smoke_train": ("mtcore.testing.smoke:smoke_train", {}),
    "SequenceClassificationTask": ("mtcore.seed.classification:SequenceClassificationTask", {}),
    "TokenizerConfig": ("mtcore.seed.tokenizers:TokenizerConfig", {}),
    "Tasks": ("mtcore.seed.tasks:Tasks", {}),
}


def _default(value: object) -> str:
    if isinstance(value, float):
        return re.sub(r"e-0(\d)", r"e-\1", f"{value:g}") if "e" in f"{value:g}" else repr(value)
    return repr(value).replace("'", '"')


def rendered(name: str, ref: str, renames: dict[str, str]) -> str:
    """``name(a, b=1, *, c=None, **options)`` as the doc writes signatures (no annotations)."""
    module, _, attribute = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    parts, keyword_only = [], False
    for p in inspect.signature(obj).parameters.values():
        if p.name in ("self", "cls"):
            continue
        shown = renames.get(p.name, p.name)
        if p.kind is p.VAR_KEYWORD:
            parts.append(f"**{shown}")
            continue
        if p.kind is p.KEYWORD_ONLY and not keyword_only:
            parts.append("*")
            keyword_only = True
        parts.append(shown if p.default is p.empty else f"{shown}={_default(p.default)}")
    return f"{name}({', '.join(parts)})"


@pytest.mark.parametrize("name", list(SIGNATURES))
def test_the_doc_gives_the_code_s_signature(name):
    doc = " ".join(API_DOC.read_text(encoding="utf-8").split())
    expected = rendered(name, *SIGNATURES[name])
    assert expected in doc, f"docs/python-api.md should say `{expected}`"


def test_the_trainer_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = substituted(python_blocks(API_DOC)["Train from a config: `Trainer`"][0],
                       ('"examples/quickstart.yaml"', repr(str(ROOT / "examples" / "quickstart.yaml"))),
                       ("schedule.max_steps=50", "schedule.max_steps=2"))
    scope: dict = {}
    exec(compile(code, "python-api.md: Trainer", "exec"), scope)
    assert scope["summary"]["steps"] == 2
    assert set(scope["summary"]["tasks"]["rsg:terra"]["final"]) == {"accuracy", "f1_macro", "loss"}
    assert type(scope["model"]).__name__ == "MultitaskModel"
    assert (tmp_path / "runs" / "demo" / "summary.json").is_file()


def test_the_own_loop_and_predicting_snippets_run(tmp_path, monkeypatch):
    from mtcore.testing import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "encoder")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(API_DOC)
    loop = substituted(blocks["Your own loop: tasks, data, sampler, model"][0],
                       ('encoder = "DeepPavlov/rubert-base-cased"', f"encoder = {str(encoder)!r}"))
    scope: dict = {}
    exec(compile(loop, "python-api.md: own loop", "exec"), scope)
    assert math.isfinite(scope["loss"].detach().item())
    assert sorted(p.name for p in (tmp_path / "out" / "model").iterdir()) == ["encoder", "heads", "mtcore.json"]

    predicting = substituted(blocks["Predicting"][0], ('"runs/demo/model"', '"out/model"'))
    scope = {}
    exec(compile(predicting, "python-api.md: Predicting", "exec"), scope)
    (row,) = scope["predictions"].rows()
    assert set(row) == {"idx", "label", "probabilities"} and row["idx"] == 0
    assert row["label"] in ("entailment", "not_entailment") and len(row["probabilities"]) == 2


def test_the_writing_plugins_test_snippet_runs(tmp_path):
    """The scaffolded tests of docs/writing-plugins.md, pointed at an installed plugin."""
    from mtcore.testing import build_tiny_encoder

    (code,) = python_blocks(PLUGIN_DOC)["5. Test it"]
    code = substituted(code, ('check_plugin("toxic")', 'check_plugin("rsg")'), ('"toxic:toxic"', '"rsg:terra"'))
    scope: dict = {}
    exec(compile(code, "writing-plugins.md: 5. Test it", "exec"), scope)
    scope["test_the_plugin_loads_and_its_tasks_are_valid"]()
    scope["test_the_example_task_trains_on_its_sample"](build_tiny_encoder(tmp_path / "encoder"), tmp_path / "run")
