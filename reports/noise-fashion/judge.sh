set -u
for lr in 0.005 0.02 0.05; do
  t0=$(date +%s)
  scaler noise --networks b0,d=1:w=1.2:px=56 --seed 400 --data fashion --lr $lr --methods --out reports/noise-fashion/judge-lr$lr > reports/noise-fashion/judge-lr$lr.log 2>&1
  echo "lr $lr rc=$? $(( $(date +%s) - t0 )) s" >> reports/noise-fashion/judge.times
done
