#!/usr/bin/env bash
# reports/latency-2x: a latency-budget search and its check on this CPU, beside a FLOPs-budget one.
set -u
db="sqlite:///$PWD/studies.db"
t() { local name=$1 rc=0; shift; local t0=$(date +%s); "$@" >"$name.log" 2>&1 || rc=$?; echo "$name: $(( $(date +%s) - t0 )) s, exit $rc" >>times.txt; }
lscpu | grep -E "Model name|^CPU\(s\)" >machine.txt
python -c 'import torch; print("torch", torch.__version__)' >>machine.txt
t search-latency scaler search --budget 2x --constraint latency --latency batch1 --proxy quick --trials 8 --no-confirm --study latency-2x --storage "$db"
t check-latency scaler latency latency-2x --storage "$db" --out check-latency.csv
t search-flops scaler search --budget 2x --latency batch1 --proxy quick --trials 8 --no-confirm --study flops-2x --storage "$db"
t check-flops scaler latency flops-2x --storage "$db" --out check-flops.csv
t family scaler family --alpha 1.2 --beta 1.1 --gamma 1.15 --phi-max 3 --measure-latency batch1 --device cpu --json
t report scaler report latency-2x flops-2x --storage "$db" --out report
