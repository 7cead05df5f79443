#!/usr/bin/env bash
# A 2× latency-budget search, each latency timed in 5 new processes, and its check, twice, each in new processes.
set -u
db="sqlite:///$PWD/studies.db"
t() { local name=$1 rc=0; shift; local t0=$(date +%s); "$@" >"$name.log" 2>&1 || rc=$?; echo "$name: $(( $(date +%s) - t0 )) s, exit $rc" >>times.txt; }
lscpu | grep -E "Model name|^CPU\(s\)" >machine.txt
python -c 'import torch; print("torch", torch.__version__)' >>machine.txt
t search scaler search --budget 2x --constraint latency --latency batch1 --proxy quick --trials 8 --no-confirm --study latency-2x --storage "$db"
t check-1 scaler latency latency-2x --storage "$db" --out check-1.csv
t check-2 scaler latency latency-2x --storage "$db" --out check-2.csv
t report scaler report latency-2x --storage "$db" --out report
