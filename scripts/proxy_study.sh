#!/usr/bin/env bash
# The measurements behind the proxy's defaults (docs/proxy.md, reports/history.md): scaler
# calibrate (B0..B3, 3 paired seeds) for each data set and proxy base size, with and without
# zero-init, and the learning-rate range test of the standard preset on small and big networks.
# Each variant is one process (--workers 1) with its study in OUT (the same OUT resumes a cut
# run); on a GPU they run side by side, on a CPU one after another.
#
#   scripts/proxy_study.sh OUT [--device cuda|cpu] [--time-limit S] [--seeds N]
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: scripts/proxy_study.sh OUT [--device D] [--time-limit S]" >&2; exit 2; }
mkdir -p "$1"; out=$(cd "$1" && pwd); shift
device=cuda limit=600 seeds=3
while [ $# -gt 0 ]; do
  case $1 in
    --device) device=$2; shift 2 ;;
    --time-limit) limit=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    *) echo "proxy_study.sh: unknown option $1; valid: --device, --time-limit, --seeds" >&2; exit 2 ;;
  esac
done
py=${PYTHON:-python3}
# The fractal set has 3.7x the embedded set's train images: the same number of images seen
# (12 embedded epochs) keeps every variant's training cost equal.
same_images="--images 31200"
variants=(
  "embedded-32 --data embedded --base-pixels 32"
  "embedded-48 --data embedded --base-pixels 48"
  "fractal-32 --data fractal --base-pixels 32 $same_images"
  "fractal-48 --data fractal --base-pixels 48 $same_images"
  "embedded-48-nozero --data embedded --base-pixels 48 --no-zero-init"
  "fractal-48-nozero --data fractal --base-pixels 48 --no-zero-init $same_images"
)
parallel=$([ "$device" = cuda ] && echo 1 || echo 0)
pids=()
for v in "${variants[@]}"; do
  name=${v%% *} args=${v#* }
  # shellcheck disable=SC2086
  cmd=(timeout "$limit" "$py" -m scaler calibrate --device "$device" --threads 1 --seeds "$seeds" \
    --workers 1 --storage "sqlite:///$out/cal-$name.db" --study "cal-$name" \
    --out "$out/cal-$name" $args)
  if [ "$parallel" = 1 ]; then "${cmd[@]}" >"$out/cal-$name.log" 2>&1 & pids+=($!);
  else "${cmd[@]}" >"$out/cal-$name.log" 2>&1; fi
done
for data in embedded fractal; do
  extra="--set base_pixels=48 --set threads=1 --set device=$device"
  [ "$data" = fractal ] && extra="$extra --set images=31200"
  # shellcheck disable=SC2086
  cmd=(timeout "$limit" "$py" "$repo/scripts/lr_range.py" --proxy standard --data "$data" \
    --members b0,b3 --lrs 0.0025,0.005,0.01,0.02 --out "$out/lr-$data.csv" $extra)
  if [ "$parallel" = 1 ]; then "${cmd[@]}" >"$out/lr-$data.log" 2>&1 & pids+=($!);
  else "${cmd[@]}" >"$out/lr-$data.log" 2>&1; fi
done
for p in "${pids[@]}"; do wait "$p"; done
echo "proxy study written to $out"
