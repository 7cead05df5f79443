"""Does training in the parent just before a measurement move it?

As a latency search does: a pool of 5 timing processes checks the base against itself, then the
parent trains the base (the quick proxy at 32 px, as the search's first trial), then candidate
#1 of run.sh (α 1.2, β 1.1 at 228 px against B0 at 224 px, batch 1, 10 classes) is measured
right after, and twice more. first.py is the same without the training.

  python reports/latency-2x-processes/after_training.py
"""

from scaler.data.parse import parse_data
from scaler.latency import LatencySettings, compare
from scaler.proxy import PROXY_PRESETS
from scaler.spec import scale
from scaler.train import train


def main() -> None:
    settings = LatencySettings(mode="batch1", num_classes=10, processes=5)
    base = scale(base_pixels=224)
    cand = scale(1.2, 1.1, base_pixels=224, pixels=228)
    print("base/base", _line(compare(base, base, settings)), flush=True)
    source = parse_data("fashion", upsample="bilinear")
    result = train(scale(base_pixels=32), source, PROXY_PRESETS["quick"])
    print(f"trained B0 at 32 px: top-1 {result.top1:.2f}", flush=True)
    for i in range(3):
        print(f"c1/base #{i + 1}", _line(compare(cand, base, settings)), flush=True)


def _line(lat) -> str:
    each = " ".join(f"{r:.3f}" for r in lat.process_ratios)
    return f"{lat.ratio:.3f} [{lat.low:.3f}, {lat.high:.3f}] per process: {each}"


if __name__ == "__main__":  # the pool spawns: its processes import this file
    main()
