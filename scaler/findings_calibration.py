"""A calibration's findings: Kendall's τ against the paper's order, its interval, its report.

:mod:`scaler.calibrate` trains official members at the proxy with paired seeds; this module
states what those runs show: τ per seed and its mean (the figure docs/proxy.md states
the target in), τ of the members' mean accuracies, the exact one-sided p of the mean τ under the
permutation null (each seed's order uniform over the members' n! orders,
:func:`scaler.stats.tau_permutation_p`), a 95 % paired bootstrap interval over seeds from
:data:`scaler.stats.MIN_BOOTSTRAP_SEEDS` seeds on (all members resampled with the same seed
indices, :func:`scaler.stats.bootstrap_mean_interval`; with fewer seeds the range of the
per-seed τ, no coverage claimed), and the report's sentences (:func:`report_text`). Every
statistic is :mod:`scaler.stats`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from scaler.stats import (
    MIN_BOOTSTRAP_SEEDS,
    DifferenceTest,
    bootstrap_mean_interval,
    paired_test,
    tau_permutation_p,
)
from scaler.stats import kendall_tau as tau_b

# The paper's Table 2 (ImageNet top-1, %), the order the proxy should reproduce.
PAPER_TOP1: Final[dict[str, float]] = {
    "b0": 77.1,
    "b1": 79.1,
    "b2": 80.1,
    "b3": 81.6,
    "b4": 82.9,
    "b5": 83.6,
    "b6": 84.0,
    "b7": 84.3,
}
BOOTSTRAP_SAMPLES: Final = 2000
TARGET_TAU: Final = 0.67  # docs/proxy.md's target: the mean τ over seeds


def order_tau(x: list[float], y: list[float]) -> float:
    """Kendall's τ-b (:func:`scaler.stats.kendall_tau`), 0 where a seed ties every member: an
    order the proxy did not give agrees with the paper's no more than it disagrees."""
    tau = tau_b(x, y)
    return 0.0 if math.isnan(tau) else tau


def tau_statistics(
    runs: list[Any], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[tuple[float, ...], float, float, tuple[float, float]]:
    """Per-seed τ, their mean, τ of the means, and a paired bootstrap 95 % interval of
    ``runs`` (:class:`scaler.calibrate.MemberRuns`: member, top1 per seed, mean); below
    :data:`scaler.stats.MIN_BOOTSTRAP_SEEDS` seeds the interval is the per-seed τ's range. A
    seed whose members ran at different CPU thread counts is left out (:func:`mixed_seeds`)."""
    paper = [PAPER_TOP1[r.member] for r in runs]
    mixed = mixed_seeds(runs)  # not paired: left out
    seeds = [k for k in range(len(runs[0].top1)) if k not in mixed]
    n = len(seeds)
    if not n:
        return (), math.nan, order_tau([r.mean for r in runs], paper), (math.nan, math.nan)
    per_seed = tuple(order_tau([r.top1[k] for r in runs], paper) for k in seeds)
    of_means = order_tau([r.mean for r in runs], paper)
    if n < MIN_BOOTSTRAP_SEEDS:
        interval = (min(per_seed), max(per_seed))
    else:
        interval = bootstrap_mean_interval(per_seed, samples, seed)
    return per_seed, sum(per_seed) / n, of_means, interval


def mixed_seeds(runs: list[Any]) -> list[int]:
    """Seed indices whose members' runs were made at different CPU thread counts: their runs
    are not paired (runs that stored no count, before 0.6, pair as they always did)."""
    n = len(runs[0].top1)
    counts = [{r.threads[k] for r in runs if len(r.threads) > k} - {None} for k in range(n)]
    return [k for k in range(n) if len(counts[k]) > 1]


def _mixed_sentence(cal: Any) -> list[str]:
    mixed = mixed_seeds(list(cal.runs))
    if not mixed:
        return []
    ks = ", ".join(str(k) for k in mixed)
    return [
        "",
        f"Seed index {ks}: its members' runs were made at different CPU thread counts, so they "
        "are not paired and are left out of the per-seed τ.",
    ]


def tau_p(per_seed: tuple[float, ...], members: int) -> float:
    """The exact one-sided p of the mean per-seed τ against the paper's order of ``members``
    members: each seed's order uniform over the members' orders under the null."""
    return tau_permutation_p(per_seed, members)


def tau_sentence(cal: Any) -> str:
    """The report's sentence on τ: per seed, the mean with its spread or interval and its exact
    permutation p, τ of the means."""
    lo, hi = cal.tau_interval
    n, k = len(cal.tau_per_seed), len(cal.runs)
    seeds = ", ".join(f"{t:+.2f}" for t in cal.tau_per_seed)
    if n < MIN_BOOTSTRAP_SEEDS:
        spread = (
            f"the spread of the {n} per-seed values: {lo:+.2f} to {hi:+.2f}, no coverage claimed"
        )
    else:
        spread = f"95 % paired bootstrap over {n} seeds: {lo:+.2f} to {hi:+.2f}"
    p = tau_p(cal.tau_per_seed, k)
    null = (
        f"; exact one-sided permutation p = {p:.2g}, each seed's order uniform over the "
        f"{math.factorial(k)} orders of {k} members under the null"
        if math.isfinite(p)
        else ""
    )
    return (
        f"Kendall τ against the paper's order, per seed: {seeds}; mean **{cal.tau_mean:+.2f}** "
        f"({spread}{null}); τ of the mean accuracies: {cal.tau_of_means:+.2f}."
    )


@dataclass(frozen=True)
class Scoring:
    """The calibration's runs scored one way: on val, on test, or on both splits' images."""

    split: str  # "val", "test" or "both"
    tau_per_seed: tuple[float, ...]
    tau_mean: float
    tau_p: float  # exact one-sided permutation p of tau_mean
    # Each member minus the one before it in the paper's order, paired by seed (n − 1 df).
    adjacent: tuple[tuple[str, str, DifferenceTest], ...]

    @property
    def ordered(self) -> bool:
        """The gate: every adjacent difference's 95 % interval lies above zero."""
        return bool(self.adjacent) and all(t.low > 0 for _, _, t in self.adjacent)


def scorings(runs: list[Any]) -> tuple[Scoring, ...]:
    """τ and the adjacent paired differences on val, on test and on both (val only when the
    runs have no test scores); seeds run at mixed thread counts are left out."""
    mixed = set(mixed_seeds(runs))
    keep = [k for k in range(len(runs[0].top1)) if k not in mixed]
    order = sorted(runs, key=lambda r: PAPER_TOP1[r.member])
    paper = [PAPER_TOP1[r.member] for r in order]
    splits = [("val", "top1")] + ([("test", "test"), ("both", "pooled")] if runs[0].test else [])
    out = []
    for split, attr in splits:
        scores = [[getattr(r, attr)[k] for k in keep] for r in order]
        per_seed = tuple(order_tau([s[i] for s in scores], paper) for i in range(len(keep)))
        mean = sum(per_seed) / len(per_seed) if per_seed else math.nan
        adjacent = tuple(
            (order[i + 1].member, order[i].member, paired_test(scores[i + 1], scores[i]))
            for i in range(len(order) - 1)
        )
        out.append(Scoring(split, per_seed, mean, tau_p(per_seed, len(order)), adjacent))
    return tuple(out)


def scoring_lines(cal: Any) -> list[str]:
    """The report's table of τ and adjacent differences on every split, and the gate."""
    if not cal.scorings:
        return []
    first = cal.scorings[0]
    heads = [f"{a} − {b}" for a, b, _ in first.adjacent]
    df = first.adjacent[0][2].df if first.adjacent else 0
    lines = [
        "",
        f"## Val, test and both; adjacent members paired by seed ({df} df)",
        "",
        "| scored on | τ per seed | mean τ (exact p) | "
        + " | ".join(f"{h} [95 %]" for h in heads)
        + " | every step up? |",
        "|---" * (4 + len(heads)) + "|",
    ]
    for s in cal.scorings:
        cells = [f"{t.diff:+.2f} [{t.low:+.2f}, {t.high:+.2f}]" for _, _, t in s.adjacent]
        taus = ", ".join(f"{t:+.2f}" for t in s.tau_per_seed)
        lines.append(
            f"| {s.split} | {taus} | {s.tau_mean:+.2f} ({s.tau_p:.2g}) | "
            + " | ".join(cells)
            + f" | {'yes' if s.ordered else 'no'} |"
        )
    lines += [
        "",
        "The gate: the proxy orders the members as the paper does only where every adjacent "
        "paired difference (paired t, 95 %) lies above zero. " + _gate_sentence(cal.scorings),
    ]
    return lines


def _gate_sentence(found: tuple[Scoring, ...]) -> str:
    passed = [s.split for s in found if s.ordered]
    if passed:
        return f"It does on: {', '.join(passed)}."
    steps = [f"{a} − {b}" for a, b, _ in found[0].adjacent]
    nowhere = [h for i, h in enumerate(steps) if not any(s.adjacent[i][2].low > 0 for s in found)]
    return (
        f"It does on no scoring; not above zero on any scoring: {', '.join(nowhere)}."
        if nowhere
        else "It does on no scoring: each scoring leaves some step unresolved."
    )


def report_text(cal: Any) -> str:
    """A short Markdown report of a calibration (a :class:`scaler.calibrate.Calibration`); its
    sentences are computed from the numbers."""
    cfg, settings = cal.config, cal.proxy_settings
    lines = [
        "# Calibration: does the proxy order B0..B3 as ImageNet does?",
        "",
        f"Data `{cfg.data}` ({cal.data_classes} classes), proxy `{cfg.proxy}` "
        f"(base {settings['base_pixels']} px), {cfg.seeds} paired seeds "
        f"(seed k = {settings['seed']} + k for every member), "
        f"{cal.wall_time / 60:.1f} min of training.",
        "",
        "| member | px | params (M) | MFLOPs | proxy top-1 % (mean ± sd) | paper top-1 % |",
        "|---|---|---|---|---|---|",
    ]
    for r in cal.runs:
        lines.append(
            f"| {r.member} | {r.pixels} | {r.params / 1e6:.2f} | {r.flops / 1e6:.0f} | "
            f"{r.mean:.2f} ± {r.std:.2f} | {PAPER_TOP1[r.member]:.1f} |"
        )
    verdict = "meets" if cal.tau_mean >= TARGET_TAU else "misses"
    n = len(cal.tau_per_seed)
    coarse = (
        f"With {n} seeds (fewer than {MIN_BOOTSTRAP_SEEDS}) no interval of the mean τ is "
        "claimed: the spread only shows how much the per-seed orders disagree."
        if n < MIN_BOOTSTRAP_SEEDS
        else f"With {n} seeds the bootstrap interval is coarse."
    )
    lines += [
        "",
        tau_sentence(cal),
        "",
        f"The proxy {verdict} the target τ ≥ 0.67 (mean over seeds, on val). {coarse}",
        *_mixed_sentence(cal),
        *scoring_lines(cal),
    ]
    return "\n".join(lines) + "\n"
