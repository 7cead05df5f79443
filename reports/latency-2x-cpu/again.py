"""Two candidates of latency-2x, each compared with the base 3 times in a row in one new
process: does a ratio drift within a process, and which of the search's and the check's
measurements does it reproduce?

  python reports/latency-2x-cpu/again.py WARMUP c4 c2
"""

import sys
import time

from scaler.latency import LatencySettings, compare
from scaler.spec import scale

# (alpha, beta, cost pixels) of the search's trials 4, 2, 7 and 1.
CANDIDATES = {
    "c4": (1.0, 1.2, 321),
    "c2": (1.0, 1.0, 371),
    "c7": (1.0, 1.1, 357),
    "c1": (1.2, 1.1, 268),
}
settings = LatencySettings(
    mode="batch1", device="cpu", num_classes=10, warmup=int(sys.argv[1]), processes=1
)
base = scale(base_pixels=224)
for name in sys.argv[2:]:
    alpha, beta, px = CANDIDATES[name]
    spec = scale(alpha, beta, base_pixels=224, pixels=px)
    for k in range(3):
        t0 = time.time()
        lat = compare(spec, base, settings)
        print(
            f"{name} try {k} ratio {lat.ratio:.3f} [{lat.low:.3f}, {lat.high:.3f}] "
            f"pairs {lat.pairs} cand {lat.seconds * 1e3:.1f} ms "
            f"base {lat.base_seconds * 1e3:.1f} ms ({time.time() - t0:.0f} s)",
            flush=True,
        )
