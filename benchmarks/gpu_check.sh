#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: the device, `pytest -m cuda`, float64 CPU/GPU
# agreement at 100k cells, and float32 seconds per sweep at 1.27M cells on the GPU and the CPU.
# Ends with one summary line "gpu_check: PASS|FAIL ...". Exit 0 pass, 1 fail, 2 no GPU.
# Uses $PYTHON (default: .venv/bin/python when it exists, else python3); extra arguments go to
# benchmarks/gpu_check.py (see its --help); $OUT, when set, receives gpu_check.jsonl.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out=()
[ -n "${OUT:-}" ] && out=(--out "$OUT")
exec "$PYTHON" benchmarks/gpu_check.py "${out[@]}" "$@"
