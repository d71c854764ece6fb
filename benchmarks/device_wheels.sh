#!/usr/bin/env bash
# Wheels that let benchmarks/gpu.sh run on a GPU machine with no network: mtcore itself (its
# entry points register the samplers and heads) and the packages such a machine lacked when
# docs/benchmarks.md's H100 figures were made (it had torch, numpy and tokenizers; transformers
# and pydantic were missing). Run it here, then carry the folder to the device:
#
#   bash benchmarks/device_wheels.sh            # -> .whl/ (keep it out of git: .git/info/exclude)
#   # on the device (carry [".whl"]):
#   python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/site .whl/*.whl \
#       && PYTHONPATH=/tmp/site PYTHON=python3 bash benchmarks/gpu.sh
#
# PY_VERSION (default 3.12) and PLATFORM (default manylinux2014_x86_64) pick the device's wheels.
# The engine smoke step of gpu.sh also needs accelerate and datasets (pyarrow, pandas: too big to
# carry under the 64 MiB limit); without them gpu.sh skips that step and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.whl}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$DEST"
"$PYTHON" -m pip wheel -q --no-deps -w "$DEST" .
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$DEST" -c constraints.txt \
    --python-version "${PY_VERSION:-3.12}" --platform "${PLATFORM:-manylinux2014_x86_64}" \
    transformers pydantic pydantic_core annotated_types typing_inspection typing_extensions
rm -rf build mtcore.egg-info/SOURCES.txt.tmp 2>/dev/null || true
du -sh "$DEST"
ls "$DEST"
