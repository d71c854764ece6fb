"""The base of every config section (:mod:`mtcore.train.config`): unknown keys refused, finite numbers,
no YAML booleans where a number is expected."""

from __future__ import annotations

import types
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, numbers are accepted where text is,
    and a number is finite (``lr: .inf`` or ``1e400`` would train on NaN)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: Any) -> Any:
        """``max_steps: yes`` is YAML's True, which pydantic would take as 1."""
        field = cls.model_fields.get(info.field_name)
        if field is None:
            return value
        if isinstance(value, bool) and _takes_number_not_bool(field.annotation):
            raise ValueError(f"expected a number, got {value} (YAML reads yes/no/on/off/true/false as booleans)")
        if isinstance(value, dict) and _takes_number_not_bool(_mapping_values(field.annotation)):
            key = next((k for k, v in value.items() if isinstance(v, bool)), None)
            if key is not None:
                raise ValueError(f"{key}: expected a number, got {value[key]} (YAML reads yes/no/on/off/true/false as booleans)")
        return value


def _mapping_values(annotation: Any) -> Any:
    """The value type of a ``dict[K, V]`` annotation (None otherwise)."""
    import typing

    args = typing.get_args(annotation)
    return args[1] if typing.get_origin(annotation) is dict and len(args) == 2 else None


def _takes_number_not_bool(annotation: Any) -> bool:
    import typing

    kinds: set[Any] = set()
    todo = [annotation]
    while todo:
        current = todo.pop()
        args = typing.get_args(current)
        if args and typing.get_origin(current) in (typing.Union, types.UnionType, typing.Annotated):
            todo.extend(args)
        else:
            kinds.add(current)
    return bool(kinds & {int, float}) and bool not in kinds
