"""Three networks (B0 at 224 px, two candidates of reports/latency-2x-cpu) built and timed at
batch 1 in one process: run it several times to see what a new process draws.

  python reports/latency-2x-processes/processes.py   (setarch -R before it: ASLR off)
"""

import statistics
import time

import torch

from scaler.model import build
from scaler.spec import scale


def inst(spec):
    m = build(spec, 10).eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, spec.pixels, spec.pixels).contiguous(memory_format=torch.channels_last)
    return lambda: m(x)


nets = {
    "b0": inst(scale(base_pixels=224)),
    "c2": inst(scale(1.0, 1.0, base_pixels=224, pixels=371)),
    "c4": inst(scale(1.0, 1.2, base_pixels=224, pixels=321)),
}


def timed(f, n=2):
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n


with torch.no_grad():
    for f in nets.values():
        for _ in range(3):
            f()
    ts = {k: [] for k in nets}
    for _ in range(15):
        for k, f in nets.items():
            ts[k].append(timed(f))
    m = {k: statistics.median(v) * 1e3 for k, v in ts.items()}
    print(
        " ".join(f"{k} {v:.1f}" for k, v in m.items()),
        f"c2/b0 {m['c2'] / m['b0']:.2f} c4/b0 {m['c4'] / m['b0']:.2f}",
    )
