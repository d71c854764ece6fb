#!/usr/bin/env bash
# Create ./.venv (once) and install mtcore, the three task plugins and the test tools into it,
# pinned by constraints.txt (torch==2.13.0: the CPU wheel on the project machines).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
  -e ".[dev]" \
  -e plugins/mt-russian-superglue \
  -e plugins/mt-nli \
  -e plugins/mt-sentiment
