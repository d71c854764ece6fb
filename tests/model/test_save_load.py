"""save_pretrained / from_pretrained: identical logits, plain HF encoder, safe and atomic files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from mtcore.errors import ConfigError, ModelFileError, MtError, UnknownNameError
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import HeadSpec
from mtcore.model.manifest import task_from_info, task_info
from mtcore.task import Task

from mtcore.testing import ARCHITECTURES as ALL_ARCHS


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def trained_once(model: MultitaskModel, heads: dict[str, HeadSpec], batch_for) -> MultitaskModel:
    """One SGD step on every task, so saved weights differ from any fresh initialisation."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for task_id, spec in heads.items():
        model(task_id, **batch_for(spec)).loss.backward()
    optimizer.step()
    model.eval()
    return model


@pytest.fixture(scope="module")
def saved(tiny_encoders, heads_for_every_kind, batch_for, tmp_path_factory):
    """A trained bert model with every head kind and its tokenizer, saved once for this module."""
    from transformers import AutoTokenizer

    encoder = tiny_encoders["bert"]
    model = trained_once(MultitaskModel(str(encoder), heads_for_every_kind), heads_for_every_kind, batch_for)
    directory = model.save_pretrained(tmp_path_factory.mktemp("saved") / "model", tokenizer=AutoTokenizer.from_pretrained(encoder))
    return model, directory


def copy_of(directory: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(directory, tmp_path / "copy"))


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_save_then_load_gives_identical_logits(arch, tiny_encoders, heads_for_every_kind, batch_for, tmp_path):
    model = trained_once(MultitaskModel(str(tiny_encoders[arch]), heads_for_every_kind), heads_for_every_kind, batch_for)
    loaded = MultitaskModel.from_pretrained(model.save_pretrained(tmp_path / "model"))
    assert not loaded.training
    assert list(loaded.heads) == list(model.heads)
    for task_id, spec in heads_for_every_kind.items():
        batch = batch_for(spec, seed=7)
        batch.pop("labels")
        assert torch.equal(model(task_id, **batch).logits, loaded(task_id, **batch).logits), f"{arch} {task_id}"
    assert loaded.uses_token_type_ids == model.uses_token_type_ids


def test_a_saved_model_loads_with_the_attention_it_trained_with(tiny_encoders, tmp_path):
    """A run trained with eager attention was evaluated from its model/ with SDPA: other numbers than it recorded (a
    determinism audit). Eager is kept; an implementation that needs a package or a GPU loads as SDPA."""
    import json

    task = Task(name="t", kind="text_classification", labels=("a", "b"), plugin="demo")
    saved = MultitaskModel(str(tiny_encoders["bert"]), {task.id: task}, attn_implementation="eager").save_pretrained(tmp_path / "eager")
    assert MultitaskModel.from_pretrained(saved).encoder.config._attn_implementation == "eager"
    assert MultitaskModel.from_pretrained(saved, attn_implementation="sdpa").encoder.config._attn_implementation == "sdpa"
    manifest = json.loads((saved / "mtcore.json").read_text())
    manifest["encoder"]["attn_implementation"] = "flash_attention_2"
    (saved / "mtcore.json").write_text(json.dumps(manifest))
    assert MultitaskModel.from_pretrained(saved, verify=False).encoder.config._attn_implementation == "sdpa"


def test_saved_directory_holds_one_plain_hf_encoder_and_tokenizer(saved):
    from transformers import AutoModel, AutoTokenizer

    model, directory = saved
    weight_files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.safetensors"))
    assert weight_files == ["encoder/model.safetensors"] + sorted(f"heads/demo--{t.split(':')[1]}.safetensors" for t in model.heads)
    assert [p.name for p in directory.rglob("config.json")] == ["config.json"]
    assert not [p for p in directory.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")]
    alone = AutoModel.from_pretrained(directory / "encoder")
    for name, value in alone.state_dict().items():
        assert torch.equal(value, model.encoder.state_dict()[name]), name
    tokenizer = AutoTokenizer.from_pretrained(directory / "encoder")
    assert tokenizer("привет мир")["input_ids"][0] == tokenizer.cls_token_id
    loaded = MultitaskModel.from_pretrained(directory)
    assert loaded.tokenizer is not None and loaded.tokenizer.vocab_size == tokenizer.vocab_size


def test_saved_files_are_readable_like_any_file_the_user_writes(saved):
    """mkdtemp (0700) and safetensors (0600) make private files: the saved model gets the umask's modes."""
    import os

    _, directory = saved
    mask = os.umask(0)
    os.umask(mask)
    for path in [directory, *directory.rglob("*")]:
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        assert path.stat().st_mode & 0o777 == expected, (path, oct(path.stat().st_mode))


def test_manifest_records_versions_tasks_and_checksums(saved):
    import hashlib

    import mtcore

    model, directory = saved
    manifest = json.loads((directory / "mtcore.json").read_text())
    assert manifest["mtcore_version"] == mtcore.__version__ and manifest["format_version"] == 1
    assert list(manifest["tasks"]) == list(model.heads)
    entry = manifest["tasks"]["demo:mlp"]
    assert entry["kind"] == "text_classification" and entry["labels"] == ["no", "yes"] and entry["num_labels"] == 2
    assert entry["head"] == "mlp" and entry["head_options"] == {"num_layers": 3, "activation": "gelu"}
    for rel, record in manifest["files"].items():
        assert hashlib.sha256((directory / rel).read_bytes()).hexdigest() == record["sha256"], rel


def test_task_info_round_trips_through_the_manifest(tiny_encoders, tmp_path):
    task = Task(name="danetqa", kind="pair_classification", labels=("false", "true"), label_values=(False, True), plugin="rsg",
                inputs={"text": "question", "text_pair": "passage"}, head="mlp", head_options={"num_layers": 2},
                preprocess=("my_pkg.prep:clean", str.strip), max_length=320, truncation="only_second", label_aliases={False: "false"})
    model = MultitaskModel(str(tiny_encoders["bert"]), {task.id: task})
    loaded = MultitaskModel.from_pretrained(model.save_pretrained(tmp_path / "m"))
    info = loaded.tasks["rsg:danetqa"]
    rebuilt = task_from_info(info)
    assert rebuilt.id == task.id and rebuilt.kind == task.kind and rebuilt.labels == task.labels
    assert rebuilt.label_values == (False, True) and rebuilt.label_id(True) == 1 and rebuilt.label_id(False) == 0
    assert rebuilt.input_map == task.input_map and rebuilt.max_length == 320 and rebuilt.truncation == "only_second"
    assert rebuilt.preprocess == ("my_pkg.prep:clean",) and info["preprocess_not_saved"]
    assert rebuilt.head_name == "mlp" and dict(rebuilt.head_options) == {"num_layers": 2}
    assert json.loads(json.dumps(task_info(task))) == task_info(task)


def test_saving_is_side_effect_free_and_the_model_still_trains(tiny_encoders, heads_for_every_kind, batch_for, tmp_path):
    model = MultitaskModel(str(tiny_encoders["electra"]), heads_for_every_kind, gradient_checkpointing=True, freeze_layers=1)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    config = model.encoder.config.to_dict()
    model.save_pretrained(tmp_path / "m")
    assert model.training and all(m.training for m in model.modules())
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model.encoder.config.to_dict() == config
    assert model.encoder.is_activation_checkpointing
    spec = heads_for_every_kind["demo:pair"]
    model("demo:pair", **batch_for(spec)).loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    assert not torch.equal(before["heads.demo:pair.classifier.weight"], model.state_dict()["heads.demo:pair.classifier.weight"])


def test_a_tampered_head_file_fails_in_one_line(saved, tmp_path):
    directory = copy_of(saved[1], tmp_path)
    head = directory / "heads" / "demo--pair.safetensors"
    data = bytearray(head.read_bytes())
    data[-1] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(directory)
    assert "demo--pair.safetensors" in one_line(info) and "checksum" in str(info.value)


def test_a_missing_head_file_fails_in_one_line(saved, tmp_path):
    directory = copy_of(saved[1], tmp_path)
    (directory / "heads" / "demo--ner.safetensors").unlink()
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(directory)
    assert "demo--ner.safetensors" in one_line(info) and "missing" in str(info.value)


def test_a_truncated_encoder_file_fails_in_one_line(saved, tmp_path):
    directory = copy_of(saved[1], tmp_path)
    weights = directory / "encoder" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(directory)
    assert "model.safetensors" in one_line(info) and "truncated" in str(info.value)


def test_unverified_load_still_refuses_a_broken_head_file(saved, tmp_path):
    directory = copy_of(saved[1], tmp_path)
    (directory / "heads" / "demo--score.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(directory, verify=False)
    assert "demo--score.safetensors" in one_line(info)


def test_a_head_file_that_does_not_match_its_task_fails_naming_the_file(saved, tmp_path):
    directory = copy_of(saved[1], tmp_path)
    manifest = json.loads((directory / "mtcore.json").read_text())
    manifest["tasks"]["demo:mlp"]["head_options"]["num_layers"] = 2  # the file holds a 3-layer MLP
    (directory / "mtcore.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(directory)
    assert "demo--mlp.safetensors" in one_line(info)
    heads = directory / "heads"
    os.replace(heads / "demo--pair.safetensors", heads / "tmp")
    os.replace(heads / "demo--tags.safetensors", heads / "demo--pair.safetensors")
    os.replace(heads / "tmp", heads / "demo--tags.safetensors")
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(directory, verify=False)
    assert "demo--" in one_line(info)


@pytest.mark.parametrize("content, expected", [(None, "missing"), ("{\"format_version\": 1,", "not valid JSON"),
                                               ("{\"format_version\": 99, \"encoder\": {}, \"tasks\": {}, \"files\": {}}", "newer")])
def test_a_missing_or_broken_manifest_fails_in_one_line(saved, tmp_path, content, expected):
    directory = copy_of(saved[1], tmp_path)
    if content is None:
        (directory / "mtcore.json").unlink()
    else:
        (directory / "mtcore.json").write_text(content)
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(directory)
    assert "mtcore.json" in one_line(info) and expected in str(info.value)


def test_save_is_atomic_and_overwrites_only_mtcore_directories(tiny_encoders, tmp_path, monkeypatch):
    import safetensors.torch

    model = MultitaskModel(str(tiny_encoders["distilbert"]), {"demo:t": HeadSpec("classification", 2)})
    target = model.save_pretrained(tmp_path / "m")
    first = (target / "mtcore.json").read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(MtError, match=r"^cannot write to .*m: disk full$"):  # one line, not a raw OSError
        model.save_pretrained(target)
    monkeypatch.undo()
    assert (target / "mtcore.json").read_text() == first  # the previous save is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary directory left behind
    MultitaskModel.from_pretrained(target)
    model.save_pretrained(target)  # re-saving over an mtcore directory works
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"x")
    with pytest.raises(ModelFileError) as info:
        model.save_pretrained(other)
    assert "refusing to overwrite" in one_line(info) and (other / "cat.jpg").exists()
    (target / "optimizer.safetensors").write_bytes(b"state the user wants to keep")
    with pytest.raises(ModelFileError) as info:
        model.save_pretrained(target)
    assert "'optimizer.safetensors'" in one_line(info) and (target / "optimizer.safetensors").exists()


class TinyCustomHead(nn.Module):
    def __init__(self, hidden_size: int, num_labels: int, scale: float = 1.0) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, num_labels)
        self.head_options = {"scale": scale}
        self.num_labels = num_labels
        self.scale = scale

    def forward(self, hidden_states, attention_mask):
        return self.proj(hidden_states.mean(1)) * self.scale


def test_custom_heads_are_never_imported_from_the_manifest(tiny_encoders, tmp_path, make_batch):
    model = MultitaskModel(str(tiny_encoders["bert"]), {"user:c": TinyCustomHead(32, 3, scale=2.0), "demo:t": HeadSpec("regression", 1)})
    directory = model.save_pretrained(tmp_path / "m")
    assert json.loads((directory / "mtcore.json").read_text())["tasks"]["user:c"]["head_registered"] is False
    with pytest.raises(ConfigError) as info:
        MultitaskModel.from_pretrained(directory)
    assert "custom_heads={'user:c': HeadClass}" in one_line(info)
    batch = make_batch("text_classification")
    batch.pop("labels")
    for custom in (TinyCustomHead, TinyCustomHead(32, 3, scale=2.0)):  # a class (built with saved options) or an instance
        loaded = MultitaskModel.from_pretrained(directory, custom_heads={"user:c": custom})
        assert loaded.heads["user:c"].scale == 2.0
        assert torch.equal(loaded("user:c", **batch).logits, model("user:c", **batch).logits)
    with pytest.raises(UnknownNameError, match="did you mean 'user:c'"):
        MultitaskModel.from_pretrained(directory, custom_heads={"user:cc": TinyCustomHead})


def test_unregistered_named_head_gives_an_actionable_error(saved, tmp_path):
    directory = copy_of(saved[1], tmp_path)
    manifest = json.loads((directory / "mtcore.json").read_text())
    manifest["tasks"]["demo:mlp"].update(head="fancy", head_id="someplugin:fancy")
    (directory / "mtcore.json").write_text(json.dumps(manifest))
    with pytest.raises(UnknownNameError) as info:
        MultitaskModel.from_pretrained(directory)
    assert "someplugin:fancy" in one_line(info) and "custom_heads" in str(info.value)


def test_unknown_from_pretrained_option_says_did_you_mean(saved):
    with pytest.raises(UnknownNameError, match="did you mean 'freeze_encoder'"):
        MultitaskModel.from_pretrained(saved[1], freeze_encodr=True)


def test_a_saved_model_directory_can_seed_a_new_model(saved):
    model, directory = saved
    fresh = MultitaskModel(str(directory), {"demo:new": HeadSpec("classification", 2)})
    for name, value in fresh.encoder.state_dict().items():
        assert torch.equal(value, model.encoder.state_dict()[name]), name


def test_an_encoder_file_with_missing_tensors_is_refused_not_silently_reinitialised(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    directory = copy_of(saved[1], tmp_path)
    weights = directory / "encoder" / "model.safetensors"
    state = load_file(weights)
    state.pop(sorted(state)[0])
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(ModelFileError) as info:
        MultitaskModel.from_pretrained(directory, verify=False)
    assert "missing" in one_line(info) and "encoder" in str(info.value)


def test_a_bfloat16_model_reloads_in_bfloat16_with_identical_logits(tiny_encoders, tmp_path, make_batch):
    model = MultitaskModel(str(tiny_encoders["xlm-roberta"]), {"demo:t": HeadSpec("multi_label", 3, kind="multi_label")}, dtype="bfloat16")
    loaded = MultitaskModel.from_pretrained(model.save_pretrained(tmp_path / "m"))
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    batch = make_batch("multi_label", num_labels=3)
    assert torch.equal(model("demo:t", **batch).logits, loaded("demo:t", **batch).logits)
    assert {p.dtype for p in MultitaskModel.from_pretrained(tmp_path / "m", dtype="float32").parameters()} == {torch.float32}


def test_a_head_of_a_plugin_left_out_by_mt_load_plugins_says_so(monkeypatch):
    """The plugin is installed: 'install the plugin' would be wrong, MT_LOAD_PLUGINS is the fix."""
    import mtcore.plugins
    from mtcore.errors import UnknownNameError
    from mtcore.model.serialization import head_spec_from_info
    from mtcore.registry import Registry

    registry = Registry()
    registry.excluded = ["toxic"]
    monkeypatch.setattr(mtcore.plugins, "load_registry", lambda *a, **k: registry)
    info = {"head": "attention_pool", "head_id": "toxic:attention_pool", "head_registered": True, "num_labels": 2,
            "kind": "text_classification"}
    with pytest.raises(UnknownNameError) as err:
        head_spec_from_info("toxic:comments", info, 8, {})
    assert str(err.value) == ("task 'toxic:comments' needs head 'toxic:attention_pool' of plugin 'toxic', which is installed but "
                              "MT_LOAD_PLUGINS leaves it out; add it there, or unset MT_LOAD_PLUGINS")
    with pytest.raises(UnknownNameError, match=r"^unknown head 'toxic:attention_pool': plugin 'toxic' is installed but MT_LOAD_PLUGINS"):
        registry.component("head", "toxic:attention_pool")
    registry.excluded = []
    with pytest.raises(UnknownNameError, match="which is not registered; install the plugin that provides it"):
        head_spec_from_info("toxic:comments", info, 8, {})


def test_loading_saving_and_exporting_leave_the_progress_bars_of_transformers_and_the_hub_as_they_were(tmp_path, tiny_encoders):
    """They were turned off for the rest of the process: a notebook's own downloads showed no progress afterwards."""
    import huggingface_hub.utils as hub
    import transformers.utils.logging as hf_logging

    from mtcore.export import export_encoder
    from mtcore.model import MultitaskModel
    from mtcore.plugins import load_registry

    terra = load_registry(warn=False).task("rsg:terra")
    for transformers_on, hub_off in ((True, False), (False, True), (True, True), (False, False)):
        hf_logging.enable_progress_bar() if transformers_on else hf_logging.disable_progress_bar()
        hub.disable_progress_bars() if hub_off else hub.enable_progress_bars()
        try:
            model = MultitaskModel(tiny_encoders["bert"], [terra])
            model.save_pretrained(tmp_path / "m")
            MultitaskModel.from_pretrained(tmp_path / "m")
            export_encoder(tmp_path / "m", tmp_path / "e", overwrite=True)
            assert (hf_logging.is_progress_bar_enabled(), hub.are_progress_bars_disabled()) == (transformers_on, hub_off)
        finally:
            hf_logging.enable_progress_bar()
            hub.enable_progress_bars()


def test_save_pretrained_where_the_folder_cannot_be_made_is_one_mtcore_error(tmp_path, tiny_encoders):
    """A file in the way, or a parent that cannot be made, raised a raw FileExistsError / FileNotFoundError."""
    from mtcore.errors import OutputError, UsageError
    from mtcore.model import MultitaskModel
    from mtcore.plugins import load_registry

    model = MultitaskModel(tiny_encoders["bert"], [load_registry(warn=False).task("rsg:terra")])
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match=r"afile is a file, not a folder; choose another path$"):
        model.save_pretrained(tmp_path / "afile" / "deeper" / "model")
    with pytest.raises(OutputError, match=r"^cannot write to /proc/mtcore-no-such-folder: "):  # no folder can be made there, even as root
        model.save_pretrained("/proc/mtcore-no-such-folder/model")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


def test_a_negative_freeze_layers_from_python_is_refused(tiny_encoders):
    """It was accepted and froze nothing (the config key has ge=0; the constructor had no check)."""
    from mtcore.errors import ConfigError
    from mtcore.model import MultitaskModel

    with pytest.raises(ConfigError, match=r"^freeze_layers must be a number of layers >= 0, got -1$"):
        MultitaskModel(tiny_encoders["bert"], [], freeze_layers=-1)


def test_a_model_folder_that_is_a_link_is_written_where_it_points_and_stays_a_link(tmp_path, tiny_encoders):
    """The link was moved aside and replaced by a real folder beside it: the big disk stayed empty and a
    '.model.old-*' link was left behind. Exports too."""
    from mtcore.export import export_encoder
    from mtcore.model import MultitaskModel
    from mtcore.plugins import load_registry

    model = MultitaskModel(tiny_encoders["bert"], [load_registry(warn=False).task("rsg:terra")])
    for name in ("big-model", "big-export"):
        (tmp_path / name).mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model").symlink_to(tmp_path / "big-model")
    (tmp_path / "run" / "export").symlink_to(tmp_path / "big-export")
    for _ in range(2):  # a new folder, then one written over
        model.save_pretrained(tmp_path / "run" / "model")
        export_encoder(tmp_path / "run" / "model", tmp_path / "run" / "export", overwrite=True)
    assert (tmp_path / "run" / "model").is_symlink() and (tmp_path / "big-model" / "mtcore.json").is_file()
    assert (tmp_path / "run" / "export").is_symlink() and any((tmp_path / "big-export").iterdir())
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["export", "model"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_export_never_replaces_files_that_came_to_its_folder_while_it_wrote(tmp_path):
    """A second export (or the user's notes) appearing in OUT_DIR during an export was moved aside and deleted."""
    from mtcore.errors import UsageError
    from mtcore.export.hf import EXPORT_INFO, _write_atomically

    out = tmp_path / "out"

    def write(tmp):
        (tmp / "model.safetensors").write_text("new")
        out.mkdir(exist_ok=True)
        (out / "notes.txt").write_text("precious")  # came meanwhile

    with pytest.raises(UsageError, match=r"files came there while exporting"):
        _write_atomically(out, write)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    (out / "notes.txt").unlink()
    (out / EXPORT_INFO).write_text("{}")  # an earlier export: --overwrite replaces it
    _write_atomically(out, lambda tmp: (tmp / "model.safetensors").write_text("new"), overwrite=True)
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]
