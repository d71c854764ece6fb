"""What ``mt evaluate``, ``mt predict`` and ``mt export``'s options may be, checked before any model is loaded: each
mistake is one :class:`~mtcore.errors.UsageError` line naming the option (exit 2). Imports nothing heavy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from mtcore.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def device_option(device: Optional[str]) -> None:
    """A typo or a missing GPU in ``--device`` is one line, before any model is loaded."""
    if device is not None and device != "auto":
        from mtcore.predict.devices import check_device

        check_device(device, "--device")


def input_file_option(path: str | Path) -> None:
    """``--input`` that is missing or a folder: a usage error (exit 2), as a missing RUN or config is."""
    from mtcore.predict.inputs import input_file_problem

    problem = input_file_problem(path)
    if problem is not None:
        raise UsageError(f"--input {problem}")


#: The --trust-remote-code option's help (evaluate, predict, export).
TRUST_HELP = ("Run the code of the model's own encoder (a run trained with encoder.trust_remote_code: true); only for a model "
              "whose source you trust.")


def data_dir_option(data_dir: Optional[Path]) -> None:
    """``--data-dir`` that is no folder: a usage error naming the option (exit 2), before the model loads."""
    if data_dir is not None and not data_dir.expanduser().is_dir():
        from mtcore.errors import did_you_mean_path

        what = "a file, not a folder" if data_dir.expanduser().exists() else f"no such folder{did_you_mean_path(data_dir.expanduser(), folders=True)}"
        raise UsageError(f"--data-dir {data_dir}: {what}; give the folder holding the task's downloaded files")


def input_format_option(input: Any, input_format: str) -> None:
    """``--input-format`` reads ``--input``: alone it would be ignored, whatever its value."""
    if input is None and input_format != "auto":
        raise UsageError(f"--input-format {input_format} is the format of --input, which is not given; add --input FILE, or "
                         "leave --input-format out (a split is read by its task's source)")


def one_process(command: str) -> None:
    """Inference uses one device: under ``torchrun`` / ``accelerate launch`` every process would redo the whole job
    and write the same files, so such a launch is refused (by the main process; the others wait for it)."""
    from mtcore.train.distributed import let_the_main_process_report, world_size

    processes = world_size()
    if processes > 1:
        error = UsageError(f"mt {command} runs in one process, and this launch started {processes} (WORLD_SIZE={processes}): "
                           "run it without torchrun / accelerate launch (--device cuda:1 picks a GPU)")
        let_the_main_process_report(error)
        raise error


def precision_option(precision: Optional[str]) -> None:
    if precision is not None and precision not in PRECISIONS:
        from mtcore.errors import unknown

        raise unknown("precision", precision, PRECISIONS)
