# The second judgement (plan-time.md): seeds 500..505, never used before, lr 0.005.
set -u
t0=$(date +%s)
scaler noise --networks b0,d=1:w=1.2:px=56 --seed 500 --data fashion --lr 0.005 --methods --out reports/noise-fashion/judge2-lr0.005 > reports/noise-fashion/judge2-lr0.005.log 2>&1
echo "lr 0.005 rc=$? $(( $(date +%s) - t0 )) s" > reports/noise-fashion/judge2.times
