#!/usr/bin/env bash
# The default search's time on a CUDA machine, the plan's estimate against the clock. Installs
# scaler as scripts/gpu_check.sh does (WHEELS "-": already installed), then with a fresh cache
# (so that the plan measures this machine: B0 alone, then in K processes at once) runs
#
#   scaler search --budget 2x --device cuda --dry-run   -> OUT/plan.log
#   scaler search --budget 2x --device cuda --time T    -> OUT/search.log (its own plan again,
#                                                          racing, the time taken beside it)
#   scaler report STUDY                                 -> OUT/report/
#
# and OUT/machine.txt (card, driver, torch, Python, cores), OUT/times.txt (each command's wall
# seconds), OUT/gpu.csv (the card's use during the search), OUT/studies.db. Extra options go
# to both searches.
#
#   scripts/gpu_search_time.sh WHEELS|- OUT [--time 6m] [search options ...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  echo "usage: scripts/gpu_search_time.sh WHEELS|- OUT [search options ...]" >&2
  exit 2
fi
wheels=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
python=${PYTHON:-python3}
# shellcheck source=scripts/gpu_setup.sh
. "$repo/scripts/gpu_setup.sh"
args=(search --budget 2x --device cuda --storage "sqlite:///$out/studies.db" "$@")
t0=$(date +%s)
"$python" -m scaler "${args[@]}" --dry-run >plan.log 2>&1 || echo "dry run: exit $?" >>plan.log
t1=$(date +%s)
# The card's use during the search, every 0.5 s (GPU busy %, memory): gpu.csv.
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 \
  >gpu.csv 2>/dev/null &
smi=$!
"$python" -m scaler "${args[@]}" >search.log 2>&1 || echo "search: exit $?" >>search.log
t2=$(date +%s)
kill "$smi" 2>/dev/null || true
echo "dry run (measures this machine first): $((t1 - t0)) s; search: $((t2 - t1)) s" >times.txt
study=$(grep -o "^study [^ ]*" search.log | tail -1 | cut -d' ' -f2)
if [ -n "$study" ]; then
  "$python" -m scaler report "$study" --storage "sqlite:///$out/studies.db" --out report \
    >report.log 2>&1 || echo "report: exit $?" >>report.log
fi
cat times.txt
