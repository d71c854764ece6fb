"""``flash_attention``: torch's flash kernels replaced by a registered implementation (FA4, FA3)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import _registry, current_flash_attention_impl, restore_flash_attention_impl

from mtcore.errors import ConfigError
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import HeadSpec

HEADS = {"demo:pair": HeadSpec("classification", 3, kind="pair_classification", options={"pooling": "cls", "dropout": 0.0})}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


class _Handle:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def remove(self) -> None:
        self.calls.append("removed")


@pytest.fixture
def fake_impl(monkeypatch):
    """A registered implementation whose activation is recorded (torch's registry, restored after)."""
    calls: list[str] = []

    def register() -> _Handle:
        calls.append("activated")
        return _Handle(calls)

    monkeypatch.setitem(_registry._FLASH_ATTENTION_IMPLS, "MTTEST", register)
    yield calls
    restore_flash_attention_impl(_raise_warn=False)


def test_a_registered_implementation_is_activated_once_for_the_process(tiny_encoders, fake_impl):
    model = MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT, flash_attention="mttest")
    assert model.flash_attention == "MTTEST" and current_flash_attention_impl() == "MTTEST"
    again = MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT, flash_attention="MTTEST", padding_free=True)
    assert again.flash_attention == "MTTEST" and fake_impl == ["activated"]  # already active: not registered twice
    batch = {"input_ids": torch.tensor([[2, 11, 12, 3], [2, 14, 3, 0]])}
    batch["attention_mask"] = (batch["input_ids"] != 0).long()
    with torch.no_grad():  # on CPU nothing changes: the model still runs
        assert again("demo:pair", **batch).logits.shape == (2, 3)
    assert MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT).flash_attention is None


def test_attention_dropout_is_refused_before_anything_is_activated(tiny_encoders, fake_impl):
    with pytest.raises(ConfigError, match=r"flash_attention MTTEST has no attention dropout, and this encoder's is 0.1; "
                                          r"set encoder.options.encoder_kwargs.attention_probs_dropout_prob: 0"):
        MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs={"attention_probs_dropout_prob": 0.1}, flash_attention="MTTEST")
    assert fake_impl == [] and current_flash_attention_impl() is None


def test_an_unknown_name_or_a_missing_package_is_one_line_naming_the_fix(tiny_encoders, monkeypatch):
    with pytest.raises(ConfigError, match=r"^flash_attention: unknown implementation 'FA5' \(did you mean 'FA4'\?\)"):
        MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT, flash_attention="FA5")

    def broken() -> None:
        raise ModuleNotFoundError("No module named 'flash_attn'")

    monkeypatch.setitem(_registry._FLASH_ATTENTION_IMPLS, "FA4", broken)
    with pytest.raises(ConfigError) as caught:
        MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT, flash_attention="fa4")
    assert str(caught.value) == ("flash_attention FA4: its kernels did not load (ModuleNotFoundError: No module named "
                                 "'flash_attn'); pip install flash-attn-4 (Hopper or Blackwell GPU), or leave flash_attention out")
    assert current_flash_attention_impl() is None


def test_a_torch_without_the_registry_is_named(monkeypatch):
    import mtcore.model.flash_impl as flash_impl

    monkeypatch.setattr(flash_impl, "implementations", lambda: [])
    with pytest.raises(ConfigError, match=r"^flash_attention: 'FA4' needs torch 2.11 or later \(this is torch "):
        flash_impl.resolve("FA4")


@pytest.fixture
def fake_flash_attn_4(tmp_path, monkeypatch):
    """A ``flash_attn.cute.interface`` shaped like flash-attn-4 4.0.0b36: the forward returns five values."""
    package = tmp_path / "flash_attn" / "cute"
    package.mkdir(parents=True)
    (tmp_path / "flash_attn" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "interface.py").write_text(
        "def _flash_attn_fwd(q, k, v, **kwargs):\n    return ('out', 'lse', 'p', 'row_max', 'o_lo')\n"
        "def _flash_attn_bwd(*args, **kwargs):\n    return ('dq', 'dk', 'dv')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in __import__("sys").modules if n.startswith(("flash_attn", "mtcore.model.fa4_interface"))]:
        monkeypatch.delitem(__import__("sys").modules, name)
    yield
    restore_flash_attention_impl(_raise_warn=False)


def test_fa4_is_registered_through_the_adapter_that_passes_torch_the_values_it_unpacks(tiny_encoders, fake_flash_attn_4):
    fa4 = pytest.importorskip("torch.nn.attention._fa4")
    model = MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT, flash_attention="FA4")
    assert model.flash_attention == "FA4" == current_flash_attention_impl()
    kernels = fa4._fa4_import_module(fa4._FA4_MODULE_PATH)  # what torch's glue calls
    assert fa4._FA4_MODULE_PATH == "mtcore.model.fa4_interface"
    out, lse = kernels._flash_attn_fwd(None, None, None, return_lse=True)  # torch's own unpacking
    assert (out, lse) == ("out", "lse") and kernels._flash_attn_bwd() == ("dq", "dk", "dv")


def test_fa4_with_padding_free_batches_is_refused_where_torchs_glue_refuses_varlen_backward(tiny_encoders, fake_impl,
                                                                                            monkeypatch):
    fa4 = pytest.importorskip("torch.nn.attention._fa4")

    def torch_2_11_check(grad_out, query, key, value, out, logsumexp, dropout_p, cum_seq_q, window_size_left,
                         window_size_right):  # torch 2.11's signature: every varlen backward gives window sizes
        return "windowed attention not supported"

    monkeypatch.setitem(_registry._FLASH_ATTENTION_IMPLS, "FA4", lambda: _Handle([]))
    monkeypatch.setattr(fa4, "_fa4_backward_support_error", torch_2_11_check)
    with pytest.raises(ConfigError, match=r"^flash_attention FA4 cannot train padding-free batches on torch .* set "
                                          r"batching.padding_free: false \(SDPA then runs FA4 on padded batches\)"):
        MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT, flash_attention="FA4", padding_free=True)
    assert current_flash_attention_impl() is None  # refused before anything was activated
    padded = MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT, flash_attention="FA4")
    assert padded.flash_attention == "FA4"
    with pytest.raises(ConfigError, match="cannot train padding-free batches"):
        padded.enable_padding_free()
    monkeypatch.setattr(fa4, "_fa4_backward_support_error", lambda grad_out, query, key, value, out, logsumexp, dropout_p,
                        cum_seq_q: None)  # torch 2.13's: no window sizes
    assert MultitaskModel(tiny_encoders["bert"], HEADS, encoder_kwargs=NO_DROPOUT, flash_attention="FA4",
                          padding_free=True).padding_free
