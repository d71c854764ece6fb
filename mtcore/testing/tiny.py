"""Tiny encoders built offline: a written WordPiece vocabulary and a few-layer config.

Nothing is downloaded: the tokenizer vocabulary is written out (special tokens, single
characters in Latin and Cyrillic, their ``##`` continuations, and any ``words`` you pass) and the
model is randomly initialised from a small config, then both are saved with
``save_pretrained`` so ``AutoModel`` / ``AutoTokenizer`` load the directory like a hub model.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ALPHABET = string.ascii_lowercase + string.digits + string.punctuation + "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"

#: Architectures this helper can build, with the config fields that make them tiny.
ARCHITECTURES = ("bert", "roberta", "xlm-roberta", "distilbert", "deberta-v2", "electra", "modernbert")


def _vocab(words: Iterable[str]) -> list[str]:
    vocab = list(SPECIALS)
    vocab += [c for c in ALPHABET]
    vocab += ["##" + c for c in ALPHABET]
    seen = set(vocab)
    for word in words:
        word = word.lower()
        if word and word not in seen:
            vocab.append(word)
            seen.add(word)
    return vocab


def _config(arch: str, vocab_size: int, hidden: int, layers: int, heads: int, max_positions: int):
    from transformers import AutoConfig

    common = dict(vocab_size=vocab_size, pad_token_id=0)
    if arch == "bert":
        return AutoConfig.for_model("bert", hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                    intermediate_size=hidden * 2, max_position_embeddings=max_positions, **common)
    if arch in ("roberta", "xlm-roberta"):
        return AutoConfig.for_model(arch, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                    intermediate_size=hidden * 2, max_position_embeddings=max_positions + 2,
                                    type_vocab_size=1, bos_token_id=2, eos_token_id=3, **common)
    if arch == "distilbert":
        return AutoConfig.for_model("distilbert", dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=hidden * 2,
                                    max_position_embeddings=max_positions, **common)
    if arch == "deberta-v2":
        return AutoConfig.for_model("deberta-v2", hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                    intermediate_size=hidden * 2, max_position_embeddings=max_positions, type_vocab_size=2,
                                    relative_attention=True, position_buckets=32, max_relative_positions=-1,
                                    pos_att_type=["p2c", "c2p"], **common)
    if arch == "electra":
        return AutoConfig.for_model("electra", embedding_size=hidden, hidden_size=hidden, num_hidden_layers=layers,
                                    num_attention_heads=heads, intermediate_size=hidden * 2,
                                    max_position_embeddings=max_positions, **common)
    if arch == "modernbert":
        return AutoConfig.for_model("modernbert", hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                    intermediate_size=hidden * 2, max_position_embeddings=max_positions,
                                    bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3,
                                    global_attn_every_n_layers=1, local_attention=16, **common)
    raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def build_tiny_encoder(
    path: str | Path,
    arch: str = "bert",
    *,
    words: Iterable[str] = (),
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int = 512,
    seed: int = 0,
) -> Path:
    """Write a tiny randomly initialised encoder and its tokenizer to ``path``; return the path.

    >>> build_tiny_encoder(tmp_path / "enc", "bert", words=["yes", "no"])
    """
    import torch
    from transformers import AutoModel, BertTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = _vocab(words)
    extra = {}
    if arch in ("roberta", "xlm-roberta", "distilbert", "modernbert"):
        extra["model_input_names"] = ["input_ids", "attention_mask"]
    tokenizer = BertTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=True,
                              model_max_length=max_positions, **extra)
    config = _config(arch, len(vocab), hidden_size, num_layers, num_heads, max_positions)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        model = AutoModel.from_config(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
