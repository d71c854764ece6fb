"""Plain ``str`` command-line values skip typer's pydantic coercion.

typer >= 0.2x coerces every value that is not a boolean flag through a pydantic ``TypeAdapter``,
built when the value is read: importing pydantic and building the adapter cost 60-180 ms of a
command that otherwise takes ~0.2 s (``mt list-tasks --kind ...``, ``mt show-task ID``: even an
option left at its default ``None`` builds it). A plain ``str`` parameter needs no coercion (the
parser hands it a ``str``), nor does a flag (a ``bool``; ``--help``'s value is ``None`` when not
given, and builds an adapter too), so :func:`pass_plain_strings` gives such parameters a
pass-through; any other value, annotation or typer version goes typer's own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

try:
    from typer._coercion import RuntimeParam, build_runtime_param
except ImportError:  # pragma: no cover - typer before 0.2x coerces with click, without pydantic
    RuntimeParam = None


if RuntimeParam is not None:
    @dataclass(frozen=True)
    class _PassThrough(RuntimeParam):  # type: ignore[misc, valid-type]
        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if type(value) is self.annotation:  # what the parser hands over (None never gets here)
                return value
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def pass_plain_strings(command: Any, ctx: Any) -> None:
    """Give each plain ``str`` or ``bool`` parameter of ``command`` not read yet (``--help`` is a ``bool``
    whose value is ``None`` when not given) the pass-through coercion."""
    if RuntimeParam is None:  # pragma: no cover
        return
    for param in command.get_params(ctx) if command is not None else ():  # with --help, which click adds
        descriptor = getattr(param, "type_descriptor", None)
        if (descriptor is None or getattr(param, "_runtime_param", False) is not None or descriptor.annotation not in (str, bool)
                or descriptor.parameter_info.parser is not None or descriptor.file_annotation is not None):
            continue
        param._runtime_param = _PassThrough(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation,
                                            descriptor=descriptor)
