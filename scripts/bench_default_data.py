"""Wall time of one default proxy run: the old default (embedded photographs) against the new
(embedded Fashion-MNIST), side by side in one process, alternated so drift falls on both.

Each pair trains B0 at the proxy's base size once on each, with test scoring as a search's run
does; the ratio new ÷ old is the median over pairs (both with their proxy settings and data).

  python scripts/bench_default_data.py [--pairs 3] [--new-set tta=none]

0.6's default is ``--data embedded`` with the standard proxy scoring its last weights; 0.7's is
``--data fashion`` with the standard proxy scoring an EMA of the weights with flip TTA.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _one(spec, source, proxy, seed: int) -> float:
    from scaler.train import train

    t0 = time.perf_counter()
    train(spec, source, proxy, seed=seed, test=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--old", default="embedded")
    ap.add_argument("--new", default="fashion")
    ap.add_argument(
        "--new-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a proxy setting of the new run other than the standard preset's, e.g. tta=none",
    )
    a = ap.parse_args(argv)

    from scaler.data import DEFAULT_UPSAMPLE, parse_data
    from scaler.machine import cpu
    from scaler.proxy import resolve_proxy
    from scaler.spec import scale

    old_proxy = resolve_proxy("standard", {"average": "none", "tta": "none"})
    new_proxy = resolve_proxy("standard", [tuple(kv.split("=", 1)) for kv in a.new_set])
    spec = scale(base_pixels=old_proxy.base_pixels)
    runs = {
        "old": (parse_data(a.old, upsample=DEFAULT_UPSAMPLE), old_proxy),
        "new": (parse_data(a.new, upsample=DEFAULT_UPSAMPLE), new_proxy),
    }
    for source, proxy in runs.values():  # untimed: loads and resizes the data, warms torch
        _one(spec, source, proxy, seed=999)
    times: dict[str, list[float]] = {"old": [], "new": []}
    for i in range(a.pairs):
        for key in ("old", "new") if i % 2 == 0 else ("new", "old"):
            times[key].append(_one(spec, *runs[key], seed=i))
            print(f"pair {i}: {key} {times[key][-1]:.1f} s", flush=True)
    ratios = [n / o for o, n in zip(times["old"], times["new"], strict=True)]
    print(f"machine: {cpu().describe()}")
    print(f"old: {a.old}, {old_proxy.describe()}")
    print(f"new: {a.new}, {new_proxy.describe()}")
    print(
        f"median run: old {statistics.median(times['old']):.1f} s, new "
        f"{statistics.median(times['new']):.1f} s; new ÷ old per pair "
        f"{', '.join(f'{r:.3f}' for r in ratios)} (median {statistics.median(ratios):.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
