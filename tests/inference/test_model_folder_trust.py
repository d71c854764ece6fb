"""A model folder is data: a crafted ``mtcore.json`` or encoder folder must not write outside the export, run code
of Python or a library, read files outside the folder, unpickle weights, or run the folder's own code (an audit)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from mtcore.errors import ConfigError, ModelFileError
from mtcore.testing import build_tiny_encoder

IN = '{"premise": "a b", "hypothesis": "c", "idx": 0}\n'


@pytest.fixture
def model_copy(trained_run, tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(trained_run / "model", copy)
    return copy


def _edit(model: Path, change) -> None:
    manifest = json.loads((model / "mtcore.json").read_text(encoding="utf-8"))
    change(manifest)
    (model / "mtcore.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_task_id_that_is_a_path_cannot_place_an_export_outside_its_folder(tmp_path, cli):
    """`mt export --task all` wrote a whole export to the absolute path a crafted manifest gave as a task id."""
    from safetensors.torch import load_file, save_file

    from mtcore.model import MultitaskModel
    from mtcore.plugins import load_registry
    from transformers import AutoTokenizer

    encoder = build_tiny_encoder(tmp_path / "encoder")
    task = load_registry().task("rsg:terra").replace(head_options={"pooling": "pooler"})  # exports as a plain class
    MultitaskModel(str(encoder), {task.id: task}, tokenizer=AutoTokenizer.from_pretrained(str(encoder))).save_pretrained(tmp_path / "model")
    model_copy, target = tmp_path / "model", tmp_path / "elsewhere"
    head = model_copy / "heads" / "rsg--terra.safetensors"
    save_file(load_file(str(head)), str(head), metadata={"task": str(target)})

    def change(manifest):
        info = manifest["tasks"].pop("rsg:terra")
        manifest["tasks"][str(target)] = {**info, "id": str(target)}
        manifest["files"]["heads/rsg--terra.safetensors"] = {"sha256": hashlib.sha256(head.read_bytes()).hexdigest(),
                                                             "size": head.stat().st_size}
    _edit(model_copy, change)
    result = cli("export", model_copy, tmp_path / "out", "--task", "all")
    assert result.exit_code == 0, result.output
    assert not target.exists()  # the task's export is a folder of OUT_DIR, named from its id
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == ["-" + "-".join(target.parts[1:]), "encoder"], result.output


def test_a_saved_step_naming_python_or_a_library_is_refused_not_imported(model_copy, tmp_path, cli):
    _edit(model_copy, lambda m: m["tasks"]["rsg:terra"].update(preprocess=["this:s"]))
    (tmp_path / "in.jsonl").write_text(IN, encoding="utf-8")
    result = cli("predict", model_copy, "--task", "rsg:terra", "--input", tmp_path / "in.jsonl")
    assert result.exit_code == 1
    assert "its saved preprocessing step 'this:s' names a function of Python's own library" in result.stderr
    assert "Zen of Python" not in result.output


def test_a_head_file_outside_the_model_folder_is_refused(model_copy, tmp_path):
    from mtcore.model import MultitaskModel

    (tmp_path / "outside").mkdir()
    shutil.move(str(model_copy / "heads" / "rsg--terra.safetensors"), tmp_path / "outside" / "h.safetensors")

    def change(manifest):
        manifest["tasks"]["rsg:terra"]["head_file"] = "../outside/h.safetensors"
        del manifest["files"]["heads/rsg--terra.safetensors"]
    _edit(model_copy, change)
    with pytest.raises(ModelFileError, match="points outside the model directory"):
        MultitaskModel.from_pretrained(model_copy)
    _edit(model_copy, lambda m: m["tasks"]["rsg:terra"].update(head_file="heads/unlisted.safetensors"))
    with pytest.raises(ModelFileError, match="is not among its checked files"):
        MultitaskModel.from_pretrained(model_copy)


def test_a_saved_encoder_is_read_from_safetensors_only(model_copy):
    import torch
    from safetensors.torch import load_file

    from mtcore.model import MultitaskModel

    weights = model_copy / "encoder" / "model.safetensors"
    torch.save(load_file(str(weights)), model_copy / "encoder" / "pytorch_model.bin")  # a pickle mtcore never writes
    weights.unlink()
    _edit(model_copy, lambda m: m["files"].pop("encoder/model.safetensors"))
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(model_copy)
    assert "\n" not in str(info.value)


def test_an_encoder_with_its_own_code_is_not_run_without_being_asked(tmp_path, monkeypatch):
    """transformers asked "Do you wish to run the custom code? [y/N]" on stdin when trust_remote_code was left unset."""
    import io
    import sys

    from mtcore.model.encoder import load_encoder

    folder = build_tiny_encoder(tmp_path / "custom")
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="customized_bert", auto_map={"AutoConfig": "custom_code.Config", "AutoModel": "custom_code.Model"})
    (folder / "config.json").write_text(json.dumps(config))
    ran = tmp_path / "ran"
    (folder / "custom_code.py").write_text(f"open({str(ran)!r}, 'w').write('ran')\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\ny\n"))  # an answer waiting on stdin is never read
    with pytest.raises(ModelFileError, match="needs code of its own .* mtcore runs only when asked: encoder.trust_remote_code: true"):
        load_encoder(folder)
    assert not ran.exists()
    with pytest.raises(ConfigError, match="set trust_remote_code=True"):
        load_encoder(folder, from_pretrained_kwargs={"trust_remote_code": True})
    assert not ran.exists()


def test_a_second_switch_for_custom_code_in_encoder_kwargs_is_refused():
    from mtcore.train.config_io import load_config
    from mtcore.train.validate import plan_run

    config = load_config({"encoder": {"tiny": "bert", "options": {"encoder_kwargs": {"trust_remote_code": True}}}, "tasks": ["rsg:terra"]})
    with pytest.raises(ConfigError, match="'encoder.options.encoder_kwargs.trust_remote_code': set encoder.trust_remote_code instead"):
        plan_run(config)


def test_an_export_names_no_custom_code_it_does_not_ship(model_copy, tmp_path, cli):
    config = model_copy / "encoder" / "config.json"
    data = json.loads(config.read_text())
    config.write_text(json.dumps({**data, "auto_map": {"AutoModel": "custom_code.Model"}}))
    _edit(model_copy, lambda m: m["files"].update({"encoder/config.json": {"sha256": hashlib.sha256(config.read_bytes()).hexdigest(),
                                                                          "size": config.stat().st_size}}))
    result = cli("export", model_copy, tmp_path / "out", "--encoder-only")
    assert result.exit_code == 0, result.output
    assert "auto_map" not in json.loads((tmp_path / "out" / "config.json").read_text())


def test_a_model_whose_encoder_has_its_own_code_predicts_with_trust_remote_code_only(tmp_path, cli):
    """A run trained with encoder.trust_remote_code: true could not be evaluated, predicted or exported at all."""
    from transformers import AutoTokenizer

    from mtcore.model import MultitaskModel
    from mtcore.plugins import load_registry

    folder = build_tiny_encoder(tmp_path / "custom")
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="customized_bert", auto_map={"AutoConfig": "custom_code.Config", "AutoModel": "custom_code.Model"})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "custom_code.py").write_text("from transformers import BertConfig, BertModel\n\n\nclass Config(BertConfig):\n"
                                           "    model_type = 'customized_bert'\n\n\nclass Model(BertModel):\n    config_class = Config\n")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    model = MultitaskModel(str(folder), {"rsg:terra": load_registry().task("rsg:terra")}, trust_remote_code=True, tokenizer=tokenizer)
    model.save_pretrained(tmp_path / "model")
    (tmp_path / "in.jsonl").write_text(IN, encoding="utf-8")
    refused = cli("predict", tmp_path / "model", "--input", tmp_path / "in.jsonl")
    assert refused.exit_code == 1 and "--trust-remote-code for mt evaluate, predict and export" in refused.stderr, refused.output
    trusted = cli("predict", tmp_path / "model", "--input", tmp_path / "in.jsonl", "--trust-remote-code")
    assert trusted.exit_code == 0, trusted.output
    assert json.loads(trusted.stdout.splitlines()[0])["label"] in ("entailment", "not_entailment")
