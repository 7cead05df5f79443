#!/usr/bin/env bash
# --constraint latency on a CUDA machine, and its check: installs scaler as scripts/gpu_check.sh
# does (WHEELS "-": already installed), then for each mode in $MODES (default "batch1 batch64"):
#
#   scaler search --budget 2x --constraint latency --latency MODE --device $DEVICE ...
#                                              -> OUT/search-MODE.log (γ solved by time)
#   scaler latency lat-MODE --out ...          -> OUT/check-MODE.csv / .json: every trained
#                                                 candidate timed again in this new process,
#                                                 against ±10 % of the budget (exit 1: a miss)
#   scaler family ... --measure-latency MODE   -> OUT/family-MODE.json (B0's φ = 0..3)
#
# and OUT/machine.txt (card, driver, torch, Python, cores), OUT/times.txt (each step's wall
# seconds), OUT/studies.db. Extra options go to every search (default: --proxy quick
# --trials 3 --no-confirm: the target is the latency, not the accuracy).
#
#   scripts/gpu_latency.sh WHEELS|- OUT [search options ...]
#   DEVICE=cpu MODES=batch1 scripts/gpu_latency.sh - OUT --cost-pixels 64   (a CPU dry run)
# FAMILY=0 skips the family; STEP_LIMIT (default 240) caps each step's seconds.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  echo "usage: scripts/gpu_latency.sh WHEELS|- OUT [search options ...]" >&2
  exit 2
fi
wheels=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
extra=("$@")
[ ${#extra[@]} -eq 0 ] && extra=(--proxy quick --trials 3 --no-confirm)
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
step_limit=${STEP_LIMIT:-240}
# shellcheck source=scripts/gpu_setup.sh
. "$repo/scripts/gpu_setup.sh"
db="sqlite:///$out/studies.db"
: >times.txt
step() { # NAME COMMAND...: run with a time limit, log, note the seconds and the exit code
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s)
  timeout "$step_limit" "$@" >"$name.log" 2>&1 || rc=$?
  echo "$name: $(($(date +%s) - t0)) s, exit $rc" >>times.txt
}
for mode in ${MODES:-batch1 batch64}; do
  step "search-$mode" "$python" -m scaler search --budget 2x --device "$device" \
    --constraint latency --latency "$mode" --study "lat-$mode" --storage "$db" "${extra[@]}"
  step "check-$mode" "$python" -m scaler latency "lat-$mode" --storage "$db" \
    --out "check-$mode.csv" --json
  [ "${FAMILY:-1}" = 0 ] && continue
  step "family-$mode" "$python" -m scaler family --alpha 1.2 --beta 1.1 --gamma 1.15 \
    --phi-max 3 --measure-latency "$mode" --device "$device" --json
done
rm -rf "$out/site" # the wheels' files: not results
cat times.txt
