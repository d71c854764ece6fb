"""The variants ``benchmarks/gpu_bench.py`` runs (one :class:`Variant` per name) and its length mix.

Kept apart from the benchmark's code so the table reads at a glance; ``gpu_bench.py --help`` lists
the names, ``benchmarks/gpu.sh`` and ``benchmarks/gpu_fa4.sh`` pick from them.
"""

from __future__ import annotations

from typing import NamedTuple


class Variant(NamedTuple):
    group_by_length: bool
    batch_size: int | None  # rows per batch, or None with a token budget
    token_budget: int | None  # padded slots; real tokens when packed
    compile: bool
    packed: bool  # padding-free batches
    attention_dropout: float = 0.1
    hidden_dropout: float = 0.1
    compile_mode: str | None = None  # torch.compile mode (None: the default)
    packed_attention: str = "varlen"  # padding-free attention: varlen_attn, or FlexAttention ("flex", compiled only)
    fp32_residual: bool = True  # False: layer norms keep bf16 outputs (MultitaskModel(fp32_residual=False))
    regional: bool = False  # compile each transformer layer instead of the whole encoder
    flash_attention: str | None = None  # torch's flash kernels replaced by "FA4"/"FA3" (MultitaskModel(flash_attention=))


#: random rows, 64k real tokens per padding-free batch, compiled, no attention dropout (varlen_attn's condition)
PACKED64K = {"group_by_length": False, "batch_size": None, "token_budget": 65536, "compile": True, "packed": True,
             "attention_dropout": 0.0}
VARIANTS: dict[str, Variant] = {name: Variant(**spec) if isinstance(spec, dict) else Variant(*spec) for name, spec in {
    "eager_random_bs32": (False, 32, None, False, False, 0.1),
    "eager_grouped_bs32": (True, 32, None, False, False, 0.1),
    "eager_grouped_budget": (True, None, 16384, False, False, 0.1),
    "packed_random_bs32": (False, 32, None, False, True, 0.1),
    "packed_random_bs32_attn_drop0": (False, 32, None, False, True, 0.0),
    "packed_grouped_budget_attn_drop0": (True, None, 16384, False, True, 0.0),
    "compiled_grouped_bs32": (True, 32, None, True, False, 0.1),
    "compiled_grouped_budget": (True, None, 16384, True, False, 0.1),
    "compiled_packed_budget_attn_drop0": (True, None, 16384, True, True, 0.0),
    "eager_grouped_budget64k": (True, None, 65536, False, False, 0.1),
    "packed_grouped_budget64k_attn_drop0": (True, None, 65536, False, True, 0.0),
    "compiled_grouped_budget64k": (True, None, 65536, True, False, 0.1),
    "compiled_packed_budget64k_attn_drop0": (True, None, 65536, True, True, 0.0),
    # packed batches need no length grouping: random rows, 64k real tokens per batch
    "packed_random_budget64k_attn_drop0": (False, None, 65536, False, True, 0.0),
    "compiled_packed_random_budget64k_attn_drop0": (False, None, 65536, True, True, 0.0),
    # what dropout costs (masks generated and kept for backward), and Inductor's autotuned kernels
    # (GEMM templates with fused epilogues; compiling takes minutes: not in gpu.sh's default list)
    "compiled_packed_random_budget64k_no_dropout": (False, None, 65536, True, True, 0.0, 0.0),
    "autotuned_packed_random_budget64k_attn_drop0": (False, None, 65536, True, True, 0.0, 0.1, "max-autotune-no-cudagraphs"),
    # fixed 32-row batches are launch-bound: CUDA graphs replay a step's kernels in one launch
    # (lengths padded to a multiple of 64, so a few shapes get recorded)
    "cudagraphs_grouped_bs32_pad64": (True, 32, None, True, False, 0.1, 0.1, "reduce-overhead"),
    # FlexAttention with a block-diagonal mask over the packed row: short sequences share 128-token
    # tiles instead of each getting its own (mostly empty) thread blocks in varlen_attn
    "compiled_flex_packed_random_budget64k_attn_drop0": (False, None, 65536, True, True, 0.0, 0.1, None, "flex"),
    "compiled_flex_packed_random_budget64k_no_dropout": (False, None, 65536, True, True, 0.0, 0.0, None, "flex"),
    "compiled_flex_packed_grouped_budget64k_attn_drop0": (True, None, 65536, True, True, 0.0, 0.1, None, "flex"),
    # layer norms with bf16 outputs: a bf16 residual stream, half the bytes in the element-wise kernels
    "compiled_packed_random_budget64k_attn_drop0_bf16_residual": {**PACKED64K, "fp32_residual": False},
    # regional compilation (each layer, one graph for all): seconds of compiling instead of minutes
    "regional_packed_random_budget64k_attn_drop0": {**PACKED64K, "regional": True},
    "regional_packed_random_budget64k_attn_drop0_bf16_residual": {**PACKED64K, "fp32_residual": False, "regional": True},
    "regional_packed_random_budget64k_no_dropout_bf16_residual": {**PACKED64K, "hidden_dropout": 0.0, "fp32_residual": False,
                                                                  "regional": True},
    # BERT's own attention dropout (0.1): varlen_attn has none, so attention is SDPA on re-padded rows
    "regional_packed_random_budget64k_bf16_residual": {**PACKED64K, "attention_dropout": 0.1, "fp32_residual": False, "regional": True},
    # Inductor's autotuned GEMM templates (fused epilogues) on the fastest regional setting
    "autotuned_regional_packed_random_budget64k_no_dropout_bf16_residual": {
        **PACKED64K, "hidden_dropout": 0.0, "fp32_residual": False, "regional": True, "compile_mode": "max-autotune-no-cudagraphs"},
    # FlashAttention-4's Hopper kernels instead of torch's FlashAttention-2 (pip install flash-attn-4; process-wide,
    # restored after the variant)
    "regional_packed_random_budget64k_attn_drop0_bf16_residual_fa4": {**PACKED64K, "fp32_residual": False, "regional": True,
                                                                      "flash_attention": "FA4"},
    "regional_packed_random_budget64k_no_dropout_bf16_residual_fa4": {**PACKED64K, "hidden_dropout": 0.0, "fp32_residual": False,
                                                                      "regional": True, "flash_attention": "FA4"},
    # padded batches (SDPA, no varlen): for --mix seq512, where every row is full length and padding-free gains nothing,
    # and SDPA's dense FlashAttention kernel also takes BERT's attention dropout
    "regional_grouped_budget64k_no_dropout_bf16_residual": {**PACKED64K, "group_by_length": True, "packed": False,
                                                            "hidden_dropout": 0.0, "fp32_residual": False, "regional": True},
    "regional_grouped_budget64k_no_dropout_bf16_residual_fa4": {**PACKED64K, "group_by_length": True, "packed": False,
                                                                "hidden_dropout": 0.0, "fp32_residual": False, "regional": True,
                                                                "flash_attention": "FA4"},
    "regional_grouped_budget64k_bf16_residual": {**PACKED64K, "group_by_length": True, "packed": False, "attention_dropout": 0.1,
                                                 "fp32_residual": False, "regional": True},
}.items()}
# task -> (shortest, longest, rows): an RSG-like mix (token counts after tokenization)
MIX = {"danetqa": (100, 400, 3000), "terra": (30, 120, 3000), "parus": (10, 30, 3000)}
#: ``--mix`` choices. "rsg" (the default, every recorded run before run 8) is fine-tuning data: most rows are short, so
#: attention kernels spend their time on nearly empty tiles. "seq128" / "seq512" are BERT pre-training's two phases
#: (every row full length, MLPerf BERT's setting): the same model on the shapes its kernels are written for.
MIXES: dict[str, dict[str, tuple[int, int, int]]] = {
    "rsg": MIX,
    "seq128": {"a": (128, 128, 3000), "b": (128, 128, 3000), "c": (128, 128, 3000)},
    "seq512": {"a": (512, 512, 3000), "b": (512, 512, 3000), "c": (512, 512, 3000)},
}
