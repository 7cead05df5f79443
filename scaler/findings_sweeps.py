"""The sweeps' verdicts: the Figure 1 verdict and the Tables 3/7 compare verdicts, in words.

A sweep (:mod:`scaler.sweeps` runs them) shows two kinds of findings, both stated here from its
trials and judged by :mod:`scaler.stats`'s t-tests only:

- **The Figure 1 verdict** (a ``width-by-baseline`` sweep, the paper's Figure 4):
  :func:`series_findings` says how top-1 moved along each series (its first against its last
  point, a t-test on the pooled σ with its degrees of freedom), and :func:`baseline_findings`
  says whether the paper's ordering holds from one OLS over every run of the sweep
  (:func:`scaler.findings_pooled.baseline_model`: each baseline's offset against the first at
  equal FLOPs, Bonferroni over the baselines); its per-baseline tests (interpolated in log
  FLOPs) stand beside it, secondary.
- **The Tables 3/7 compare verdicts** (a ``compare`` sweep): :func:`compare_pooled` states one
  OLS over every row, seed as a block (:func:`scaler.findings_pooled.compare_model`), compound
  against each single dimension with Bonferroni over them; :func:`compare_verdicts` pairs the
  compound network with each single-dimension network seed by seed (:func:`paired_runs`) by a
  paired t-test (:class:`Versus`), secondary; :func:`compare_findings` and
  :func:`compare_caveats` state them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scaler.findings_pooled import PooledModel, baseline_model, compare_model, paired_runs
from scaler.results import (
    Noise,
    StudyData,
    finished,
    flops_column,
    noise,
    same_threads,
    seeds_of,
    threads_sentence,
)
from scaler.stats import difference_test, paired_test, standard_error
from scaler.stats_pooled import MIN_FIT_DF

COMPARE_ORDER = ("depth", "width", "resolution")  # the rows of the paper's Table 3
BASE_SERIES = "base"  # a compare sweep's series of the unscaled base network (stored)
COMPARE_LEVEL = 0.95  # family-wise: Bonferroni over the single dimensions compared
LEVEL = 0.95  # of every other verdict here (two-sided)


def fmt_flops(x: float) -> str:
    """4633536 → "4.63 MFLOPs" (3 significant digits, the largest fitting unit)."""
    for unit, scale_ in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale_:
            return f"{x / scale_:.3g} {unit}FLOPs"
    return f"{x:.3g} FLOPs"


@dataclass(frozen=True)
class Versus:
    """The compound network against one single-dimension network, paired seed by seed."""

    dim: str
    label: str
    flops_ratio: float  # the compound network's measured FLOPs at the cost pixels ÷ its
    diff: float  # compound − it: the mean of the paired differences (top-1 points)
    n: int  # paired seeds
    t: float  # paired t statistic (nan below 2 pairs)
    df: int
    p: float  # two-sided
    low: float  # the difference's interval at the family-wise level (Bonferroni)
    high: float
    level: float  # each interval's own level: 1 - (1 - COMPARE_LEVEL) / comparisons

    @property
    def verdict(self) -> str:
        if self.n == 0:
            return "not tested: no seed pairs (no common seed at one CPU thread count)"
        if self.n < 2:
            return "not tested: one paired seed (give --seeds 2 or more)"
        if self.low > 0:
            return "compound higher"
        if self.high < 0:
            return "compound lower"
        return "not resolved by the noise"

    def describe(self) -> str:
        """One line: the difference, its test and its verdict."""
        head = (
            f"compound vs {self.label} ({self.flops_ratio:.2f}× its FLOPs): {self.diff:+.2f} "
            f"points over {self.n} paired seed{'s' if self.n != 1 else ''}"
        )
        if self.n == 0:
            return f"compound vs {self.label} ({self.flops_ratio:.2f}× its FLOPs) → {self.verdict}."
        if self.n < 2:
            return f"{head} → {self.verdict}."
        return (
            f"{head}, paired t = {self.t:.2f}, df = {self.df}, p = {self.p:.3g}; "
            f"{self.level:.1%} interval [{self.low:+.2f}, {self.high:+.2f}] → {self.verdict}."
        )


def compare_verdicts(frame, level: float = COMPARE_LEVEL) -> list[Versus]:
    """Compound against each single dimension of a compare sweep (none without the compound).

    A paired t-test on the per-seed differences (df = pairs − 1,
    :func:`scaler.stats.paired_test`); the intervals hold family-wise at ``level`` by
    Bonferroni over the dimensions compared.
    """
    done = finished(frame)
    if done is None or done.empty:
        return []
    by_series = {r["series"]: r for _, r in done.iterrows()}
    compound = by_series.get("compound")
    singles = [by_series[d] for d in COMPARE_ORDER if d in by_series]
    if compound is None or not singles:
        return []
    mine, each = paired_runs(compound), 1.0 - (1.0 - level) / len(singles)
    out = []
    for row in singles:
        theirs = paired_runs(row)
        # Runs pair only at one CPU thread count: otherwise no pair, no test.
        seeds = sorted(set(mine) & set(theirs)) if same_threads([compound, row]) else []
        test = paired_test([mine[s] for s in seeds], [theirs[s] for s in seeds], each)
        out.append(
            Versus(
                dim=str(row["series"]),
                label=str(row["label"]),
                flops_ratio=float(compound["cost_flops"]) / float(row["cost_flops"]),
                diff=test.diff,
                n=len(seeds),
                t=test.t,
                df=test.df,
                p=test.p,
                low=test.low,
                high=test.high,
                level=each,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------
# the Figure 1 verdict: each series' trend, each baseline against the first at equal FLOPs
# ----------------------------------------------------------------------------------------------


def series_of(done) -> list[tuple[str, Any]]:
    """(label, rows) of every series of a sweep's finished rows, in the frame's order."""
    return [(str(rows["label"].iloc[0]), rows) for _, rows in done.groupby("series", sort=False)]


def _where(column: str) -> str:
    return "r × 224 px" if column == "cost_flops" else "the proxy's pixels"


def _interp(rows, flops: float, column: str = "flops") -> float | None:
    """Top-1 of a series at ``flops`` by linear interpolation in log FLOPs (None outside it)."""
    pts = sorted(zip(rows[column].astype(float), rows["top1_mean"].astype(float), strict=True))
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if x0 <= flops <= x1:
            if x1 == x0:
                return (y0 + y1) / 2
            t = (math.log(flops) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    if len(pts) == 1 and pts[0][0] == flops:
        return pts[0][1]
    return None


def _trend_test(gain: float, se: float, dof: int) -> str:
    """ "; t = …, df, p: beyond (or within) the noise" of a series' gain ("; no noise estimate")."""
    test = difference_test(gain, se, dof, LEVEL) if se > 0 else None
    if test is None or not test.tested:
        return "; no noise estimate"
    side = "beyond" if test.called else "within"
    return f"; t = {test.t:.2f}, {test.df} df, two-sided p = {test.p:.3f}: {side} the noise"


def series_findings(s: StudyData, nz: Noise) -> list[str]:
    """How top-1 moved along each series of a sweep (first against last point, a t-test on the
    pooled σ ``nz`` with its degrees of freedom), and for Figure 1 the baselines' verdict."""
    done = s.finished
    out = []
    for label, series in series_of(done):
        rows = series.sort_values("flops")
        if len(rows) < 2:
            out.append(f"{label}: only one finished point, no trend yet.")
            continue
        lo, hi = rows.iloc[0], rows.iloc[-1]
        gain = float(hi["top1_mean"]) - float(lo["top1_mean"])
        se = standard_error(nz.sigma, seeds_of(lo), seeds_of(hi))
        best = rows.loc[rows["top1_mean"].astype(float).idxmax()]
        name = str(best.get("value_name") or "")
        out.append(
            f"{label}: top-1 went from {float(lo['top1_mean']):.2f} % at "
            f"{float(lo['flops']) / 1e6:.1f} MFLOPs to {float(hi['top1_mean']):.2f} % at "
            f"{float(hi['flops']) / 1e6:.1f} MFLOPs ({gain:+.2f} points"
            f"{_trend_test(gain, se, nz.dof)}); the best point is "
            f"{name}={float(best['point_value']):g} with {float(best['top1_mean']):.2f} %."
        )
    if s.config.get("sweep") == "width-by-baseline":
        out += baseline_findings(done, s.frame)
    return out


def _baseline_call(diffs: list[float], n: float, n_ref: float, nz: Noise):
    """(call, the sentence's test part) of one baseline's mean difference over its points."""
    mean, m = sum(diffs) / len(diffs), len(diffs)
    if not nz.usable:
        return "no noise estimate", f" ({nz.describe()}: nothing can be called)"
    test = difference_test(mean, _se(nz, n, n_ref, m), nz.dof, LEVEL)
    side = "above" if mean > 0 else "below"
    call = side if test.called else "not distinguishable"
    return call, f" (t = {test.t:.2f}, {nz.dof} df, two-sided p = {test.p:.3f}: {call})"


def _se(nz: Noise, n: float, n_ref: float, m: int) -> float:
    """The standard error of a mean difference over m points of n and n_ref runs each."""
    return nz.sigma * math.sqrt(1 / n + 1 / n_ref) / math.sqrt(m)


def baseline_findings(done, frame) -> list[str]:
    """Each baseline against the first (d=1, r=1) series at equal FLOPs, by a t test, then the
    pooled model over every run and its verdict on the paper's ordering (every other baseline
    above the first), which is the primary one.

    A baseline's points are compared with the first series interpolated (in log FLOPs) at their
    FLOPs; the mean difference over m points has standard error σ·√(1/n + 1/n_ref)/√m, σ pooled
    over the sweep's repeated runs with its degrees of freedom.
    """
    groups = series_of(done)
    if len(groups) < 2:
        return []
    nz = noise(frame)
    x = flops_column(done)  # the FLOPs Figure 1 is drawn at: the cost resolution's, if stored
    ref_label, ref = groups[0]
    n_ref = max(1.0, float(ref["seeds"].fillna(1).mean()))
    out = []
    for label, rows in groups[1:]:
        diffs = [
            float(r["top1_mean"]) - y
            for _, r in rows.iterrows()
            if (y := _interp(ref, float(r[x]), x)) is not None
        ]
        if not diffs:
            out.append(
                f"{label} and {ref_label} share no FLOPs range: they cannot be compared at equal "
                "FLOPs (more widths, or a higher --max-flops, would give them one)."
            )
            continue
        mean, m = sum(diffs) / len(diffs), len(diffs)
        n = max(1.0, float(rows["seeds"].fillna(1).mean()))
        _, sig = _baseline_call(diffs, n, n_ref, nz)
        out.append(
            f"At equal FLOPs, {label} is {mean:+.2f} points against {ref_label} on average over "
            f"{m} point(s) (interpolated in log FLOPs at {_where(x)}){sig}."
        )
    return out + _pooled_baselines(baseline_model(done, x), ref_label)


def _pooled_baselines(model: PooledModel | None, ref_label: str) -> list[str]:
    """The primary Figure 1 verdict: one OLS over every run of the sweep, each baseline's offset
    against the first at equal FLOPs with its 95 % interval. The paper's ordering holds only
    when every interval lies above 0 (an intersection-union test: the claim errs at most 5 %
    with no correction); it is contradicted when an interval at the Bonferroni level over the
    baselines lies below 0."""
    if model is None:
        return []
    if model.fit is None or model.fit.df < MIN_FIT_DF:
        why = model.why or f"{model.fit.df} residual df"
        return [f"The pooled Figure 1 model ({model.formula}) cannot be fitted: {why}."]
    parts = [o.text() for o in model.offsets]
    holds = bool(model.offsets) and all(o.test.direction == "higher" for o in model.offsets)
    against = any(o.family.direction == "lower" for o in model.offsets)
    verdict = "holds" if holds else "is contradicted" if against else "is not shown"
    return [
        f"Pooled Figure 1 model, primary ({model.head()}): each baseline against {ref_label} "
        f"at equal FLOPs (log FLOPs linear), 95 % intervals: {'; '.join(parts)} points.",
        f"The paper's ordering (every deeper or higher-resolution baseline above {ref_label} at "
        f"equal FLOPs) {verdict} by the pooled model at the 5 % level (it holds only if every "
        "95 % interval lies above 0, an intersection-union test; contradicted if one "
        f"{model.family_level:.1%} Bonferroni interval lies below 0): {_calls_text(model)}. "
        "The per-baseline interpolated tests above are secondary.",
    ]


def _calls_text(model: PooledModel) -> str:
    def word(o) -> str:
        if o.test.direction == "higher":
            return "above"
        return "below" if o.family.direction == "lower" else "not distinguishable"

    return "; ".join(f"{o.label} {word(o)}" for o in model.offsets)


# ----------------------------------------------------------------------------------------------
# the Tables 3/7 verdicts in words
# ----------------------------------------------------------------------------------------------


def is_compare(s: StudyData) -> bool:
    return s.kind == "sweep" and s.config.get("sweep") == "compare"


def compare_findings(s: StudyData) -> list[str]:
    """A compare sweep's verdicts: the pooled model first (compound against each dimension over
    every row, seed as a block), then the paired tests, secondary."""
    versus = compare_verdicts(s.frame)
    if not versus:
        return [f"{s.name}: the compound network or every single-dimension one has no result yet."]
    where = f"{s.config.get('base', 'efficientnet-b0')} at {s.config.get('budget'):g}×"
    pooled = compare_pooled(s.frame)
    head = [f"{s.name} ({where}): {pooled}"] if pooled else []
    return head + [f"{s.name} ({where}): {v.describe()}" for v in versus]


def compare_pooled(frame) -> str:
    """The pooled compare verdict in one sentence ("" without the compound network)."""
    done = finished(frame)
    model = None if done is None or done.empty else compare_model(done, COMPARE_ORDER)
    if model is None or not model.offsets:
        return ""
    if model.fit is None or model.fit.df < MIN_FIT_DF:
        return f"the pooled model ({model.formula}) cannot be fitted: {model.why or 'df'}."
    words = {"higher": "compound higher", "lower": "compound lower", "": "not resolved"}
    parts = [f"{o.text()} → {words[o.test.direction]}" for o in model.offsets]
    return (
        f"pooled model, primary (the paired tests below are secondary; {model.head()}): "
        "compound minus each single dimension, "
        f"{model.each_level:.1%} intervals (Bonferroni over {len(model.offsets)}): "
        + "; ".join(parts)
        + "."
    )


def compare_caveats(s: StudyData) -> list[str]:
    """What a compare sweep's equal FLOPs do not cover: the proxy's own input size."""
    done = s.finished
    rows = {r["series"]: r for _, r in done.iterrows()}
    compound = rows.get("compound")
    others = [r for key, r in rows.items() if key not in (BASE_SERIES, "compound")]
    if compound is None or not others:
        return []
    ratios = [float(r["flops"]) / float(compound["flops"]) for r in others]
    return threads_sentence([compound, *others], f"{s.name}: its runs") + [
        f"{s.name}: its networks cost the same at r × {s.config.get('cost_pixels', 224)} px, "
        f"where the budget is matched, but at the proxy's small inputs the single-dimension "
        f"networks cost {min(ratios):.2f}× to {max(ratios):.2f}× the compound one's FLOPs "
        "(feature maps round differently there): the proxy compares them at unequal compute."
    ]
