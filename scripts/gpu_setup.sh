# Sourced by scripts/gpu_search_time.sh and scripts/gpu_latency.sh: installs scaler unless
# $wheels is "-" (scripts/gpu_install.sh), gives the run a fresh throughput cache in $out, moves
# there, and writes $out/machine.txt (card, driver, torch, Python, cores, CPU).
# Needs $repo, $wheels, $out and $python.
if [ "$wheels" != "-" ]; then
  # shellcheck source=scripts/gpu_install.sh
  . "$repo/scripts/gpu_install.sh"
fi
export SCALER_CACHE="$out/cache"
cd "$out"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  "$python" -c 'import sys, torch; print("torch", torch.__version__, "python", sys.version.split()[0])'
  echo "cores $(nproc)"
  lscpu | grep -E "Model name" || true
} >machine.txt 2>&1
