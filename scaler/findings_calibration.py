"""A calibration's findings: Kendall's τ against the paper's order, its interval, its report.

:mod:`scaler.calibrate` trains official members at the proxy with paired seeds; this module
states what those runs show: τ per seed and its mean (the figure the README's target is stated
in), τ of the members' mean accuracies, a 95 % paired bootstrap interval over seeds (all members
resampled with the same seed indices, :func:`scaler.stats.bootstrap_mean_interval`), and the
report's sentences (:func:`report_text`). Every statistic is :mod:`scaler.stats`'s.
"""

from __future__ import annotations

import math
from typing import Any, Final

from scaler.stats import bootstrap_mean_interval
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
TARGET_TAU: Final = 0.67  # the README's target: the mean τ over seeds


def order_tau(x: list[float], y: list[float]) -> float:
    """Kendall's τ-b (:func:`scaler.stats.kendall_tau`), 0 where a seed ties every member: an
    order the proxy did not give agrees with the paper's no more than it disagrees."""
    tau = tau_b(x, y)
    return 0.0 if math.isnan(tau) else tau


def tau_statistics(
    runs: list[Any], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[tuple[float, ...], float, float, tuple[float, float]]:
    """Per-seed τ, their mean, τ of the means, and a paired bootstrap 95 % interval, of
    ``runs`` (:class:`scaler.calibrate.MemberRuns`: member, top1 per seed, mean)."""
    paper = [PAPER_TOP1[r.member] for r in runs]
    n = len(runs[0].top1)
    per_seed = tuple(order_tau([r.top1[k] for r in runs], paper) for k in range(n))
    of_means = order_tau([r.mean for r in runs], paper)
    interval = bootstrap_mean_interval(per_seed, samples, seed)
    return per_seed, sum(per_seed) / n, of_means, interval


def report_text(cal: Any) -> str:
    """A short Markdown report of a calibration (a :class:`scaler.calibrate.Calibration`); its
    sentences are computed from the numbers."""
    cfg, settings = cal.config, cal.proxy_settings
    lines = [
        "# Calibration: does the proxy order B0..B3 as ImageNet does?",
        "",
        f"Data `{cfg.data}` ({cal.data_classes} classes), proxy `{cfg.proxy}` "
        f"(base {settings['base_pixels']} px), {cfg.seeds} paired seeds "
        f"(seed k = {settings['seed']} + k for every member), {cal.wall_time / 60:.1f} min.",
        "",
        "| member | px | params (M) | MFLOPs | proxy top-1 % (mean ± sd) | paper top-1 % |",
        "|---|---|---|---|---|---|",
    ]
    for r in cal.runs:
        lines.append(
            f"| {r.member} | {r.pixels} | {r.params / 1e6:.2f} | {r.flops / 1e6:.0f} | "
            f"{r.mean:.2f} ± {r.std:.2f} | {PAPER_TOP1[r.member]:.1f} |"
        )
    lo, hi = cal.tau_interval
    seeds = ", ".join(f"{t:+.2f}" for t in cal.tau_per_seed)
    verdict = "meets" if cal.tau_mean >= TARGET_TAU else "misses"
    lines += [
        "",
        f"Kendall τ against the paper's order, per seed: {seeds}; mean **{cal.tau_mean:+.2f}** "
        f"(95 % paired bootstrap over {cfg.seeds} seeds: {lo:+.2f} to {hi:+.2f}); τ of the "
        f"mean accuracies: {cal.tau_of_means:+.2f}.",
        "",
        f"The proxy {verdict} the target τ ≥ 0.67 (mean over seeds). With {cfg.seeds} seeds the "
        "bootstrap interval is coarse: it only shows how much the per-seed orders disagree.",
    ]
    return "\n".join(lines) + "\n"
