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
  if [ ! -d "$wheels" ]; then
    echo "gpu_check.sh: wheels folder $wheels does not exist; make it with scripts/gpu_wheels.sh" >&2
    exit 2
  fi
  # Pin the torch that is there, so that pip can neither replace nor "upgrade" it.
  "$python" -c 'import torch; print("torch==" + torch.__version__)' >"$out/constraints.txt"
  "$python" -m pip install -q --no-index --find-links "$wheels" -c "$out/constraints.txt" \
    --no-build-isolation "$repo" >"$out/install.log" 2>&1 || {
    # pip's resolver refused (the machine's own packages can pin things the folder cannot
    # meet): put each missing module's wheel, and nothing else, on a path of its own, and run
    # scaler from the checkout. The machine's packages, torch first, stay as they are.
    site="$out/site"
    for pair in optuna:optuna alembic:alembic colorlog:colorlog mako:mako sqlalchemy:sqlalchemy \
      fvcore:fvcore iopath:iopath yacs:yacs termcolor:termcolor tqdm:tqdm yaml:pyyaml \
      typing_extensions:typing_extensions packaging:packaging markupsafe:markupsafe \
      scipy:scipy statsmodels:statsmodels patsy:patsy; do
      module=${pair%%:*} dist=${pair#*:}
      "$python" -c "import $module" 2>/dev/null && continue
      for w in "$wheels"/"$dist"-*.whl; do
        [ -e "$w" ] && "$python" -m pip install -q --no-index --no-deps --target "$site" "$w" \
          >>"$out/install.log" 2>&1
      done
    done
    export PYTHONPATH="$repo:$site${PYTHONPATH:+:$PYTHONPATH}"
  }
  "$python" -c "import scaler, optuna, fvcore, scipy, statsmodels" || {
    echo "gpu_check.sh: scaler, optuna, fvcore, scipy or statsmodels does not import; see $out/install.log" >&2
    exit 1
  }
fi
cd "$out"
exec "$python" "$repo/scripts/gpu_check.py" "$out" "$@"
