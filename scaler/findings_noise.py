"""A noise study's findings: how one run's score splits into training and evaluation noise,
for each network and for the paired difference between networks, and the report's sentences.

:mod:`scaler.noise` trains the networks with paired seeds and scores each run on val and on
test; this module reads those scores (duck-typed :class:`scaler.noise.NetworkRuns`) and states
what they show. Every number is :mod:`scaler.stats`'s: :func:`~scaler.stats.split_variance`
(the decomposition, its degrees of freedom), :func:`~scaler.stats.sd_interval`,
:func:`~scaler.stats.image_agreement`, :func:`~scaler.stats.binomial_variance` and
:func:`~scaler.stats.paired_test`. The paired difference is what decides "is network A better
than network B": its evaluation part does not cancel between networks scored on the same images
unless they err on the same images, and the report says how much of it is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scaler.stats import (
    DifferenceTest,
    VarianceRatio,
    VarianceSplit,
    binomial_variance,
    image_agreement,
    paired_test,
    paired_variance_ratio,
    sd_interval,
    split_variance,
)


@dataclass(frozen=True)
class NetworkNoise:
    """One network's split of its runs' variance (variances in squared points)."""

    network: str
    n_val: int
    n_test: int
    val_mean: float
    test_mean: float
    split: VarianceSplit
    agreement: float  # share of held-out images two seeds agree on, over every pair of seeds
    agreement_independent: float  # the same if their errors fell on independent images
    binomial: float  # p(1 − p)/n_val: the evaluation variance of n_val independent images


@dataclass(frozen=True)
class PairNoise:
    """The paired difference ``network − reference`` (run k minus run k: the same seed)."""

    network: str
    reference: str
    split: VarianceSplit  # of the differences: val, pooled, training and evaluation parts
    val: DifferenceTest  # paired t-test of the mean val difference
    pooled: DifferenceTest  # the same over all held-out images
    # The difference's evaluation variance if the two networks' evaluation parts were
    # independent (the sum of theirs): the measured one is smaller when they err on the same
    # images, and only then does pairing cancel evaluation noise too.
    evaluation_independent: float


@dataclass(frozen=True)
class NoiseFindings:
    networks: tuple[NetworkNoise, ...]
    pairs: tuple[PairNoise, ...]  # every later network against the first


def network_noise(r: Any) -> NetworkNoise:
    """The split of one network's runs (``r``: val, test, val_correct, test_correct)."""
    import numpy as np

    n_val, n_test = r.val_correct.shape[1], r.test_correct.shape[1]
    val_mean = sum(r.val) / len(r.val)
    observed, independent = image_agreement(np.hstack([r.val_correct, r.test_correct]))
    return NetworkNoise(
        network=r.network,
        n_val=n_val,
        n_test=n_test,
        val_mean=val_mean,
        test_mean=sum(r.test) / len(r.test),
        split=split_variance(r.val, r.test, n_val, n_test),
        agreement=observed,
        agreement_independent=independent,
        binomial=binomial_variance(val_mean, n_val),
    )


def pair_noise(a: Any, ref: Any) -> PairNoise:
    """The split of the paired difference ``a − ref`` over their seeds."""
    n_val, n_test = a.val_correct.shape[1], a.test_correct.shape[1]
    alone = [split_variance(r.val, r.test, n_val, n_test).evaluation for r in (a, ref)]
    dv = [x - y for x, y in zip(a.val, ref.val, strict=True)]
    dt = [x - y for x, y in zip(a.test, ref.test, strict=True)]
    return PairNoise(
        network=a.network,
        reference=ref.network,
        split=split_variance(dv, dt, n_val, n_test),
        val=paired_test(a.val, ref.val),
        pooled=paired_test(a.pooled, ref.pooled),
        evaluation_independent=sum(alone),
    )


def findings(runs) -> NoiseFindings:
    """Every network's split, and every later network's paired difference from the first."""
    return NoiseFindings(
        networks=tuple(network_noise(r) for r in runs),
        pairs=tuple(pair_noise(r, runs[0]) for r in runs[1:]),
    )


# ----------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------


def _sd(variance: float) -> float:
    """σ of a variance estimate; a negative estimate (noise below what can be seen) is 0."""
    return math.sqrt(max(variance, 0.0))


def _ci(variance: float, df: float) -> str:
    lo, hi = sd_interval(variance, df)
    return f"{lo:.2f}–{hi:.2f}"


def _network_rows(res: Any) -> list[str]:
    rows = [
        "| network | px | params (M) | MFLOPs | val top-1 % | test top-1 % | σ val, direct (df)"
        " | σ pooled (df) | σ run (df) [95 %] | training σ (df) | evaluation σ (df)"
        " | training share | binomial σ | agreement (independent) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r, f in zip(res.runs, res.findings.networks, strict=True):
        s = f.split
        rows.append(
            f"| {r.network} | {r.pixels} | {r.params / 1e6:.2f} | {r.flops / 1e6:.0f} "
            f"| {f.val_mean:.2f} | {f.test_mean:.2f} | {_sd(s.val):.2f} ({s.df}) "
            f"| {_sd(s.pooled):.2f} ({s.df}) "
            f"| {_sd(s.run):.2f} ({s.run_df:.1f}) [{_ci(s.run, s.run_df)}] "
            f"| {_sd(s.training):.2f} ({s.training_df:.1f}) | {_sd(s.evaluation):.2f} ({s.df}) "
            f"| {100 * s.training_share:.0f} % | {_sd(f.binomial):.2f} "
            f"| {100 * f.agreement:.1f} % ({100 * f.agreement_independent:.1f} %) |"
        )
    return rows


def _pair_rows(res: Any) -> list[str]:
    if not res.findings.pairs:
        return []
    rows = [
        "",
        "| paired difference | mean Δ val [95 %] | σ Δ val, direct (df) | σ Δ run (df)"
        " | training σ (df) | evaluation σ (df) | mean Δ pooled [95 %] | σ Δ pooled (df) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in res.findings.pairs:
        s, v, q = p.split, p.val, p.pooled
        rows.append(
            f"| {p.network} − {p.reference} | {v.diff:+.2f} [{v.low:+.2f}, {v.high:+.2f}] "
            f"| {_sd(s.val):.2f} ({s.df}) | {_sd(s.run):.2f} ({s.run_df:.1f}) "
            f"| {_sd(s.training):.2f} ({s.training_df:.1f}) | {_sd(s.evaluation):.2f} ({s.df}) "
            f"| {q.diff:+.2f} [{q.low:+.2f}, {q.high:+.2f}] | {_sd(s.pooled):.2f} ({s.df}) |"
        )
    return rows


DEFINITIONS = """\
## Definitions

Run k of every network uses seed k (the same data order, augmentation and initial seeding);
each run is scored on val (n_val images) and on test (n_test images), disjoint splits. Model:
val_k = μ + T_k + E_k, test_k = μ + T_k + E'_k, with T the **training part** (which network
the seed gave, shared by both splits) and E, E' independent **evaluation parts** (which images
score it) whose variance falls as 1/images. With N seeds (all variances over seeds, N − 1 df):

- **evaluation σ** (one val score): σ_E² = var(val − test) · n_test/(n_val + n_test), i.e.
  var(val − test)/2 for equal splits; its share in the pooled score (all held-out images) is
  var(val − test)/4. N − 1 df.
- **training σ**: σ_T² = var(pooled) − var(val − test)/4 (= cov(val, test) for equal splits),
  the seed-to-seed variance of the pooled top-1 (N − 1 df) less its evaluation part;
  Satterthwaite's df (the two are independent: sums against differences of the splits).
- **σ run**: σ_T² + σ_E², one val score's variance estimated from both splits
  (= (var(val) + var(test))/2 for equal splits), Satterthwaite's df, with a χ² 95 % interval.
  **σ val, direct** is the plain sd of val top-1 over seeds, **σ pooled** that of the
  top-1 over all held-out images (training + var(val − test)/4), both N − 1 df.
- **training share**: σ_T²/(σ_T² + σ_E²); a negative σ_T² estimate is shown as σ 0.
- **binomial σ**: √(p(1 − p)/n_val), what n_val independent images would give; the
  evaluation σ exceeds it when images are correlated (overlapping crops of few photographs).
- **agreement**: the share of held-out images (val and test) whose correctness two seeds
  agree on, averaged over all pairs of seeds; in brackets, what it would be if the two runs
  erred on independent images with their own accuracies.
- What the splits share for every seed (a split easier for every run) shows in the mean
  val − test, not in these variances: only the evaluation noise that changes from seed to seed
  (which images this network happens to get right) is counted.
- **paired difference**: the same decomposition of run k of a network minus run k of the
  reference (val − test of the difference, pooled difference), N − 1 df; the mean difference's
  interval is the paired t-test's (N − 1 df).
"""


def _evaluation_clause(f: NetworkNoise) -> str:
    """The evaluation part against the binomial floor of independent images."""
    s, floor = f.split, _sd(f.binomial)
    said = f"the evaluation part is σ {_sd(s.evaluation):.2f} ({s.df} df)"
    if not (s.evaluation > 0 and floor > 0):
        return f"{said}; the binomial floor of {f.n_val} independent images is {floor:.2f}"
    ratio = _sd(s.evaluation) / floor
    said += f", {ratio:.1f}× the binomial floor of {f.n_val} independent images ({floor:.2f})"
    if ratio <= 1:
        return f"{said}: no sign of correlated images on {s.df} df"
    effective = f.val_mean * (100 - f.val_mean) / s.evaluation
    return f"{said}: the val split scores like about {effective:.0f} independent images"


def _network_sentence(f: NetworkNoise) -> str:
    s = f.split
    if not s.run > 0:
        return f"**{f.network}**: every run scored the same: no noise to split ({s.df} df)."
    training = (
        f"the training part is σ {_sd(s.training):.2f} ({s.training_df:.1f} df, "
        f"{100 * s.training_share:.0f} % of the variance)"
        if s.training > 0
        else f"no training part shows above the evaluation noise (σ_T² estimate "
        f"{s.training:+.2f} points², {s.training_df:.1f} df)"
    )
    return (
        f"**{f.network}**: one run's val top-1 has σ {_sd(s.run):.2f} points "
        f"({s.run_df:.1f} df; 95 % {_ci(s.run, s.run_df)}); {training}; "
        f"{_evaluation_clause(f)}. Two seeds agree on {100 * f.agreement:.1f} % of the held-out "
        f"images ({100 * f.agreement_independent:.1f} % if errors were independent)."
    )


def _pair_sentence(p: PairNoise) -> str:
    s, v = p.split, p.val
    verdict = (
        f"beyond the noise ({v.direction} at 95 %)" if v.called else "not beyond the noise at 95 %"
    )
    return (
        f"**{p.network} − {p.reference}** (paired by seed): the difference of val top-1 has σ "
        f"{_sd(s.run):.2f} points per pair of runs ({s.run_df:.1f} df; direct {_sd(s.val):.2f}, "
        f"{s.df} df), training part σ {_sd(s.training):.2f} ({s.training_df:.1f} df), "
        f"evaluation part σ {_sd(s.evaluation):.2f} ({s.df} df; "
        f"{_sd(p.evaluation_independent):.2f} if the two networks' evaluation parts were "
        "independent, less when they err on the same images). The mean difference, "
        f"{v.diff:+.2f} points (95 % {v.low:+.2f} to {v.high:+.2f}), is {verdict}; over all "
        f"held-out images it is {p.pooled.diff:+.2f} ({p.pooled.low:+.2f} to "
        f"{p.pooled.high:+.2f})."
    )


def report_text(res: Any, command: str = "", machine: str = "") -> str:
    """A short Markdown report of a noise study (a :class:`scaler.noise.Noise`): the command,
    the tables, the definitions and sentences computed from the numbers."""
    cfg, settings = res.config, res.proxy_settings
    nets = res.findings.networks
    first = settings["seed"]
    where = f" on {machine}" if machine else ""
    lines = ["# Noise: where a run's noise comes from", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"Data `{cfg.data}` ({res.data_classes} classes; val {nets[0].n_val} and test "
        f"{nets[0].n_test} images), proxy `{cfg.proxy}` (base {settings['base_pixels']} px, "
        f"{settings['epochs']} epochs, threads {settings.get('threads') or 'torch default'}), "
        f"{cfg.seeds} paired seeds ({first}..{first + cfg.seeds - 1}); training time "
        f"{res.wall_time / 60:.1f} min summed over {cfg.seeds * len(res.runs)} runs{where}.",
        "",
        *_network_rows(res),
        *_pair_rows(res),
        "",
        "σ in points of top-1 %; (df) degrees of freedom; [95 %] a χ² interval of σ.",
        "",
        "## Findings",
        "",
    ]
    lines += [_network_sentence(f) + "\n" for f in nets]
    lines += [_pair_sentence(p) + "\n" for p in res.findings.pairs]
    if getattr(res, "methods", ()):
        lines += [methods_text(res), ""]
    return "\n".join(lines) + "\n" + DEFINITIONS


# ----------------------------------------------------------------------------------------------
# the methods: every way of scoring the same runs, against the last weights scored on val
# ----------------------------------------------------------------------------------------------

# What a method must reach: σ of one run's top-1 (the noise issue's target, in points).
TARGET_SIGMA = 2.0


@dataclass(frozen=True)
class MethodNoise:
    """One scoring of the runs: its noise, against the last weights' val score on the same
    seeds (Pitman–Morgan tests of the paired difference's variance)."""

    method: str
    extra_time: float  # mean extra seconds over scoring the last weights, share of wall time
    networks: tuple[NetworkNoise, ...]
    delta_val: float  # variance of the paired difference of val top-1 (first pair)
    delta_pooled: float  # the same of top-1 over val and test images
    vs_last_val: VarianceRatio | None  # this method's val Δ against last's val Δ
    vs_last_pooled: VarianceRatio | None  # this method's pooled Δ against last's val Δ


def method_noise(m: Any, last: Any) -> MethodNoise:
    """The noise of ``m`` (a :class:`scaler.noise.MethodRuns`) against ``last``'s."""
    import numpy as np

    def deltas(runs, attr: str) -> list[float]:
        return [x - y for x, y in zip(getattr(runs[1], attr), getattr(runs[0], attr), strict=True)]

    paired = len(m.runs) > 1
    base = deltas(last.runs, "val") if paired else None
    val = deltas(m.runs, "val") if paired else None
    pooled = deltas(m.runs, "pooled") if paired else None
    return MethodNoise(
        method=m.method,
        extra_time=float(np.mean(m.extra_time)),
        networks=m.findings.networks,
        delta_val=float(np.var(val, ddof=1)) if paired else math.nan,
        delta_pooled=float(np.var(pooled, ddof=1)) if paired else math.nan,
        vs_last_val=paired_variance_ratio(val, base) if paired else None,
        vs_last_pooled=paired_variance_ratio(pooled, base) if paired else None,
    )


def methods_noise(res: Any) -> tuple[MethodNoise, ...]:
    """Every scoring of a noise study run with methods, "last" (the reference) first."""
    by_name = {m.method: m for m in res.methods}
    last = by_name["last"]
    order = ["last", *(n for n in by_name if n != "last")]
    return tuple(method_noise(by_name[n], last) for n in order)


def _ratio(r: VarianceRatio | None) -> str:
    return "–" if r is None else f"{math.sqrt(r.ratio):.2f} (p {r.p:.2f}, {r.df} df)"


def methods_table(res: Any) -> list[str]:
    """The per-method table: σ of one run and of the paired difference, and the cost."""
    rows = methods_noise(res)
    nets = [f.network for f in rows[0].networks]
    df = rows[0].networks[0].split.df
    head = "| scoring | extra time | " + " | ".join(
        f"{n}: σ val run (df) / σ val+test ({df} df)" for n in nets
    )
    head += f" | σ Δ val ({df} df) | ÷ last | σ Δ val+test ({df} df) | ÷ last |"
    out = [head, "|---" * (5 + len(nets)) + "|---|"]
    for m in rows:
        cells = [
            f"{_sd(f.split.run):.2f} ({f.split.run_df:.1f}) / {_sd(f.split.pooled):.2f}"
            for f in m.networks
        ]
        out.append(
            f"| {m.method} | {100 * m.extra_time:+.1f} % | "
            + " | ".join(cells)
            + f" | {_sd(m.delta_val):.2f} | {_ratio(m.vs_last_val)} "
            f"| {_sd(m.delta_pooled):.2f} | {_ratio(m.vs_last_pooled)} |"
        )
    return out


def methods_text(res: Any) -> str:
    """The methods section of a noise report: the table, how to read it, and the verdicts."""
    rows = methods_noise(res)
    lines = ["## Scoring methods, on the same runs", "", *methods_table(res), ""]
    lines.append(
        "Each row scores the same trained runs another way: the last weights or an average of "
        "them over the run's end (swa, ema; BatchNorm recomputed), with or without flip "
        "test-time augmentation, on val alone or on val and test pooled. **extra time**: what "
        "the scoring costs beyond scoring the last weights, as a share of the run's wall time "
        "(mean over runs). **÷ last**: σ of this paired difference divided by that of the last "
        "weights scored on val, on the same seeds, with the Pitman–Morgan test of equal "
        "variances (scipy's Pearson test of sums against differences, pairs − 2 df)."
    )
    lines.append("")
    for m in rows:
        lines.append(_method_sentence(m) + "\n")
    return "\n".join(lines)


def _method_sentence(m: MethodNoise) -> str:
    worst = max(_sd(f.split.run) for f in m.networks)
    worst_pooled = max(_sd(f.split.pooled) for f in m.networks)

    def against(sigma: float) -> str:
        return "within" if sigma <= TARGET_SIGMA else "above"

    target = (
        f"one run's σ is at most {worst:.2f} points on val ({against(worst)} the "
        f"{TARGET_SIGMA:g}-point target) and {worst_pooled:.2f} on val and test "
        f"({against(worst_pooled)} it)"
    )
    if m.vs_last_val is None:
        return f"**{m.method}**: {target}."
    v, q = m.vs_last_val, m.vs_last_pooled
    return (
        f"**{m.method}** ({100 * m.extra_time:+.1f} % time): {target}; σ of the paired "
        f"difference is {math.sqrt(v.ratio):.2f}× the last weights' on val (p {v.p:.2f}, "
        f"{v.df} df) and {math.sqrt(q.ratio):.2f}× scored on val and test (p {q.p:.2f})."
    )
