#!/usr/bin/env bash
# The check to run the moment a GPU is available: the convnet example and a small
# ResNet-style spec in float32, mixed_float16 and mixed_float16 + XLA, each against the same
# model written by hand in Keras (benchmarks/gpu_check.py), bounded by a timeout. On a
# machine without a GPU it runs the float32 rows on CPU and prints which rows it skipped.
#
#   bash benchmarks/gpu_check.sh [--epochs 3] [--rows N] [--all]
#   GPU_CHECK_TIMEOUT=540 PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "gpu_check: nvidia-smi not found (no NVIDIA GPU driver on this machine)"
fi
exec timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-540}" "$PYTHON" benchmarks/gpu_check.py "$@"
