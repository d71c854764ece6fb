#!/usr/bin/env bash
# One archive that lets benchmarks/gpu_fa4.sh run FlashAttention-4 on a GPU machine with no
# network, in a single device call: mtcore and the wheels benchmarks/device_wheels.sh fetches,
# plus flash-attn-4 and its CuTe DSL runtime (nvidia-cutlass-dsl with its CUDA 13 libraries,
# apache-tvm-ffi, quack-kernels), unpacked into one site folder and compressed with xz -9e and a
# 256 MiB window. The wheels come to ~90 MB zipped (a 92 MB CUDA 13 DSL wheel alone), over the
# device tool's 64 MiB carry limit (working tree included); the unpacked, xz-compressed folder is
# 61 MiB. It needs a machine whose torch has torch.nn.attention's FA4 registry (torch 2.11 or
# later, CUDA 13 build) and a Hopper or Blackwell GPU.
#
#   bash benchmarks/device_fa4_payload.sh      # -> .fa4/site.tar.xz (keep .fa4/ out of git)
#   # on the device (carry [".fa4"]): bash benchmarks/gpu_fa4.sh
#
# Takes ~5 minutes on 2 cores (the compression). PY_VERSION (default 3.12) picks the device's wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.fa4}"
PYTHON="${PYTHON:-python3}"
PY="${PY_VERSION:-3.12}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bash benchmarks/device_wheels.sh "$work/wheels" > /dev/null
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$work/wheels" \
    --python-version "$PY" --platform manylinux_2_28_x86_64 \
    flash-attn-4==4.0.0b36 nvidia-cutlass-dsl==4.8.1 nvidia-cutlass-dsl-libs-base==4.8.1 \
    nvidia-cutlass-dsl-libs-core==4.8.1 nvidia-cutlass-dsl-libs-cu13==4.8.1 \
    apache-tvm-ffi==0.1.15.post2 torch-c-dlpack-ext==0.1.5 quack-kernels==0.6.5
mkdir -p "$work/site"
for wheel in "$work"/wheels/*.whl; do   # a wheel is a zip of its installed files
    "$PYTHON" -m zipfile -e "$wheel" "$work/site"
done
# what no import needs, to stay under the carry limit: a library's sources and headers for building it, install records,
# mtcore's code (gpu_fa4.sh runs the checkout's; its dist-info stays for the entry points). tvm_ffi.core loads
# libtvm_ffi_testing.so: it stays.
rm -rf "$work/site/tvm_ffi/3rdparty/libbacktrace" "$work/site/tvm_ffi/include" "$work/site/tvm_ffi/src" \
    "$work/site/tvm_ffi/cython" "$work/site/mtcore" "$work"/site/*.dist-info/RECORD
mkdir -p "$DEST"
tar -C "$work/site" -cf - . | xz -9e -T2 --lzma2=preset=9e,dict=256MiB > "$DEST/site.tar.xz.tmp"
mv "$DEST/site.tar.xz.tmp" "$DEST/site.tar.xz"
ls -l "$DEST/site.tar.xz"
