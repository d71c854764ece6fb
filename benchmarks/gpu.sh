#!/usr/bin/env bash
# One prepared GPU benchmark for a single H100 (about 6-8 minutes: a 90 s engine smoke run, then
# the benchmark capped at 400 s;
# each variant's figures are also written to gpu_bench.err as it finishes): BERT-base from a config
# (random init, nothing downloaded), synthetic token ids with an RSG-like length mix, bf16
# autocast, SDPA, fused AdamW, through mtcore's sampler / collator / model / loop step.
# Variants: length grouping on/off, fixed batch vs token budget, torch.compile on/off (whole
# encoder or layer by layer), float32 or bf16 layer-norm outputs (fp32_residual),
# padding-free (packed) batches with SDPA on re-padded attention or torch's varlen_attn.
# More variants (FlexAttention, CUDA graphs, max-autotune, FlashAttention-4): VARIANTS=a,b,c
# (gpu_bench.py --help lists them; benchmarks/gpu_variants.py defines them). FlashAttention-4 needs
# its own payload and script: benchmarks/device_fa4_payload.sh here, benchmarks/gpu_fa4.sh there.
# Padding-free token budgets count real tokens (64k real tokens per step).
# Reports real tokens/s, MFU (over 989 TFLOPS bf16 dense), host syncs per step, peak memory,
# the host's data time per step, and (--diagnose) the GPU's busy share and kernel time by kind.
#
#   bash benchmarks/gpu.sh     # writes $OUT (or ./gpu-bench-out)/gpu_bench.txt (JSON, then a table) and gpu_bench.err
#   PYTHON=/path/to/python bash benchmarks/gpu.sh
# Needs mtcore installed (its entry points register the samplers and heads); on a bare machine
# with no network: `bash benchmarks/device_wheels.sh` here, carry .whl/, and there
# pip install --no-index --no-deps --target /tmp/site .whl/*.whl;
# PYTHONPATH=/tmp/site PYTHON=python3 bash benchmarks/gpu.sh (how docs/benchmarks.md's run was made).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
OUT_DIR="${OUT:-gpu-bench-out}"
mkdir -p "$OUT_DIR"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
# the engine end to end on the GPU first (mt train: two tasks, bf16, padding-free, fused AdamW; ~30 s)
if "$PYTHON" -c "import accelerate, datasets, tokenizers, mtcore.cli.app" 2>/dev/null; then
    timeout 90 "$PYTHON" -m mtcore.cli.app train benchmarks/gpu_engine_smoke.yaml --output-dir "$OUT_DIR/engine-smoke" \
        > "$OUT_DIR/engine_smoke.txt" 2>&1 && tail -n 2 "$OUT_DIR/engine_smoke.txt" \
        || { echo "engine smoke run failed:"; tail -n 20 "$OUT_DIR/engine_smoke.txt"; }
else
    echo "engine smoke run skipped: mtcore's dependencies (accelerate, datasets, tokenizers) are not all installed here"
fi
# eager variants first (fast), then the compiled ones (compilation happens in the warm-up steps);
# --diagnose profiles 6 extra steps per variant: GPU busy share, kernel time by kind, top kernels
timeout "${BENCH_TIMEOUT:-400}" "$PYTHON" benchmarks/gpu_bench.py --steps "${STEPS:-40}" --warmup "${WARMUP:-15}" --diagnose \
    --variants "${VARIANTS:-eager_random_bs32,packed_random_budget64k_attn_drop0,compiled_packed_random_budget64k_attn_drop0,compiled_packed_random_budget64k_attn_drop0_bf16_residual,regional_packed_random_budget64k_attn_drop0_bf16_residual,regional_packed_random_budget64k_no_dropout_bf16_residual}" \
    > "$OUT_DIR/gpu_bench.txt" 2> "$OUT_DIR/gpu_bench.err"
status=$?  # 1: a variant failed (its row in the table says why); the others' figures are still there
tail -n 20 "$OUT_DIR/gpu_bench.err"
cat "$OUT_DIR/gpu_bench.txt"
[ "$status" -eq 0 ] || { echo "gpu_bench.py exit $status: see the failed rows above and $OUT_DIR/gpu_bench.err"; exit 1; }
