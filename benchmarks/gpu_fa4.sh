#!/usr/bin/env bash
# FlashAttention-4 against torch's FlashAttention-2 on one Hopper/Blackwell GPU, and BERT pre-training's shapes, in one
# device call of about 8 minutes: unpacks .fa4/site.tar.xz (made here by benchmarks/device_fa4_payload.sh: transformers,
# flash-attn-4 and its CuTe DSL runtime; mtcore itself is this checkout's) into /tmp/site, then, most telling first:
#   1. benchmarks/gpu_bench.py --mix seq512 (every row 512 tokens, BERT pre-training's phase 2, where attention kernels
#      work on full tiles): the fastest padding-free setting (regional compilation, 64k-token budgets, bf16 residual,
#      dropout 0) with torch's kernels and with FA4, then padded batches (length-grouped, dropout 0) without and with FA4;
#   2. gpu_bench.py on the RSG-like fine-tuning mix (runs 1-7's data): the fastest setting without and with FA4;
#   3. benchmarks/attention_kernels.py: FA2 vs FA4 varlen forward and forward+backward on one 64k-token packed batch of
#      BERT-base shapes (ms, TFLOPS, largest differences), on both mixes.
# If flash_attn.cute does not import there, the FA4 variants are left out and the rest still runs.
# Needs torch >= 2.11 built for CUDA 13 (torch.nn.attention's FA4 registry) on the machine.
#
#   bash benchmarks/device_fa4_payload.sh        # here: -> .fa4/site.tar.xz (~60 MB)
#   # device call, carry [".fa4"], timeout_s ~540:  bash benchmarks/gpu_fa4.sh
# Writes $OUT (or ./gpu-fa4-out)/{seq512,gpu_bench,attention,attention512}.{txt,err}; each gpu_bench variant's JSON is
# also written to its .err file as it finishes, so a time cap loses nothing done.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT_DIR="${OUT:-gpu-fa4-out}"
SITE="${SITE:-/tmp/site}"
mkdir -p "$OUT_DIR" "$SITE"
test -f .fa4/site.tar.xz || { echo ".fa4/site.tar.xz is missing: run benchmarks/device_fa4_payload.sh and carry .fa4"; exit 2; }
"$PYTHON" -c "import sys, tarfile; tarfile.open('.fa4/site.tar.xz', 'r:xz').extractall(sys.argv[1], filter='tar')" "$SITE" || exit 3
# this checkout's mtcore first; nvidia-cutlass-dsl puts its packages on sys.path from a .pth file, which PYTHONPATH
# entries do not run
export PYTHONPATH="$PWD:$SITE:$SITE/nvidia_cutlass_dsl/dsl_packages" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
FA4=_fa4
"$PYTHON" -c "import torch, flash_attn.cute; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    || { echo "flash_attn.cute does not import here (see above): FA4 variants left out"; FA4=; }
P=regional_packed_random_budget64k
D=regional_grouped_budget64k
LONG_VARIANTS="${P}_no_dropout_bf16_residual${FA4:+,${P}_no_dropout_bf16_residual_fa4},${D}_no_dropout_bf16_residual${FA4:+,${D}_no_dropout_bf16_residual_fa4}"
timeout "${LONG_TIMEOUT:-160}" "$PYTHON" benchmarks/gpu_bench.py --mix seq512 --steps "${LONG_STEPS:-20}" --warmup 8 --diagnose \
    --variants "${LONG_VARIANTS}" > "$OUT_DIR/seq512.txt" 2> "$OUT_DIR/seq512.err"
echo "gpu_bench.py --mix seq512 exit $?"
grep -v '^  {' "$OUT_DIR/seq512.err" | tail -n 8
tail -n 6 "$OUT_DIR/seq512.txt"
timeout "${BENCH_TIMEOUT:-120}" "$PYTHON" benchmarks/gpu_bench.py --steps "${STEPS:-30}" --warmup "${WARMUP:-12}" --diagnose \
    --variants "${VARIANTS:-${P}_no_dropout_bf16_residual,${P}_no_dropout_bf16_residual_fa4}" \
    > "$OUT_DIR/gpu_bench.txt" 2> "$OUT_DIR/gpu_bench.err"
echo "gpu_bench.py exit $?"
grep -v '^  {' "$OUT_DIR/gpu_bench.err" | tail -n 8
tail -n 4 "$OUT_DIR/gpu_bench.txt"
if [ -n "$FA4" ]; then
    timeout "${ATTENTION_TIMEOUT:-35}" "$PYTHON" benchmarks/attention_kernels.py --impl FA4 --mix seq512 \
        > "$OUT_DIR/attention512.txt" 2> "$OUT_DIR/attention512.err"
    echo "attention_kernels.py --mix seq512 exit $?"; tail -n 4 "$OUT_DIR/attention512.txt"
    timeout "${ATTENTION_TIMEOUT:-35}" "$PYTHON" benchmarks/attention_kernels.py --impl FA4 \
        > "$OUT_DIR/attention.txt" 2> "$OUT_DIR/attention.err"
    echo "attention_kernels.py exit $?"; tail -n 8 "$OUT_DIR/attention.err"; tail -n 4 "$OUT_DIR/attention.txt"
fi
