"""Per-instance batch-1 time of c2 (371 px) and B0 (224 px), each network built anew 6 times
in one process: does a new build draw anew, or keep the process's draw?

  python reports/latency-2x-processes/builds.py 1     (the argument: torch's CPU threads)
"""

import statistics
import sys
import time

import torch

from scaler.model import build
from scaler.spec import scale

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)


def inst(spec) -> float:
    m = build(spec, 10).eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, spec.pixels, spec.pixels).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(3):
            m(x)
        ts = []
        for _ in range(15):
            t = time.perf_counter()
            m(x)
            ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


c2 = scale(1.0, 1.0, base_pixels=224, pixels=371)
b0 = scale(base_pixels=224)
for k in range(6):
    print(f"build {k}: c2 {inst(c2):.1f} ms  b0 {inst(b0):.1f} ms", flush=True)
