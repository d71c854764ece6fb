"""``Preprocessor`` and ``NLIPreprocess`` (was ``src.preprocessing``) on mtcore's own.

``Preprocessor([f, g])`` runs row functions in order and, as in the seed, a step that returns
``None`` drops the row (mtcore's own :class:`mtcore.data.preprocess.Preprocessor` keeps it). The
seed's keywords ``parallel``, ``num_proc`` and ``verbose`` are accepted and have no effect (rows are
prepared by ``datasets.map`` and cached). A step returning several rows (a list) is refused.
``NLIPreprocess(premise=..., hypothesis=..., label=...)`` maps NLI fields to ``text`` (the premise) /
``text_pair`` (the hypothesis) / ``label``.
The seed's keywords work too (``premise_field``, ``hypothesis_field``, ``label_field_in``; its
output names ``label_field="label"`` and ``input_field="input"`` are the only ones accepted), and
``NLIPreprocessor`` is another name for it. Unlike the seed, the premise is the first segment.
See :mod:`mtcore.data.preprocess`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mtcore.data.preprocess import NLIPreprocess as _CoreNLIPreprocess
from mtcore.data.preprocess import Preprocessor as _CorePreprocessor
from mtcore.errors import ConfigError, DataError, did_you_mean
from mtcore.refs import describe, resolve

__all__ = ["NLIPreprocess", "NLIPreprocessor", "Preprocessor", "nli_preprocess", "step_reference"]


class Preprocessor(_CorePreprocessor):
    """The seed's ``Preprocessor(actions, parallel=True, num_proc=None, verbose=False)``: row functions
    run in order; a step returning ``None`` drops the row (``preprocessor(row)`` is then ``None``).

    ``parallel``, ``num_proc`` and ``verbose`` are the seed's keywords, accepted with no effect.
    ``actions`` may also be given as mtcore's ``steps=``, or be an mtcore ``Preprocessor``.
    """

    def __init__(self, actions: Iterable[Any] | None = None, parallel: bool = True, num_proc: int | None = None, verbose: bool = False,
                 *, steps: Iterable[Any] | None = None) -> None:
        if actions is not None and steps is not None:
            raise ConfigError("Preprocessor got actions and steps (its mtcore name); pass one list of row functions")
        actions = steps if actions is None else actions
        if isinstance(actions, _CorePreprocessor):
            actions = actions.steps
        elif callable(actions) or isinstance(actions, str):
            actions = [actions]
        try:
            actions = list(actions or ())
        except TypeError:
            raise ConfigError(f"Preprocessor takes a list of row functions, got {type(actions).__name__}: Preprocessor([my_step])") from None
        flat: list[Any] = []
        for step in actions:  # a Preprocessor inside the list runs its steps in place
            flat.extend(step.steps if isinstance(step, _CorePreprocessor) else (step,))
        super().__init__(flat)

    def __call__(self, example: Mapping[str, Any]) -> dict[str, Any] | None:  # type: ignore[override]
        """The prepared row, or ``None`` when a step returned ``None`` (the seed drops that row)."""
        if hasattr(example, "column_names"):  # the seed's preprocessor(dataset_dict)
            raise ConfigError("Preprocessor(...) runs on one row at a time; give it to the task instead: "
                              "SequenceClassificationTask(name, dataset_dict, Preprocessor([...]))")
        current = dict(example)
        for step in self.steps:
            result = self.run_step(step, current)
            if result is None:
                return None
            if not isinstance(result, Mapping):
                if isinstance(result, (list, tuple)):
                    raise DataError(f"preprocessing step {describe(step)} returned {len(result)} rows (a {type(result).__name__}); "
                                    "mtcore.seed keeps one row per row (return the row, or None to drop it): "
                                    "expand the rows in the DatasetDict before building the task")
                raise DataError(f"preprocessing step {describe(step)} returned {type(result).__name__}, not an example dict "
                                "(return the row, or None to drop it)")
            current = dict(result)
        return current

    def __repr__(self) -> str:
        return "seed " + super().__repr__()

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


_DEFAULT_NLI = _CoreNLIPreprocess()


def nli_preprocess(example: Mapping[str, Any]) -> dict[str, Any]:
    """``NLIPreprocess()`` with its default field names (premise, hypothesis, label), as a function
    that a saved model can name (``mtcore.seed.preprocessing:nli_preprocess``)."""
    return _DEFAULT_NLI(example)


def step_reference(step: Any) -> Any:
    """``"module:function"`` for a step that can be imported back by that name (a module-level function,
    ``NLIPreprocess()`` with the default fields), so a saved model can prepare rows; else the step itself."""
    if isinstance(step, str):
        return step
    if type(step) in (_CoreNLIPreprocess, NLIPreprocess):  # not a subclass: it may prepare rows differently
        same = (step.premise, step.hypothesis, step.label) == (_DEFAULT_NLI.premise, _DEFAULT_NLI.hypothesis, _DEFAULT_NLI.label)
        return f"{__name__}:nli_preprocess" if same else step
    module, qualname = getattr(step, "__module__", None), getattr(step, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__" or "<" in qualname:
        return step  # a lambda, a nested function, a notebook's function, a callable object
    reference = f"{module}:{qualname}"
    try:
        return reference if resolve(reference) is step else step
    except Exception:  # not importable under that name
        return step
