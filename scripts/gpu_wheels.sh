#!/usr/bin/env bash
# Run on a machine with network access, before going to a GPU machine that has none: downloads
# into DIR the wheels of everything scaler needs besides torch, for CPython 3.10-3.12 on x86_64
# Linux, plus a wheel of scaler itself. scripts/gpu_check.sh installs from DIR with --no-index.
#
#   scripts/gpu_wheels.sh DIR [--python 3.12] [--only-missing]
#
# --python V      one Python version instead of 3.10, 3.11 and 3.12 (smaller folder)
# --only-missing  skip what GPU images usually ship (numpy, pandas, matplotlib, typer, rich,
#                 pillow, pyyaml, scikit-image, tqdm, tabulate, portalocker): optuna, fvcore,
#                 scipy, statsmodels and their own dependencies only
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/gpu_wheels.sh DIR [--python 3.X] [--only-missing]" >&2; exit 2; }
[ $# -ge 1 ] || usage
dir=$1; shift
versions="3.10 3.11 3.12"
only_missing=0
while [ $# -gt 0 ]; do
  case $1 in
    --python) [ $# -ge 2 ] || usage; versions=$2; shift 2 ;;
    --only-missing) only_missing=1; shift ;;
    *) echo "gpu_wheels.sh: unknown option $1; valid: --python V, --only-missing" >&2; exit 2 ;;
  esac
done
mkdir -p "$dir"

# fvcore and iopath publish source archives only: build them once as pure-Python wheels.
python3 -m pip wheel -q --no-deps -w "$dir" fvcore iopath
# scaler itself, from this checkout.
python3 -m pip wheel -q --no-deps -w "$dir" .

# The other dependencies, resolved for each target Python. fvcore's and iopath's needs are
# named here because pip cannot resolve a source archive for another platform.
needs="optuna>=4.0,<6 yacs termcolor typing_extensions"
# scipy and statsmodels (scaler.stats) are rarely in a GPU image beside torch: always fetched,
# without the numpy and pandas they would pull in (the image has those), to stay small.
stats="scipy>=1.10 statsmodels>=0.14 patsy formulaic interface_meta narwhals wrapt"
if [ "$only_missing" = 0 ]; then
  needs="$needs pandas>=2.0 matplotlib>=3.7 typer>=0.12 rich>=13 numpy>=1.24 pillow>=10"
  needs="$needs pyyaml>=6 scikit-image>=0.21 tqdm tabulate portalocker psycopg[binary]>=3.1"
fi
for v in $versions; do
  # shellcheck disable=SC2086
  python3 -m pip download -q --only-binary=:all: --implementation cp --python-version "$v" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$dir" $needs
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --implementation cp --python-version \
    "$v" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$dir" $stats
done
# Never torch: the GPU machine's own CUDA build must stay.
rm -f "$dir"/torch-* "$dir"/nvidia_* "$dir"/triton-*
# optuna pulls numpy in; the image has it (torch and pandas need it), and the folder must stay
# under the 64 MiB a device call carries.
[ "$only_missing" = 0 ] || rm -f "$dir"/numpy-*
echo "wheels in $dir: $(find "$dir" -name '*.whl' | wc -l) files, $(du -sh "$dir" | cut -f1)"
