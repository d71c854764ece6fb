"""Shared test data and helpers of the inference tests (``from inference.support import ...``)."""

from __future__ import annotations

from pathlib import Path

from mtcore.task import Task


def make_model(encoder_dir: Path, *tasks: Task, seed: int = 0):
    """A MultitaskModel with the encoder's tokenizer and randomly initialised (seeded) heads."""
    import torch
    from transformers import AutoTokenizer

    from mtcore.model import MultitaskModel

    torch.manual_seed(seed)
    return MultitaskModel(str(encoder_dir), list(tasks), tokenizer=AutoTokenizer.from_pretrained(encoder_dir))


SENTIMENT = Task(name="sentiment", kind="text_classification", labels=("negative", "positive"), label_values=(0, 1),
                 inputs={"text": "review"}, head_options={"pooling": "pooler"}, plugin="demo", max_length=64)
NLI = Task(name="nli", kind="pair_classification", labels=("entailment", "neutral", "contradiction"),
           inputs={"text": "premise", "text_pair": "hypothesis"}, head_options={"pooling": "pooler"}, plugin="demo")


REVIEWS = [
    {"review": "good movie", "id": "a"},
    {"review": "bad bad movie, very long review with many many words in it"},
    {"review": "хороший фильм"},
    {"review": "x"},
    {"review": "movie good bad", "label": "not a label"},
    {"review": "good " * 80},  # longer than SENTIMENT.max_length: truncated
]
PAIRS = [
    {"premise": "Кот спит на диване.", "hypothesis": "Кот не спит."},
    {"premise": "a", "hypothesis": "b c d e"},
    {"premise": "long premise " * 10, "hypothesis": "short"},
]
