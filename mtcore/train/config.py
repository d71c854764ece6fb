"""The training configuration: one typed YAML document (pydantic v2, unknown keys refused).

A complete config, every key with its default (only ``encoder`` and ``tasks`` are required)::

    seed: 42
    deterministic: false         # true: deterministic GPU kernels only, so a GPU run repeats bit for bit (slower)
    output_dir: null             # default: runs/<config file stem>
    cpu: false                   # force CPU even when a GPU is there
    encoder:
      path: DeepPavlov/rubert-base-cased   # hub id, local HF directory or a model mtcore saved (runs/x/model) ...
      # tiny: bert               # ... or a random-init demo encoder built offline into the run
                                 # directory ({arch, hidden_size: 64, num_layers: 2, num_heads: 2})
      revision: null
      trust_remote_code: false
      attn_implementation: sdpa  # sdpa | eager | flash_attention_2 ...
      gradient_checkpointing: false
      freeze_encoder: false
      freeze_encoder_steps: 0    # N: heads alone for the first N steps, then the whole model (LP-FT)
      freeze_layers: 0
      task_layers: 0             # k: every task gets its own copy of the encoder's last k layers (partial sharing)
      load_heads: false          # path is a model mtcore saved: its trained heads start the matching tasks
      options: {}                # more MultitaskModel keyword arguments (dtype, encoder_kwargs,
                                 # packed_attention, fp32_residual, flash_attention)
    tasks:                       # a bare string means {id: <string>}
      - id: rsg:terra
        source: sample           # sample | local | hub (default: local with data_dir, else hub, else sample: a note says so)
        data_dir: null
        weight: 1.0              # fixed sampler / weighted loss weight
        batch_size: null         # per-task batch size (default batching.batch_size)
        max_length: null
        holdout: null            # e.g. 0.1: when the source has no validation split, that share of train
                                 # (stratified by label, the same rows in every run) becomes it
        head: null
        head_options: null
        # any Task field: labels, label_values, label_aliases, inputs, preprocess, metrics,
        # main_metric, truncation, stride, no_answer and null_threshold (extractive QA), sources
      - {id: rsg:lidirus, evaluate_with: rsg:terra, split: null}   # scored, not trained: no head of its own,
                                 # predicted by rsg:terra's (evaluate_with; a diagnostic set names its own), on
                                 # split (default evaluation.split, else a diagnostic set's test); weight 0 in the
                                 # aggregate unless evaluation.weights names it
      - define: {name: reviews, kind: text_classification, labels: [neg, pos],
                 files: {train: data/train.jsonl, validation: data/val.jsonl}}   # an inline task (id user:reviews)
    sampler: {name: proportional, mode: auto, stop: largest, options: {}}   # mode auto: what the loss strategy needs
             # stop (when an epoch ends): largest (every task through its batches, smaller ones repeat) |
             # smallest (the first task to run out: nothing repeats) | a number of steps
    loss: {strategy: single, weights: {}, options: {}, r3f: null}   # r3f: {weight: 1.0, noise: 1.0e-5, distribution: normal}
    optimizer: {name: adamw, lr: 5.0e-05, head_lr: null, weight_decay: 0.01, betas: [0.9, 0.999],
                eps: 1.0e-08, max_grad_norm: 1.0, gradient_accumulation_steps: 1, fused: null,
                layer_decay: null}   # in (0, 1], e.g. 0.8: encoder layer i of L (L = top) trains at
                # lr * layer_decay^(L-i), the embeddings at lr * layer_decay^L; heads at head_lr; 1 = off
                # head_lrs: {rsg:terra: 1.0e-3}  a task's own head lr (others: head_lr)
    schedule: {name: linear, epochs: 3, max_steps: null, warmup_steps: null, warmup_ratio: null}
    precision: auto              # auto | fp32 | bf16 | fp16 (auto: bf16 on GPUs that compute in it, Ampere and
                                 # newer; fp16 on older ones, T4 and V100; fp32 on CPU)
    batching: {batch_size: 16, eval_batch_size: null, max_tokens: null, max_rows: null, group_by_length: true,
               pad_to_multiple_of: null, padding_free: false}   # padding_free: encoder on real tokens only
               # max_rows: at most this many rows in a max_tokens batch
    evaluation: {every: null, at_end: true, split: validation, weights: {}, early_stopping_patience: null}
    checkpoint: {every: 500, at_end: true, keep_last: 2, keep_best: true,
                 best_to_model: false}   # true: model/ gets the best checkpoint's weights (needs evaluation.every)
    logging: {every: 10, progress: auto, trackers: [], project: mtcore, plot: true}
    debug: {inject_nan_at_step: null, step_delay_s: 0, save_rank_weights: false}
    compile: {enabled: false, dynamic: true, mode: null, backend: inductor, regional: true}   # or just `compile: true`
    distill: null                # {teacher: runs/multi, teachers: {}, teacher_weight: 0.5, temperature: 1.0, anneal: false}:
                                 # knowledge distillation from trained teachers (mtcore.train.distill_config)

Loading and one-line errors: :mod:`mtcore.train.config_io`; ``key=value`` overrides: :mod:`mtcore.train.overrides`;
checks against the plugin registry: :mod:`mtcore.train.validate`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, field_validator, model_validator

from mtcore.task import SPLITS
from mtcore.train.config_section import Section
from mtcore.train.distill_config import DistillConfig
from mtcore.train.regularization import R3FConfig
from mtcore.testing.tiny import ARCHITECTURES

EvaluationSplit = Literal["train", "validation", "test"]
TinyArch = Literal["bert", "roberta", "xlm-roberta", "distilbert", "deberta-v2", "electra", "modernbert"]
assert set(TinyArch.__args__) == set(ARCHITECTURES) and EvaluationSplit.__args__ == SPLITS  # type: ignore[attr-defined]


class TinyEncoder(Section):
    """A randomly initialised demo encoder built offline by :func:`mtcore.testing.build_tiny_encoder`."""

    arch: TinyArch = "bert"
    hidden_size: int = Field(64, ge=8, le=8192)  # a demo encoder: sizes a machine can build
    num_layers: int = Field(2, ge=1, le=128)
    num_heads: int = Field(2, ge=1, le=128)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TinyEncoder:
        if self.hidden_size % self.num_heads:
            fits = [n for n in range(1, min(self.hidden_size, 16) + 1) if self.hidden_size % n == 0]
            raise ValueError(f"'encoder.tiny.hidden_size' ({self.hidden_size}) must be a multiple of 'encoder.tiny.num_heads' "
                             f"({self.num_heads}): each attention head gets an equal share; e.g. num_heads: {max(n for n in fits if n <= self.num_heads)}")
        return self


class EncoderConfig(Section):
    """The shared encoder: a hub id / local directory (``path``) or a tiny demo encoder (``tiny``)."""

    path: str | None = None
    tiny: TinyEncoder | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    attn_implementation: str | None = "sdpa"
    gradient_checkpointing: bool = False
    freeze_encoder: bool = False
    freeze_encoder_steps: int = Field(0, ge=0)  # the encoder frozen for the first N optimizer steps only
    freeze_layers: int = Field(0, ge=0)
    task_layers: int = Field(0, ge=0)  # the last k layers copied once per task (mtcore.model.task_layers)
    load_heads: bool = False  # encoder.path is a model mtcore saved: its trained heads start matching tasks
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tiny", mode="before")
    @classmethod
    def _tiny_shorthand(cls, value: Any) -> Any:
        return {"arch": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> EncoderConfig:
        if (self.path is None) == (self.tiny is None):
            both = ("; both are set: to train a real encoder from a config with a demo one, add encoder.tiny=null"
                    if self.path is not None else "")
            raise ValueError("give exactly one of 'encoder.path' (hub id or local directory) or 'encoder.tiny' (demo encoder, "
                             f"e.g. bert){both}")
        return self


class TaskEntry(Section):
    """One task of the run, with per-task overrides of the registered :class:`mtcore.task.Task`."""

    id: str | None = None
    define: dict[str, Any] | None = None
    source: Literal["sample", "local", "hub"] | None = None
    data_dir: str | None = None
    weight: float = Field(1.0, ge=0)
    batch_size: int | None = Field(None, ge=1)
    max_length: int | None = Field(None, ge=8)
    head: str | None = None
    head_options: dict[str, Any] | None = None
    # Task field overrides (see mtcore.task.Task)
    labels: list[str] | None = None
    label_values: list[Any] | None = None
    label_aliases: dict[str, str] | None = None
    inputs: dict[str, str] | None = None
    preprocess: list[str] | None = None
    metrics: list[str] | None = None
    main_metric: str | None = None
    truncation: Literal["longest_first", "only_first", "only_second"] | None = None
    stride: int | None = Field(None, ge=0)  # extractive QA: tokens two windows of a long context share (0: one window)
    no_answer: bool | None = None  # extractive QA: an empty answers list means "not in the context" (SQuAD 2.0)
    null_threshold: float | None = None  # with no_answer: "" when the no-answer score beats the best span's by more
    holdout: float | None = Field(None, gt=0, lt=1)  # share of train that becomes validation when the source has none
    sources: dict[str, Any] | None = None
    evaluate_with: str | None = None  # not trained: scored at each evaluation with the head of this task of the run
    split: EvaluationSplit | None = None  # such a task's split (default evaluation.split; a diagnostic set: its test)

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, value: Any) -> Any:
        return {"id": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _needs_id(self) -> TaskEntry:
        if self.id is None and self.define is None:
            raise ValueError("a task entry needs 'id' (a registered task, e.g. rsg:terra) or 'define' (an inline task)")
        return self

    def overrides(self) -> dict[str, Any]:
        """The Task fields this entry changes (for ``Task.replace``)."""
        names = ("max_length", "head", "head_options", "labels", "label_values", "label_aliases", "inputs", "preprocess",
                 "metrics", "main_metric", "truncation", "stride", "no_answer", "null_threshold")
        changes = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        for name in ("labels", "label_values", "preprocess", "metrics"):
            if name in changes:
                changes[name] = tuple(changes[name])
        return changes


class SamplerConfig(Section):
    """Which task each step trains on (mode ``single``) or one batch of every task (mode ``all``); ``stop``
    ends each epoch (:class:`~mtcore.sampling.batch_sampler.MultitaskBatchSampler`'s stop rule)."""

    name: str = "proportional"
    mode: Literal["auto", "single", "all"] = "auto"
    stop: Literal["largest", "smallest"] | Annotated[int, Field(ge=1)] = "largest"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_rule(cls, value: Any) -> Any:
        from mtcore.errors import did_you_mean

        if value is None:  # sampler.stop=null: the default, as for other keys with one
            return "largest"
        if isinstance(value, str) and value not in ("largest", "smallest"):
            raise ValueError(f"{value!r} is not a stop rule{did_you_mean(value, ['largest', 'smallest'])}; "
                             "use largest, smallest or a number of steps per epoch")
        if not isinstance(value, str) and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"expected largest, smallest or a number of steps per epoch >= 1, got {value!r}")
        return value


class LossConfig(Section):
    """How task losses are combined (``single``, ``sum``, ``weighted``, ``uncertainty``, ``rlw``, ``dwa``, ``famo``,
    ``gls``, ``stch``, ``pcgrad``, ``mgda``, ``cagrad``, ``gradnorm``, ``imtl``, ``aligned_mtl``, ``gradvac``, ``nash_mtl``,
    ``db_mtl``, ``moco``, ``excess_mtl``, ``upgrad``, ``fairgrad``; ``mt components loss``)."""

    strategy: str = "single"
    weights: dict[str, float] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    r3f: R3FConfig | None = None  # noise on the input embeddings, a symmetric divergence added (mtcore.train.regularization)


#: An Adam decay rate: torch refuses one outside [0, 1) only when the optimizer is built.
Beta = Annotated[float, Field(ge=0, lt=1)]


class OptimizerConfig(Section):
    """AdamW (fused on CUDA) with separate encoder / head learning rates, optionally decayed by encoder layer."""

    name: Literal["adamw"] = "adamw"
    lr: float = Field(5e-5, gt=0)
    head_lr: float | None = Field(None, gt=0)
    head_lrs: dict[str, PositiveFloat] = Field(default_factory=dict)  # a task's head lr: {rsg:terra: 1.0e-3}, else head_lr
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    gradient_accumulation_steps: int = Field(1, ge=1)
    fused: bool | None = None
    layer_decay: float | None = None  # layer-wise lr decay (LLRD): lr * layer_decay ** (layers above)

    @field_validator("layer_decay")
    @classmethod
    def _decay_in_range(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"expected a number in (0, 1] (e.g. 0.8; 1 or null turns it off), got {value!r}")
        return value


class ScheduleConfig(Section):
    """Length of training and the learning-rate schedule (``transformers.get_scheduler`` names)."""

    name: Literal["linear", "cosine", "constant", "constant_with_warmup", "polynomial", "cosine_with_restarts", "inverse_sqrt"] = "linear"
    epochs: float | None = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    warmup_steps: int | None = Field(None, ge=0)
    warmup_ratio: float | None = Field(None, ge=0, lt=1)

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleConfig:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("give either 'schedule.warmup_steps' or 'schedule.warmup_ratio', not both")
        if self.epochs is None and self.max_steps is None:
            raise ValueError("give 'schedule.epochs' or 'schedule.max_steps'")
        return self


class BatchingConfig(Section):
    """Batch sizes (per device), token budget, length grouping and padding."""

    batch_size: int = Field(16, ge=1)
    eval_batch_size: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=16)
    max_rows: int | None = Field(None, ge=1)
    group_by_length: bool = True
    pad_to_multiple_of: int | None = Field(None, ge=1, le=65536)
    padding_free: bool = False


class EvaluationConfig(Section):
    """Evaluation every N steps and at the end; aggregate = (weighted) mean of main metrics, ``mse`` and such negated."""

    every: int | None = Field(None, ge=1)
    at_end: bool = True
    split: EvaluationSplit = "validation"
    weights: dict[str, NonNegativeFloat] = Field(default_factory=dict)  # all 0: no aggregate (refused in validate)
    early_stopping_patience: int | None = Field(None, ge=1)


class CheckpointConfig(Section):
    """Full-state checkpoints every N steps and at the end; keep the last k and the best. ``best_to_model``:
    at the end, ``model/`` is written from the best checkpoint's weights (by the evaluation aggregate), not the final ones."""

    every: int | None = Field(500, ge=1)
    at_end: bool = True
    keep_last: int = Field(2, ge=1)
    keep_best: bool = True
    best_to_model: bool = False


class LoggingConfig(Section):
    """Log every N steps (the only host syncs of the hot loop); progress display; trackers."""

    every: int = Field(10, ge=1)
    progress: Literal["auto", "rich", "plain", "none"] = "auto"
    trackers: list[Literal["tensorboard", "wandb"]] = Field(default_factory=list)
    project: str = "mtcore"
    plot: bool = True

    @field_validator("trackers", mode="before")
    @classmethod
    def _a_list_of_trackers(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"expected a list, e.g. [{value}] (logging.trackers=[{value}] on the command line)")
        if isinstance(value, list) and len(set(map(str, value))) < len(value):
            raise ValueError(f"{value} names a tracker twice; name each once")
        return value

    @field_validator("project")
    @classmethod
    def _tensorboard_folder_inside_the_run(cls, project: str, info: Any) -> str:
        """TensorBoard writes to ``RUN/<project>/``: not outside the run directory, nor into it (``.``)."""
        from pathlib import PurePosixPath, PureWindowsPath

        if "tensorboard" in (info.data.get("trackers") or []):
            parts = PurePosixPath(project.replace("\\", "/")).parts
            if not parts or ".." in parts or "." in project.split("/") or PurePosixPath(project).is_absolute() \
                    or PureWindowsPath(project).is_absolute():
                raise ValueError(f"{project!r} is not a folder name inside the run directory, where TensorBoard writes "
                                 "(RUN/<logging.project>/); give a plain name, e.g. mtcore")
            first = parts[0]
            if first in RUN_FILES or first.startswith(("tiny-encoder-", ".")):
                raise ValueError(f"{project!r} is where the run writes its own {first}; give TensorBoard another folder "
                                 "name, e.g. mtcore")
        return project


#: What a run writes at the top of its folder (``tiny-encoder-<arch>`` and hidden ``.`` names too): no TensorBoard folder.
RUN_FILES = ("config.yaml", "metrics.jsonl", "checkpoints", "model", "summary.json", "curves.png", "cache", "rank-weights",
             "wandb", "seeds.json", "grid.json")


class DebugConfig(Section):
    """Test hooks: a NaN loss at one step (also ``MT_INJECT_NAN_AT_STEP``), a pause after every step (to interrupt a run
    at a chosen point), every process's final weights in ``<run>/rank-weights/rank<i>-of-<n>.safetensors``."""

    inject_nan_at_step: int | None = Field(None, ge=1)
    step_delay_s: float = Field(0.0, ge=0, le=3600)
    save_rank_weights: bool = False


class CompileConfig(Section):
    """``torch.compile`` of the shared encoder (``compile: true`` is short for ``{enabled: true}``).

    ``dynamic: true`` compiles one graph for every batch length (no recompile per length);
    with ``dynamic: false`` set ``batching.pad_to_multiple_of`` (e.g. 64) to bound the shapes.
    ``regional: true`` (the default) compiles each transformer layer: one graph serves all of
    them, so BERT-base compiles in seconds instead of minutes, and steps run as fast as with the
    whole encoder compiled (docs/benchmarks.md); ``false`` compiles the whole encoder.
    """

    enabled: bool = False
    dynamic: bool | None = True
    mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | None = None
    backend: str = "inductor"
    regional: bool = True


class TrainConfig(Section):
    """The whole training configuration (see the module docstring for every key)."""

    seed: int = Field(42, ge=0, lt=2**32)
    deterministic: bool = False  # deterministic kernels only (mtcore.train.determinism)
    output_dir: str | None = None
    cpu: bool = False
    encoder: EncoderConfig
    tasks: list[TaskEntry] = Field(min_length=1)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    debug: DebugConfig = Field(default_factory=DebugConfig)
    compile: CompileConfig = Field(default_factory=CompileConfig)
    distill: DistillConfig | None = None

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_shorthand(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_list(cls, value: Any) -> Any:
        if isinstance(value, (str, dict)):
            return [value]
        return value
