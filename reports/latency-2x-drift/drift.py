"""Is a latency ratio a property of the timing process, of its history, or of the moment?

reports/latency-2x-replicate measured candidate #3 (α 1.4, β 1.0 at 257 px against B0 at 224
px, batch 1, 10 classes) at 1.983 in the search, all 10 process draws within 1.974-1.992, and at
2.22-2.23 in two later checks. This alternates, for ``--rounds`` rounds:

- ``fresh``: 5 new timing processes, each measuring #3 once, then closed;
- ``old``: 5 timing processes started once at the beginning, measuring #3 each round after
  they measured two other sizes of it (240 and 275 px), as a search's pool does during a solve.

If ``old`` stays apart from ``fresh`` within rounds, a pool's history moves its draws; if both
move together from round to round, the machine's state at the moment does.

  python reports/latency-2x-drift/drift.py --rounds 8
"""

import argparse
import dataclasses
import statistics
import time

from scipy.stats import ttest_1samp

from scaler import latency
from scaler.latency import LatencySettings, pooled
from scaler.spec import scale


def _pool() -> list:
    """5 timing processes, returned once every one has imported torch and said so (what ran
    at 23:39 UTC did the same in a function of this file; scaler.latency._serve does it now)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    conns = []
    for _ in range(5):
        parent, child = ctx.Pipe()
        ctx.Process(target=latency._serve, args=(child,), daemon=True).start()
        child.close()
        conns.append(parent)
    for c in conns:
        assert c.recv() == "ready"
    return conns


def _measure(conns, spec, base, one) -> latency.Latency:
    return pooled([latency._ask(c, (spec, base, one)) for c in conns])


def _line(name: str, lat, t0: float) -> str:
    each = " ".join(f"{r:.3f}" for r in lat.process_ratios)
    interval = f"[{lat.low:.3f}, {lat.high:.3f}]"
    return f"{time.time() - t0:6.0f} s {name:5} {lat.ratio:.3f} {interval}: {each}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    rounds = parser.parse_args().rounds
    settings = LatencySettings(mode="batch1", num_classes=10, processes=1)
    one = dataclasses.replace(settings, processes=1)
    base = scale(base_pixels=224)
    c3 = scale(1.4, 1.0, base_pixels=224, pixels=257)
    others = [scale(1.4, 1.0, base_pixels=224, pixels=p) for p in (240, 275)]
    t0 = time.time()
    old = _pool()
    diffs = []
    for r in range(rounds):
        print(f"round {r}", flush=True)
        fresh = _pool()
        f = _measure(fresh, c3, base, one)
        for c in fresh:
            c.close()  # the process sees EOF and exits
        print(_line("fresh", f, t0), flush=True)
        for spec in others:
            _measure(old, spec, base, one)
        o = _measure(old, c3, base, one)
        print(_line("old", o, t0), flush=True)
        diffs.append(o.ratio - f.ratio)
    print(
        f"old - fresh per round: {' '.join(f'{d:+.3f}' for d in diffs)}; "
        f"mean {statistics.fmean(diffs):+.3f}, sd {statistics.stdev(diffs):.3f}"
    )
    test = ttest_1samp(diffs, 0.0)
    low, high = test.confidence_interval(0.95)
    print(f"paired t on {len(diffs) - 1} df: p {test.pvalue:.3f}, 95 % [{low:+.3f}, {high:+.3f}]")


if __name__ == "__main__":  # the pool spawns: its processes import this file
    main()
