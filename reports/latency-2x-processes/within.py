"""One process, the same two instances (c2 at 371 px, B0 at 224 px, 2 threads), alternated for
~2 minutes: the ratio every 10 pairs and the host's steal time over each interval.

  python reports/latency-2x-processes/within.py
"""

import statistics
import time

import torch

from scaler.model import build
from scaler.spec import scale


def steal():
    with open("/proc/stat") as f:
        return int(f.readline().split()[8])


def inst(spec):
    m = build(spec, 10).eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, spec.pixels, spec.pixels).contiguous(memory_format=torch.channels_last)
    return lambda: m(x)


c2, b0 = inst(scale(1.0, 1.0, base_pixels=224, pixels=371)), inst(scale(base_pixels=224))


def timed(f, n=2):
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n


with torch.no_grad():
    for _ in range(3):
        c2()
        b0()
    t0 = time.time()
    while time.time() - t0 < 120:
        s0 = steal()
        r = []
        a = []
        b = []
        for _ in range(10):
            tb = timed(b0)
            tc = timed(c2)
            r.append(tc / tb)
            a.append(tc)
            b.append(tb)
        print(
            f"{time.time() - t0:5.0f} s ratio {statistics.median(r):.3f} "
            f"c2 {statistics.median(a) * 1e3:.1f} b0 {statistics.median(b) * 1e3:.1f} ms "
            f"steal {steal() - s0}",
            flush=True,
        )
