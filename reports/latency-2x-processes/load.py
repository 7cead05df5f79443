"""Run once: python reports/latency-2x-processes/load.py

Is a batch-1 latency ratio on 2 cores sensitive to light background load, and does
1 thread or the min estimator make it stable?"""

import subprocess
import sys

import scaler.latency as L
from scaler.latency import LatencySettings, compare
from scaler.spec import scale

C = {"c4": (1.0, 1.2, 321), "c2": (1.0, 1.0, 371)}
base = scale(base_pixels=224)
pairs_seen = {}
orig = L._result


def spy(pairs, *a, **k):
    pairs_seen["p"] = list(pairs)
    return orig(pairs, *a, **k)


L._result = spy


def at(name, threads=None, tag=""):
    a, b, px = C[name]
    # processes=1: this script measures within one process (scaler 0.7 before the pool)
    s = LatencySettings(mode="batch1", device="cpu", num_classes=10, threads=threads, processes=1)
    lat = compare(scale(a, b, base_pixels=224, pixels=px), base, s)
    p = pairs_seen["p"]
    rmin = min(x[1] for x in p) / min(x[0] for x in p)
    print(
        f"{tag:10s} {name} thr={threads} median-ratio {lat.ratio:.3f} "
        f"[{lat.low:.3f},{lat.high:.3f}] min-ratio {rmin:.3f} pairs {lat.pairs} "
        f"cand {lat.seconds * 1e3:.1f} base {lat.base_seconds * 1e3:.1f} ms",
        flush=True,
    )


for tag in ("quiet",):
    for n in ("c4", "c2"):
        at(n, tag=tag)
        at(n, tag=tag)
LOAD = (
    "import time\nwhile True:\n t=time.perf_counter()\n"
    " while time.perf_counter()-t<0.002: pass\n time.sleep(0.018)"
)
p = subprocess.Popen([sys.executable, "-c", LOAD])
try:
    for n in ("c4", "c2"):
        at(n, tag="load10%")
        at(n, tag="load10%")
    for n in ("c4", "c2"):
        at(n, threads=1, tag="load10%")
finally:
    p.kill()
for n in ("c4", "c2"):
    at(n, threads=1, tag="quiet")
    at(n, threads=1, tag="quiet")
