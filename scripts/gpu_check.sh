#!/usr/bin/env bash
# One command for a CUDA machine with PyTorch installed and no network: installs scaler and what
# it needs from a folder of wheels (scripts/gpu_wheels.sh made it on a connected machine)
# without touching the machine's torch, then times the GPU path and writes OUT/summary.json
# (card, driver, torch, per phase: seconds, GPU busy %, peak GPU memory) and one log per phase.
#
#   scripts/gpu_check.sh WHEELS OUT [--time-limit 480] [--workers-per-gpu K] [--dry-run]
#   scripts/gpu_check.sh - OUT --device cpu --tiny     # CI's smoke run: scaler already installed
#   scripts/gpu_check.sh - OUT --dry-run               # the plan only: runs nothing, no GPU
#
# WHEELS "-" skips the install (so does --dry-run). Phases: scaler bench, the default 2x search
# with its confirmation, the Figure 1 sweep (20 points, 2 seeds), scaler calibrate; each gets a
# budget from a stated plan (scripts/gpu_check.py --help: runs counted by scaler, priced at the
# stored H200 rates), and summary.json says per phase finished, cut, failed or skipped, with the
# runs it finished and the estimate beside the time it took (a cut study resumes).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  echo "usage: scripts/gpu_check.sh WHEELS|- OUT [--device cuda|cpu] [--tiny] [--time-limit S]" \
    "[--workers-per-gpu K] [--phases P,...] [--dry-run]" >&2
  exit 2
fi
wheels=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
python=${PYTHON:-python3}
dry_run=0
for arg in "$@"; do
  if [ "$arg" = --dry-run ]; then dry_run=1; fi
done
if [ "$dry_run" = 1 ]; then
  # The plan of this checkout, whatever scaler is installed; nothing is installed or run.
  export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$wheels" != "-" ] && [ "$dry_run" = 0 ]; then
  # shellcheck source=scripts/gpu_install.sh
  . "$repo/scripts/gpu_install.sh"
fi
cd "$out"
exec "$python" "$repo/scripts/gpu_check.py" "$out" "$@"
