"""The run's ``Accelerator``: device, precision, DDP options and trackers; and the launches mtcore does not train under.

mtcore trains on one process or several under DDP (``torchrun``, or ``accelerate launch`` with its multi-GPU
setting; on CPUs use ``torchrun``: ``accelerate launch --cpu --num_processes 2`` starts one process). A launch that asks Accelerate for FSDP, DeepSpeed or Megatron-LM (``accelerate launch
--use_fsdp`` / ``--use_deepspeed``, or an ``accelerate config`` file that chose them: they reach the process as
``ACCELERATE_USE_FSDP=true`` and the like) would shard or wrap the model in ways the engine does not handle — its
checkpoints, per-task gradients and evaluation expect whole parameters on every process — so it is refused in one
line before anything is built (:func:`check_launch`), rather than left to fail later or train wrong.
"""

from __future__ import annotations

import os
from typing import Any

from mtcore.errors import ConfigError
from mtcore.train.config import TrainConfig
from mtcore.train.precision import check_weights_dtype, resolve_precision

#: The environment variables ``accelerate launch`` sets for a distributed backend mtcore does not train under.
UNSUPPORTED_LAUNCHES = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed",
                        "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM"}


def check_launch(environ: Any = None) -> None:
    """Refuse a launch that asks for FSDP, DeepSpeed or Megatron-LM (see the module docstring)."""
    environ = os.environ if environ is None else environ
    for variable, name in UNSUPPORTED_LAUNCHES.items():
        if str(environ.get(variable, "false")).strip().lower() in ("1", "true", "yes", "y", "on", "t"):
            raise ConfigError(f"this launch asks for {name} ({variable} is set, by accelerate launch or its config file), which "
                              f"mtcore does not train under: it trains on one process or several under DDP; launch with "
                              f"torchrun --nproc_per_node N -m mtcore.cli.app train ..., or accelerate launch --multi_gpu "
                              f"(an accelerate config without {name})")


def make_accelerator(config: TrainConfig, run: Any, num_tasks: int) -> Any:
    """An ``Accelerator`` for this config: device, precision, DDP options, trackers (a launch asking for FSDP,
    DeepSpeed or Megatron-LM is refused first: :func:`check_launch`)."""
    check_launch()
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    cuda = torch.cuda.is_available() and not config.cpu
    precision = resolve_precision(config.precision, cuda)
    check_weights_dtype(precision, config.encoder.options)
    # One task per step (or one backward per task) leaves other heads without gradient; so does the encoder in the
    # steps encoder.freeze_encoder_steps keeps it out of the backward pass.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=num_tasks > 1 or config.encoder.freeze_encoder_steps > 0)
    return Accelerator(cpu=not cuda, mixed_precision=precision, kwargs_handlers=[ddp],
                       log_with=list(config.logging.trackers) or None, project_dir=str(run.root))
