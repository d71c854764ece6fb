"""``Preprocessor`` and ``NLIPreprocess`` (was ``src.preprocessing``) on mtcore's own.

``Preprocessor([f, g])`` runs row functions in order; ``NLIPreprocess(premise=..., hypothesis=...,
label=...)`` maps NLI fields to ``text`` (the premise) / ``text_pair`` (the hypothesis) / ``label``.
The seed's keywords work too (``premise_field``, ``hypothesis_field``, ``label_field_in``; its
output names ``label_field="label"`` and ``input_field="input"`` are the only ones accepted), and
``NLIPreprocessor`` is another name for it. Unlike the seed, the premise is the first segment.
See :mod:`mtcore.data.preprocess`.
"""

from __future__ import annotations

from typing import Any

from mtcore.data.preprocess import NLIPreprocess as _CoreNLIPreprocess
from mtcore.data.preprocess import Preprocessor
from mtcore.errors import ConfigError, did_you_mean

__all__ = ["NLIPreprocess", "NLIPreprocessor", "Preprocessor"]

#: the seed's field keywords -> mtcore's
SEED_FIELDS = {"premise_field": "premise", "hypothesis_field": "hypothesis", "label_field_in": "label"}
#: the seed's output-name keywords, and the one value each can keep (mtcore writes text / text_pair / label)
SEED_OUTPUTS = {"label_field": "label", "input_field": "input"}


class NLIPreprocess(_CoreNLIPreprocess):
    """:class:`mtcore.data.preprocess.NLIPreprocess`, also taking the seed's keywords."""

    def __init__(self, premise: str = "premise", hypothesis: str = "hypothesis", label: str = "label", **seed_keywords: Any) -> None:
        names = {"premise": premise, "hypothesis": hypothesis, "label": label}
        for key, value in seed_keywords.items():
            if key in SEED_FIELDS:
                names[SEED_FIELDS[key]] = value
            elif key in SEED_OUTPUTS:
                if value != SEED_OUTPUTS[key]:
                    raise ConfigError(f"NLIPreprocess({key}={value!r}): mtcore writes the fields text, text_pair and label; "
                                      f"leave {key} out (or add a step that renames them)")
            else:
                accepted = ["premise", "hypothesis", "label", *SEED_FIELDS, *SEED_OUTPUTS]
                raise ConfigError(f"NLIPreprocess got an unknown keyword {key!r}{did_you_mean(key, accepted)}; "
                                  "it takes premise=, hypothesis=, label= (the data's field names)")
        super().__init__(**names)


#: The seed README's name for :class:`NLIPreprocess`.
NLIPreprocessor = NLIPreprocess
