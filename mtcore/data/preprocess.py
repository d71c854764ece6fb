"""Composable preprocessing steps, each a callable on one example dict (the seed's vocabulary).

>>> step = Preprocessor([NLIPreprocess(premise="sentence1", hypothesis="sentence2", label="gold_label")])
>>> step({"sentence1": "a", "sentence2": "b", "gold_label": "neutral"})["text_pair"]
'b'

A step returns the new example (or ``None`` after changing the one it got). Tasks list their
steps in ``Task.preprocess`` (callables or ``"module:function"`` references); mtcore runs them
through ``datasets.map``, so their results are cached with the data.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mtcore.errors import DataError, MtError
from mtcore.refs import describe, resolve_function

Example = dict[str, Any]
Step = Callable[[Example], Example | None]


class Preprocessor:
    """Run steps in order on one example: ``Preprocessor([f, g])(example) == g(f(example))``."""

    def __init__(self, steps: Iterable[Step | str] = ()):
        self.steps: tuple[Step, ...] = tuple(resolve_function(step) for step in steps)
        self._traceback_shown = False
        for step in self.steps:
            if not callable(step):
                raise TypeError(f"preprocessing step {step!r} is not callable")

    def __call__(self, example: Mapping[str, Any]) -> Example:
        current = dict(example)
        for step in self.steps:
            result = self.run_step(step, current)
            if result is not None:
                if not isinstance(result, Mapping):
                    raise DataError(f"preprocessing step {describe(step)} returned {type(result).__name__}, not an example dict")
                current = dict(result)
        return current

    def run_step(self, step: Step, current: dict[str, Any]) -> Any:
        """``step(current)``; a step that crashes on the row is an error naming the step (the caller names the row)."""
        try:
            return step(current)
        except MtError:
            raise
        except Exception as exc:
            raise self._failure(step, exc) from exc

    def _failure(self, step: Step, exc: Exception) -> DataError:
        """``preprocessing step mt_toxic.prep:clean_row failed with KeyError: comment_txt (...)``; with
        ``MT_DEBUG=1`` the step's traceback is printed to stderr first (once per pipeline: the error that
        reaches the user is raised further up, without it)."""
        debug = "MT_DEBUG=1 shows its traceback"
        if os.environ.get("MT_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}:
            if not self._traceback_shown:
                self._traceback_shown = True
                print(f"traceback of preprocessing step {describe(step)}:\n" + "".join(traceback.format_exception(exc)).rstrip(),
                      file=sys.stderr, flush=True)
            debug = "its traceback is above"
        text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
        return DataError(f"preprocessing step {describe(step)} failed with {type(exc).__name__}: {text} ({debug}); "
                         "fix the step or the row")

    def __add__(self, other: Preprocessor | Step) -> Preprocessor:
        more = other.steps if isinstance(other, Preprocessor) else (other,)
        return Preprocessor(self.steps + tuple(more))

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Preprocessor([{', '.join(describe(step) if not hasattr(step, 'fingerprint_key') else repr(step) for step in self.steps)}])"

    def fingerprint_key(self) -> list[Any]:
        """What the cache key of this pipeline is made of (its steps)."""
        return list(self.steps)


class NLIPreprocess:
    """Natural language inference fields -> canonical ``text``, ``text_pair``, ``label``.

    Field names are configurable for datasets that spell them differently (XNLI's official
    files: ``sentence1``, ``sentence2``, ``gold_label``). Other fields are kept.
    """

    def __init__(self, premise: str = "premise", hypothesis: str = "hypothesis", label: str = "label"):
        self.premise = premise
        self.hypothesis = hypothesis
        self.label = label

    def __call__(self, example: Mapping[str, Any]) -> Example:
        for field in (self.premise, self.hypothesis):
            if field not in example:
                raise DataError(f"no field {field!r} (the row has: {', '.join(map(str, example))}); "
                                f"set NLIPreprocess(premise=..., hypothesis=...) to the data's field names")
        out = dict(example)
        out["text"] = example[self.premise]
        out["text_pair"] = example[self.hypothesis]
        out["label"] = example.get(self.label)
        return out

    def __repr__(self) -> str:
        return f"NLIPreprocess(premise={self.premise!r}, hypothesis={self.hypothesis!r}, label={self.label!r})"

    def fingerprint_key(self) -> list[Any]:
        return [self.premise, self.hypothesis, self.label]


def build_preprocessor(steps: Iterable[Step | str]) -> Preprocessor:
    """One :class:`Preprocessor` from a task's ``preprocess`` entries (nested Preprocessors flatten)."""
    flat: list[Step] = []
    for step in steps:
        step = resolve_function(step)
        flat.extend(step.steps if isinstance(step, Preprocessor) else (step,))
    return Preprocessor(flat)
