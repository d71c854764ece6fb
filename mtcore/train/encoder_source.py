"""Where a run's encoder and tokenizer come from: ``encoder.path`` (a folder, a hub id, or a model
mtcore saved), or a tiny random-init demo encoder built into the run directory (``encoder.tiny``).
Each failure to find or load one is a one-line :class:`~mtcore.errors.ModelFileError`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mtcore.errors import ModelFileError
from mtcore.outputs import share_modes
from mtcore.train.config import TrainConfig
from mtcore.train.run_dir import RunDir

TINY_NOTE = "RANDOM-INIT DEMO ENCODER: built offline by mtcore.testing.build_tiny_encoder; not pretrained, for demos and tests only.\n"


def encoder_source(config: TrainConfig, run: RunDir, accelerator: Any) -> str:
    """The encoder to load: ``encoder.path``, or a tiny demo encoder built into the run directory."""
    if config.encoder.path is not None:
        from mtcore.train.warm_start import encoder_folder

        return encoder_folder(config.encoder.path)  # a model mtcore saved: its encoder/ (and tokenizer)
    from mtcore.testing.tiny import build_tiny_encoder

    tiny = config.encoder.tiny
    assert tiny is not None
    target = run.root / f"tiny-encoder-{tiny.arch}"
    if accelerator.is_main_process:
        _check_tiny_folder(target, tiny)
    if accelerator.is_main_process and not (target / "config.json").is_file():
        build = run.root / f".tmp-tiny-encoder-{tiny.arch}"
        build_tiny_encoder(build, tiny.arch, hidden_size=tiny.hidden_size, num_layers=tiny.num_layers,
                           num_heads=tiny.num_heads, seed=config.seed)
        (build / "README.txt").write_text(TINY_NOTE, encoding="utf-8")
        share_modes(build)  # safetensors makes private files
        os.replace(build, target)
    accelerator.wait_for_everyone()
    return str(target)


def _check_tiny_folder(target: Path, tiny: Any) -> None:
    """A ``tiny-encoder-<arch>/`` already in the run folder (a resumed run's) is reused only when it is what
    ``encoder.tiny`` asks for; another one, or a folder of something else, is one line."""
    from transformers import AutoConfig

    from mtcore.errors import ConfigError

    if not target.exists():
        return
    try:
        built = AutoConfig.from_pretrained(str(target))  # its attribute names for every architecture (DistilBERT's dim too)
    except (OSError, ValueError):
        raise ConfigError(f"{target} is in the way of the demo encoder (encoder.tiny) and holds no encoder's config.json; move it, "
                          "or choose another --output-dir") from None
    asked = {"hidden_size": tiny.hidden_size, "num_hidden_layers": tiny.num_layers, "num_attention_heads": tiny.num_heads}
    differ = [f"{key} {getattr(built, key, None)} (encoder.tiny asks {value})" for key, value in asked.items()
              if getattr(built, key, None) != value]
    if differ:
        raise ConfigError(f"{target} holds a demo encoder of other settings: {', '.join(differ)}; delete that folder, or "
                          "choose another --output-dir")


#: Files one of which a folder holding a tokenizer has.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model", "vocab.json")


def load_tokenizer(source: str, config: TrainConfig) -> Any:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {}
    if config.encoder.revision:
        kwargs["revision"] = config.encoder.revision
    kwargs["trust_remote_code"] = bool(config.encoder.trust_remote_code)  # said either way: transformers would ask on stdin
    folder = Path(source).expanduser()
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelFileError(f"encoder folder {source!r} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); "
                             "save the tokenizer there (tokenizer.save_pretrained) or point encoder.path at a folder that has one")
    try:
        return AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        if not folder.exists() and os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            raise ModelFileError(f"encoder {source!r} is not in the local Hugging Face cache and offline mode is on (HF_HUB_OFFLINE=1): "
                                 "download it once online, or point encoder.path at a local model folder") from None
        text = " ".join(str(exc).split()) or type(exc).__name__
        text = text if len(text) <= 300 else text[:300].rsplit(". ", 1)[0] + "."
        raise ModelFileError(f"the tokenizer of encoder {source!r} cannot be loaded (not a local model folder with tokenizer "
                             f"files, or not reachable on the hub): {text}") from None
