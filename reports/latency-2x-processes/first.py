"""Is a pool's first measurement of a candidate different from its later ones?

In a new process with a new pool of 5 timing processes (as a latency search starts), the base
is timed against itself (the search's check), then candidate #1 of run.sh (α 1.2, β 1.1 at
228 px, B0 at 224 px, batch 1, 10 classes) three times in a row. Run it several times: each
run is a new pool.

  python reports/latency-2x-processes/first.py
"""

from scaler.latency import LatencySettings, compare
from scaler.spec import scale


def main() -> None:
    settings = LatencySettings(mode="batch1", num_classes=10, processes=5)
    base = scale(base_pixels=224)
    cand = scale(1.2, 1.1, base_pixels=224, pixels=228)
    print("base/base", _line(compare(base, base, settings)), flush=True)
    for i in range(3):
        print(f"c1/base #{i + 1}", _line(compare(cand, base, settings)), flush=True)


def _line(lat) -> str:
    each = " ".join(f"{r:.3f}" for r in lat.process_ratios)
    return f"{lat.ratio:.3f} [{lat.low:.3f}, {lat.high:.3f}] per process: {each}"


if __name__ == "__main__":  # the pool spawns: its processes import this file
    main()
