"""Wall time of one default proxy run: the old default (embedded photographs) against the new
(embedded Fashion-MNIST), side by side in one process, alternated so drift falls on both.

Each round trains B0 at the proxy's base size once in each arm, with test scoring as a search's
run does; a ratio is the median over rounds. The arms: ``0.6`` (the old data and scoring, the
networks scored with their BatchNorm layers as 0.6 did), ``old`` (the same on today's code,
BatchNorm folded into the convolutions for scoring) and ``new``.

  python scripts/bench_default_data.py [--pairs 3] [--new-set tta=none]

0.6's default is ``--data embedded`` with the standard proxy scoring its last weights; 0.7's is
``--data fashion`` with the standard proxy scoring an EMA of the weights with flip TTA.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _one(spec, source, proxy, seed: int, fold: bool) -> float:
    import contextlib
    from unittest import mock

    from scaler.train import train

    unfolded = mock.patch("scaler.scoring.folded", lambda model: model)
    t0 = time.perf_counter()
    with contextlib.nullcontext() if fold else unfolded:
        train(spec, source, proxy, seed=seed, test=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3, help="rounds, each a run of every arm")
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
    old = parse_data(a.old, upsample=DEFAULT_UPSAMPLE)
    arms = {  # (data, proxy, BatchNorm folded for scoring)
        "0.6": (old, old_proxy, False),
        "old": (old, old_proxy, True),
        "new": (parse_data(a.new, upsample=DEFAULT_UPSAMPLE), new_proxy, True),
    }
    for arm in arms.values():  # untimed: loads and resizes the data, warms torch
        _one(spec, *arm[:2], seed=999, fold=arm[2])
    times: dict[str, list[float]] = {key: [] for key in arms}
    for i in range(a.pairs):
        order = list(arms)[i % len(arms) :] + list(arms)[: i % len(arms)]  # rotated each round
        for key in order:
            times[key].append(_one(spec, *arms[key][:2], seed=i, fold=arms[key][2]))
            print(f"round {i}: {key} {times[key][-1]:.1f} s", flush=True)
    print(f"machine: {cpu().describe()}")
    print(f"old: {a.old}, {old_proxy.describe()}")
    print(f"new: {a.new}, {new_proxy.describe()}")
    print("median run: " + ", ".join(f"{k} {statistics.median(v):.1f} s" for k, v in times.items()))
    for base in ("0.6", "old"):
        ratios = [n / o for o, n in zip(times[base], times["new"], strict=True)]
        print(
            f"new ÷ {base} per round {', '.join(f'{r:.3f}' for r in ratios)} "
            f"(median {statistics.median(ratios):.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
