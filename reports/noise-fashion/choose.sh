set -u
for lr in 0.005 0.02 0.05; do
  t0=$(date +%s)
  scaler noise --networks b0,d=1:w=1.2:px=56 --seed 300 --data imagefolder:FM --lr $lr --methods --out reports/noise-fashion/choose-lr$lr > reports/noise-fashion/choose-lr$lr.log 2>&1
  echo "lr $lr rc=$? $(( $(date +%s) - t0 )) s" >> reports/noise-fashion/choose.times
done
