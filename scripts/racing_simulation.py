"""Simulate racing (--seeds auto) against fixed seeds: the numbers in docs/statistics.md.

Noise model (paired runs): run k of network i scores μ_i + u_k + e_ik, u_k ~ N(0, σ²/2) shared by
every network trained with seed k, e_ik ~ N(0, σ²/2) its own; σ = 3.5 points per run. Five
candidates ``gap`` points apart and the base one gap under the worst; the truly best is c0.
Racing and fixed seeds see the same drawn runs; fixed seeds get ceil(racing's mean runs / 6)
seeds each (as many runs as racing, or more).

    PYTHONPATH=$PWD python scripts/racing_simulation.py [--reps 2000]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from scaler import racing

SIGMA = 3.5
CANDIDATES = [f"c{i}" for i in range(5)]


def one(rng, gap: float, max_seeds: int):
    means = {**{c: -gap * i for i, c in enumerate(CANDIDATES)}, "base": -gap * 5}
    shared = rng.normal(0.0, SIGMA / math.sqrt(2), max_seeds)
    runs = {
        n: m + shared + rng.normal(0.0, SIGMA / math.sqrt(2), max_seeds) for n, m in means.items()
    }
    seen = {n: [] for n in runs}
    while (d := racing.decide(seen, CANDIDATES, "base", max_seeds)).running:
        seen = {n: list(runs[n][:k]) for n, k in d.due.items()}
    best = max(d.survivors, key=lambda n: float(np.mean(seen[n])))
    return runs, d, best, sum(len(v) for v in seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--max-seeds", type=int, default=racing.MAX_SEEDS)
    parser.add_argument("--futility", type=float, default=racing.FUTILITY)
    parser.add_argument("--futility-from", type=int, default=racing.FUTILITY_FROM)
    args = parser.parse_args()
    racing.FUTILITY, racing.FUTILITY_FROM = args.futility, args.futility_from
    print("gap  racing: best  wrong winner  runs  stops (one/max/indist.)", end="")
    print("  fixed: seeds  best (seeds - 1)")
    for gap in (2.0, 1.0, 0.0):
        rng = np.random.default_rng(0)
        out = [one(rng, gap, args.max_seeds) for _ in range(args.reps)]
        right = np.mean([b == "c0" for _, _, b, _ in out])
        wrong = np.mean([d.reason == racing.ONE_WINNER and b != "c0" for _, d, b, _ in out])
        runs = np.mean([n for *_, n in out])
        stops = [sum(d.reason == r for _, d, _, _ in out) / len(out) for r in
                 (racing.ONE_WINNER, racing.MAX_REACHED, racing.INDISTINGUISHABLE)]  # fmt: skip
        fixed = min(args.max_seeds, math.ceil(runs / 6))
        fixed_right, fewer = (
            np.mean([max(CANDIDATES, key=lambda c: r[c][:n].mean()) == "c0" for r, *_ in out])
            for n in (fixed, fixed - 1)
        )
        print(
            f"{gap:3.1f}  {right:12.3f}  {wrong:12.3f}  {runs:4.1f}  "
            f"{' / '.join(f'{s:.2f}' for s in stops):>23}  "
            f"{fixed:12d}  {fixed_right:.3f} ({fewer:.3f})"
        )
    print("two candidates 0.01 apart, independent noise: wrong single winner (the lesser alone)")
    for name, level in (("per look 1 - 5 %/looks", racing.look_level), ("plain 95 % looks", None)):
        print(f"  {name}: {two_way(args.reps, level):.3f}")


def two_way(reps: int, level) -> float:
    """The hardest case for the bound: nothing shared makes the pooled σ conservative."""
    saved = racing.look_level, racing.FUTILITY
    racing.look_level = level or (lambda lv, m: lv)
    racing.FUTILITY = racing.FUTILITY if level else 0.0
    rng, wrong = np.random.default_rng(3), 0
    for _ in range(reps):
        runs = {n: m + rng.normal(0.0, SIGMA, 8) for n, m in (("a", 0.0), ("b", -0.01))}
        runs["base"] = -5.0 + rng.normal(0.0, SIGMA, 8)
        seen = {n: [] for n in runs}
        while (d := racing.decide(seen, ["a", "b"], "base")).running:
            seen = {n: list(runs[n][:k]) for n, k in d.due.items()}
        wrong += d.reason == racing.ONE_WINNER and d.survivors == ("b",)
    racing.look_level, racing.FUTILITY = saved
    return wrong / reps


if __name__ == "__main__":
    main()
