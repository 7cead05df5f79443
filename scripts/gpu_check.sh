#!/usr/bin/env bash
# One command for a CUDA machine with PyTorch installed and no network: installs scaler and what
# it needs from a folder of wheels (scripts/gpu_wheels.sh made it on a connected machine)
# without touching the machine's torch, then times the GPU path and writes OUT/summary.json
# (card, driver, torch, per phase: seconds, GPU busy %, peak GPU memory) and one log per phase.
#
#   scripts/gpu_check.sh WHEELS OUT [--time-limit 480] [--workers-per-gpu K]
#   scripts/gpu_check.sh - OUT --device cpu --tiny     # CI's smoke run: scaler already installed
#
# WHEELS "-" skips the install. Phases: scaler bench, the default 2x search, scaler calibrate,
# the Figure 1 sweep (20 points, 2 seeds); each gets a share of what is left of the time limit,
# and a phase cut short is recorded as "timed out" (its study resumes where it stopped).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  echo "usage: scripts/gpu_check.sh WHEELS|- OUT [--device cuda|cpu] [--tiny] [--time-limit S]" >&2
  exit 2
fi
wheels=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
python=${PYTHON:-python3}
if [ "$wheels" != "-" ]; then
  if [ ! -d "$wheels" ]; then
    echo "gpu_check.sh: wheels folder $wheels does not exist; make it with scripts/gpu_wheels.sh" >&2
    exit 2
  fi
  # Pin the torch that is there, so that pip can neither replace nor "upgrade" it.
  "$python" -c 'import torch; print("torch==" + torch.__version__)' >"$out/constraints.txt"
  "$python" -m pip install -q --no-index --find-links "$wheels" -c "$out/constraints.txt" \
    --no-build-isolation "$repo" >"$out/install.log" 2>&1 || {
    # No setuptools to build the checkout with: the dependencies from the folder, scaler from
    # the checkout itself.
    "$python" -m pip install -q --no-index --find-links "$wheels" -c "$out/constraints.txt" \
      optuna fvcore >>"$out/install.log" 2>&1
    export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
  }
fi
cd "$out"
exec "$python" "$repo/scripts/gpu_check.py" "$out" "$@"
