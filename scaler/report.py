"""A README report of searches and sweeps: configuration, results, figures and plain findings.

``write_report`` writes ``reports/<name>/README.md`` with, for every study: its configuration,
its results (a search's leaderboard with the noise floor and ties, nominal against measured
cost, the exported coefficients and their family; a sweep's points per series and the points it
skipped), the figures (PNG and SVG beside the README) and ``trials.csv`` (every trial, with the
state and the reason of those without a result).

The findings are computed from the data, never written in advance: what the curves show, and
whether compound scaling beat every single dimension at equal measured FLOPs, judged against
the noise floor. A search's leaderboard marks the candidates that could be the best
(:data:`scaler.results.RULE`, t quantiles with σ's degrees of freedom; nothing is declared
below 2 df), and its confirmation stage (:mod:`scaler.confirm`) gives proxy fidelity, P(best)
and the test-split verdict. When the studies needed for a claim are missing, the report
says which ones.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaler import __version__
from scaler.bases import EFFICIENTNET_B0, from_config
from scaler.confirm import sentences, summarize
from scaler.files import check_out_dir, write_files
from scaler.plots import (
    describe_setup,
    figures_for,
    flops_column,
    multipliers_text,
    render,
    setup_key,
)
from scaler.records import CANDIDATE_ROLES
from scaler.results import (
    Noise,
    StudyData,
    best_candidate,
    confirmed,
    finished,
    leaderboard,
    load_studies,
    noise,
    seeds_of,
    standard_error,
)
from scaler.results import isnan as _nan
from scaler.scaling import check_phi_max
from scaler.stats import two_sided_p

# A single-dimension point is "at equal FLOPs" with a compound point within this ratio.
EQUAL_FLOPS = 1.5
DIMENSIONS = ("width", "depth", "resolution")
# Table headers of the report's sections.
BOARD_HEADERS = (
    "#",
    "role",
    "α",
    "β",
    "γ",
    "px (proxy/cost)",
    "top-1 %",
    "seeds",
    "",
    "params (M)",
    "MFLOPs (proxy)",
    "status",
)
COST_HEADERS = ("#", "α", "β", "γ", "nominal ×", "measured ×", "proxy ×")
FAMILY_HEADERS = (
    "φ",
    "d",
    "w",
    "r",
    "pixels",
    "layers",
    "params (M)",
    "GFLOPs",
    "nominal ×",
    "measured ×",
)
POINT_HEADERS = (
    "point",
    "d",
    "w",
    "r",
    "px",
    "layers",
    "params (M)",
    "MFLOPs (proxy)",
    "MFLOPs (r × 224 px)",
    "top-1 %",
    "seeds",
    "status",
)


# ----------------------------------------------------------------------------------------------
# small formatting helpers
# ----------------------------------------------------------------------------------------------


def _f(x: Any, fmt: str = ".3f", empty: str = "") -> str:
    return empty if _nan(x) else format(float(x), fmt)


def _m(x: Any, fmt: str = ".2f") -> str:
    """A count in millions ("" when missing)."""
    return "" if _nan(x) else format(float(x) / 1e6, fmt)


def _int(x: Any) -> str:
    return "" if _nan(x) else str(int(x))


def _cell(x: Any) -> str:
    text = "" if x is None else str(x)
    return text.replace("|", "\\|").replace("\n", " ")


_NUMBER = re.compile(r"^[-+]?[0-9][0-9.,]*( ± [0-9.]+)?$")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; columns whose cells are all numbers are right-aligned."""
    head = "| " + " | ".join(_cell(h) for h in headers) + " |"
    numeric = [
        all(_NUMBER.match(_cell(r[i])) for r in rows if _cell(r[i]))
        and any(_cell(r[i]) for r in rows)
        for i in range(len(headers))
    ]
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    body = ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _top1(row) -> str:
    if _nan(row.get("top1_mean")):
        return ""
    seeds = seeds_of(row)
    std = f" ± {float(row['top1_std']):.2f}" if seeds > 1 and not _nan(row.get("top1_std")) else ""
    return f"{float(row['top1_mean']):.2f}{std}"


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in config.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            text = value if isinstance(value, str) else json.dumps(_short(value), default=str)
            rows.append((prefix + key, text))
    return rows


def _short(value: Any) -> Any:
    """Floats to 10 significant digits: a step stored as 0.19999999999999996 reads 0.2."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, list):
        return [_short(v) for v in value]
    return value


def _status_text(row) -> str:
    """A row's status, naming the trial a reused result was copied from."""
    return row["status"] + (
        f" from #{int(row['reused_from'])}" if row["status"] == "reused" else ""
    )


def _series(done) -> list[tuple[str, Any]]:
    """(label, rows) of every series of a sweep's finished rows, in the frame's order."""
    return [(str(rows["label"].iloc[0]), rows) for _, rows in done.groupby("series", sort=False)]


def _ranked(frame) -> tuple[Noise, Any]:
    """A search frame's noise floor and its leaderboard under that floor."""
    nz = noise(frame)
    return nz, leaderboard(frame, nz)


def _states(frame) -> str:
    if frame.empty:
        return "no trials"
    counts = frame["status"].fillna("").value_counts()
    return ", ".join(f"{n} {k}" for k, n in counts.items())


# ----------------------------------------------------------------------------------------------
# findings: computed statements
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A compound point against the single-dimension point closest to it in measured FLOPs."""

    dim: str
    label: str  # the single-dimension point, e.g. "width w=1.4"
    flops_ratio: float  # its FLOPs ÷ the compound point's
    gap: float  # compound top-1 − single top-1 (points)
    se: float  # standard error of the gap (nan without a noise estimate)

    @property
    def comparable(self) -> bool:
        return 1 / EQUAL_FLOPS <= self.flops_ratio <= EQUAL_FLOPS

    @property
    def verdict(self) -> str:
        """better, worse or tied (within 2 SE); judged by sign alone without a noise estimate."""
        if math.isfinite(self.se):
            if abs(self.gap) <= 2 * self.se:
                return "tied"
        elif self.gap == 0:
            return "tied"
        return "better" if self.gap > 0 else "worse"


def _dimension(row) -> str | None:
    """The one multiplier a sweep point scales ("width", ...), "base", or None when several."""
    try:
        m = {k: float(row.get(k)) for k in DIMENSIONS}
    except (TypeError, ValueError):
        return None
    moved = [k for k, v in m.items() if abs(v - 1.0) > 1e-9]
    if not moved:
        return "base"
    return moved[0] if len(moved) == 1 else None


def compound_points(studies: Sequence[StudyData]) -> list[tuple[str, Any]]:
    """(description, row) of every compound point: each search's best, compound sweeps φ >= 1."""
    out = []
    for s in studies:
        done = s.finished
        if done is None or done.empty:
            continue
        if s.kind == "search":
            best = best_candidate(done)
            if best is not None:
                desc = (
                    f"the best candidate of {s.name} ({multipliers_text(best, ', ')}, "
                    f"{int(best['pixels'])} px)"
                )
                out.append((desc, best))
        elif s.kind == "sweep" and s.config.get("sweep") == "compound":
            for _, r in done.iterrows():
                if not _nan(r.get("phi")) and int(r["phi"]) >= 1:
                    out.append((f"compound φ={int(r['phi'])} of {s.name}", r))
    return out


def single_points(studies: Sequence[StudyData]):
    """Finished sweep points that scale exactly one dimension, with a ``dim`` column."""
    import pandas as pd

    parts = []
    for s in studies:
        done = s.finished
        if s.kind != "sweep" or done is None or done.empty:
            continue
        done = done.copy()
        done["dim"] = [_dimension(r) for _, r in done.iterrows()]
        parts.append(done[done["dim"].isin(DIMENSIONS)])
    return pd.concat(parts, ignore_index=True) if parts else None


def match(compound_row, singles, sigma: float) -> list[Match]:
    """The closest single-dimension point in FLOPs for each dimension that has one."""
    out = []
    flops = float(compound_row["flops"])
    for dim in DIMENSIONS:
        rows = singles[singles["dim"] == dim] if singles is not None else None
        if rows is None or rows.empty:
            continue
        logs = (rows["flops"].astype(float) / flops).map(lambda x: abs(math.log(x)))
        r = rows.loc[logs.idxmin()]
        sym = {"width": "w", "depth": "d", "resolution": "r"}[dim]
        out.append(
            Match(
                dim=dim,
                label=f"{dim} {sym}={float(r[dim]):g} ({int(r['pixels'])} px)",
                flops_ratio=float(r["flops"]) / flops,
                gap=float(compound_row["top1_mean"]) - float(r["top1_mean"]),
                se=standard_error(sigma, seeds_of(compound_row), seeds_of(r)),
            )
        )
    return out


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


def _series_findings(s: StudyData, sigma: float) -> list[str]:
    done = s.finished
    out = []
    for label, series in _series(done):
        rows = series.sort_values("flops")
        if len(rows) < 2:
            out.append(f"{label}: only one finished point, no trend yet.")
            continue
        lo, hi = rows.iloc[0], rows.iloc[-1]
        gain = float(hi["top1_mean"]) - float(lo["top1_mean"])
        se = standard_error(sigma, seeds_of(lo), seeds_of(hi))
        if math.isfinite(se) and se > 0:
            side = "beyond" if abs(gain) > 2 * se else "within"
            sig = f"; {abs(gain) / se:.1f} standard errors, {side} the noise"
        else:
            sig = "; no noise estimate"
        best = rows.loc[rows["top1_mean"].astype(float).idxmax()]
        name = str(best.get("value_name") or "")
        out.append(
            f"{label}: top-1 went from {float(lo['top1_mean']):.2f} % at "
            f"{float(lo['flops']) / 1e6:.1f} MFLOPs to {float(hi['top1_mean']):.2f} % at "
            f"{float(hi['flops']) / 1e6:.1f} MFLOPs ({gain:+.2f} points{sig}); the best point is "
            f"{name}={float(best['point_value']):g} with {float(best['top1_mean']):.2f} %."
        )
    if s.config.get("sweep") == "width-by-baseline":
        out += _baseline_findings(done, s.frame)
    return out


def _compare_findings(s: StudyData) -> list[str]:
    """A compare sweep's verdicts: compound against each dimension alone, paired by seed."""
    from scaler.sweeps import compare_verdicts

    versus = compare_verdicts(s.frame)
    if not versus:
        return [f"{s.name}: the compound network or every single-dimension one has no result yet."]
    where = f"{s.config.get('base', 'efficientnet-b0')} at {s.config.get('budget'):g}×"
    return [f"{s.name} ({where}): {v.describe()}" for v in versus]


def _is_compare(s: StudyData) -> bool:
    return s.kind == "sweep" and s.config.get("sweep") == "compare"


def _compare_caveats(s: StudyData) -> list[str]:
    """What a compare sweep's equal FLOPs do not cover: the proxy's own input size."""
    done = s.finished
    rows = {r["series"]: r for _, r in done.iterrows()}
    compound = rows.get("compound")
    others = [r for key, r in rows.items() if key not in ("base", "compound")]
    if compound is None or not others:
        return []
    ratios = [float(r["flops"]) / float(compound["flops"]) for r in others]
    return [
        f"{s.name}: its networks cost the same at r × {s.config.get('cost_pixels', 224)} px, "
        f"where the budget is matched, but at the proxy's small inputs the single-dimension "
        f"networks cost {min(ratios):.2f}× to {max(ratios):.2f}× the compound one's FLOPs "
        "(feature maps round differently there): the proxy compares them at unequal compute."
    ]


def _baseline_findings(done, frame) -> list[str]:
    """Each baseline against the first (d=1, r=1) series at equal FLOPs, by a t test, and the
    one-line verdict on the paper's ordering (every other baseline above the first).

    A baseline's points are compared with the first series interpolated (in log FLOPs) at their
    FLOPs; the mean difference over m points has standard error σ·√(1/n + 1/n_ref)/√m, σ pooled
    over the sweep's repeated runs with its degrees of freedom.
    """

    groups = _series(done)
    if len(groups) < 2:
        return []
    nz = noise(frame)
    x = flops_column(done)  # the FLOPs Figure 1 is drawn at: the cost resolution's, if stored
    ref_label, ref = groups[0]
    n_ref = max(1.0, float(ref["seeds"].fillna(1).mean()))
    out, calls = [], []
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
            calls.append(f"{label}: no common FLOPs")
            continue
        mean, m = sum(diffs) / len(diffs), len(diffs)
        n = max(1.0, float(rows["seeds"].fillna(1).mean()))
        if nz.usable:
            se = nz.sigma * math.sqrt(1 / n + 1 / n_ref) / math.sqrt(m)
            t = mean / se if se > 0 else math.inf
            p = two_sided_p(t, nz.dof)
            side = "above" if mean > 0 else "below"
            call = side if p < 0.05 else "not distinguishable"
            sig = f" (t = {t:.2f}, {nz.dof} df, two-sided p = {p:.3f}: {call})"
        else:
            call, sig = "no noise estimate", f" ({nz.describe()}: nothing can be called)"
        calls.append(f"{label} {mean:+.2f} points, {call}")
        out.append(
            f"At equal FLOPs, {label} is {mean:+.2f} points against {ref_label} on average over "
            f"{m} point(s) (interpolated in log FLOPs at {_where(x)}){sig}."
        )
    holds = all(c.endswith("above") for c in calls)
    against = any(c.endswith("below") for c in calls)
    verdict = "holds" if holds else "is contradicted" if against else "is not shown"
    out.append(
        f"The paper's ordering (every deeper or higher-resolution baseline above {ref_label} at "
        f"equal FLOPs) {verdict} here, at the 5 % level: {'; '.join(calls)}."
    )
    return out


def findings(studies: Sequence[StudyData]) -> tuple[list[str], list[str]]:
    """(what the data show, what they do not show), computed from the studies."""
    sigmas, shows, lacks = _noise_floors(studies)
    sigma = next(iter(sigmas.values())) if len(sigmas) == 1 else math.nan
    for s in studies:
        study_shows, study_lacks = _study_findings(s, sigmas)
        shows += study_shows
        lacks += study_lacks
    cmp_shows, cmp_lacks = _comparison_findings(studies, sigma)
    return shows + cmp_shows, lacks + cmp_lacks + _proxy_caveats(studies)


def _noise_floors(studies: Sequence[StudyData]) -> tuple[dict[str, float], list[str], list[str]]:
    """σ by setup key, with what the data show and do not show about each noise floor."""
    import pandas as pd

    shows: list[str] = []
    lacks: list[str] = []
    # Noise depends on the proxy: it is pooled only over studies trained with the same setup.
    by_setup: dict[str, list[StudyData]] = {}
    for s in studies:
        by_setup.setdefault(setup_key(s.config), []).append(s)
    sigmas: dict[str, float] = {}
    for key, group in by_setup.items():
        frames = [s.frame for s in group if not s.frame.empty]
        pooled = noise(pd.concat(frames, ignore_index=True)) if frames else Noise(math.nan, 0)
        sigmas[key] = pooled.sigma
        names = ", ".join(s.name for s in group)
        if pooled.usable:
            crit = pooled.critical()
            shows.append(
                f"Noise floor of {names}: {pooled.describe()}, pooled over its repeated "
                f"runs; two single runs must differ by more than "
                f"{crit * standard_error(pooled.sigma, 1, 1):.2f} points ({crit:.2f} standard "
                f"errors, the 95 % t quantile for {pooled.dof} df) before the difference means "
                "anything."
            )
        elif math.isfinite(pooled.sigma):
            lacks.append(
                f"{names} has {pooled.describe()}: the 95 % t quantile for {pooled.dof} df is "
                f"{pooled.critical():.1f}, so no difference can be called significant "
                "(--base-seeds 3 or --seeds 2 give more degrees of freedom)."
            )
        else:
            lacks.append(
                f"There is no noise estimate for {names} (no point was trained with 2 or more "
                "seeds under its proxy settings): none of its differences can be called "
                "significant. --seeds 2 gives one."
            )
    return sigmas, shows, lacks


def _study_findings(s: StudyData, sigmas: dict[str, float]) -> tuple[list[str], list[str]]:
    """What one study's own results show, and the points it skipped (what they do not show)."""
    if s.finished is None or s.finished.empty:
        return [f"{s.name} has no finished trial yet ({_states(s.frame)})."], []
    shows: list[str] = []
    lacks: list[str] = []
    if s.kind == "search":
        shows += _search_findings(s)
    elif _is_compare(s):
        shows += _compare_findings(s)
        lacks += _compare_caveats(s)
    elif s.kind == "sweep":
        shows += _series_findings(s, sigmas[setup_key(s.config)])
    skipped = s.frame[s.frame["status"] == "skipped"] if not s.frame.empty else s.frame
    if not len(skipped):
        return shows, lacks
    return shows, lacks + [
        f"{s.name}: {len(skipped)} point(s) were not trained (over --max-flops or beyond "
        "the pixels the data serve), so its curves stop early: they say nothing about "
        "larger networks."
    ]


def _comparison_findings(studies: Sequence[StudyData], sigma: float) -> tuple[list[str], list[str]]:
    """Compound against single dimensions, when every study was trained with the same setup.

    Compare sweeps hold their own comparison (:func:`_compare_findings`) and stay out of this one.
    """
    studies = [s for s in studies if not _is_compare(s)]
    if not studies:
        return [], []
    if len({setup_key(s.config) for s in studies if s.kind != "unknown"}) > 1:
        return [], [
            "The studies were trained with different data or proxy settings, so they are not "
            "compared with each other (compound against single dimensions included): that "
            "needs them trained with the same data and proxy."
        ]
    return _compound_findings(studies, sigma)


def _proxy_caveats(studies: Sequence[StudyData]) -> list[str]:
    """The caveat that every point is a short proxy run, once per distinct proxy setup."""
    setups: dict[str, list[str]] = {}  # one caveat per distinct setup, naming its studies
    for s in studies:
        if s.kind == "unknown":
            continue
        proxy = s.config.get("proxy") or {}
        run = (
            f"{proxy.get('images')} images"
            if proxy.get("images")
            else f"{proxy.get('epochs')} epoch(s)"
        )
        text = (
            f"a short proxy run ({run} at a {proxy.get('base_pixels')} px base on "
            f"{s.config.get('data')})"
        )
        setups.setdefault(text, []).append(s.name)
    return [
        f"Every point of {', '.join(names)} is {text}: rankings after full training on a "
        "large data set may differ, and accuracy here is not ImageNet accuracy."
        for text, names in setups.items()
    ]


def _search_findings(s: StudyData) -> list[str]:
    nz, board = _ranked(s.frame)
    best = board[board["best"]]
    if best.empty:
        return [f"{s.name}: no candidate finished (only the base)."]
    b = best.iloc[0]
    out = []
    base = board[board["role"] == "base"]
    # A reused twin is the best's own network: it is no rival, so it is not counted.
    rivals = board["possibly_best"] & ~board["best"] & (board["network_key"] != b["network_key"])
    tied = int(rivals.sum())
    text = (
        f"{s.name}: the best candidate is {multipliers_text(b, ', ')} with {_top1(b)} % top-1 "
        f"at {float(b['cost_ratio']):.2f}× the base's measured FLOPs"
    )
    if not base.empty:
        gap = float(b["top1_mean"]) - float(base.iloc[0]["top1_mean"])
        se = standard_error(nz.sigma, seeds_of(b), seeds_of(base.iloc[0]))
        if math.isfinite(se) and se > 0 and nz.dof >= 1:
            p = two_sided_p(gap / se, nz.dof)
            side = "significant" if p < 0.05 else "not significant"
            text += (
                f", {gap:+.2f} points over the base (t = {gap / se:.1f} with {nz.dof} df, "
                f"two-sided p = {p:.2f}: {side} at 5 %; picked and scored on the same val "
                "split, so optimistic)"
            )
        else:
            text += f", {gap:+.2f} points over the base (no noise estimate)"
    out.append(text + ".")
    if nz.usable:
        out.append(
            f"{s.name}: {tied} other network(s) could be the best too (95 % set)"
            + (": the search cannot tell them apart." if tied else ".")
        )
    else:
        out.append(f"{s.name}: which candidates could be the best is not stated: {nz.describe()}.")
    conf = summarize(s.frame, s.attrs, s.config)
    return out + [f"{s.name}: {x}" for x in sentences(conf)]


def _compound_findings(studies: Sequence[StudyData], sigma: float) -> tuple[list[str], list[str]]:
    compounds = compound_points(studies)
    singles = single_points(studies)
    have = set() if singles is None else set(singles["dim"])
    if not compounds and not have:
        return [], [
            "Whether compound scaling beats scaling one dimension at equal FLOPs: this needs a "
            "search (or a compound sweep) and single-dimension sweeps (`scaler sweep single "
            "--dim all`) with the same data and proxy, reported together."
        ]
    if not compounds:
        return [], [
            "Whether compound scaling beats the single dimensions at equal FLOPs: this needs a "
            "search or a compound sweep (`scaler sweep compound`) in the same report."
        ]
    if not have:
        return [], [
            "Whether compound scaling beats every single dimension at equal FLOPs: this needs "
            "single-dimension sweeps (`scaler sweep single --dim all`, same data and proxy) in "
            "the same report."
        ]
    shows, lacks = [], []
    for desc, row in compounds:
        matches = match(row, singles, sigma)
        parts, beaten, open_ = [], [], []
        for m in matches:
            where = f"{m.label}, {m.flops_ratio:.2f}× its FLOPs"
            noise = f", {abs(m.gap) / m.se:.1f} SE" if math.isfinite(m.se) and m.se > 0 else ""
            if not m.comparable:
                open_.append(m.dim)
                parts.append(f"{m.dim}: closest point {where} — not at equal FLOPs")
                continue
            parts.append(f"{m.dim}: {m.gap:+.2f} points vs {where}{noise} → {m.verdict}")
            if m.verdict == "better":
                beaten.append(m.dim)
        missing = [d for d in DIMENSIONS if d not in {m.dim for m in matches}]
        head = (
            f"Compound vs single dimensions for {desc}, {_top1(row)} % at "
            f"{float(row['flops']) / 1e6:.1f} MFLOPs: "
        )
        if len(beaten) == len(DIMENSIONS):
            verdict = "it beat every single dimension at equal measured FLOPs"
        elif beaten:
            verdict = f"it beat {', '.join(beaten)} only"
        else:
            verdict = "it beat no single dimension beyond the noise"
        if not math.isfinite(sigma):
            verdict += " (judged by sign alone: no noise estimate)"
        shows.append(head + verdict + " (" + "; ".join(parts) + ").")
        if missing or open_:
            lacks.append(
                f"For {desc}, no single-dimension point at equal FLOPs (within {EQUAL_FLOPS}×) "
                f"exists for {', '.join(missing + open_)}: sweep more values there."
            )
    return shows, lacks


# ----------------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------------


def _config_section(s: StudyData) -> list[str]:
    lines = [f"Setup: {describe_setup(s.config)}.", ""]
    if s.config:
        lines += [md_table(["setting", "value"], _flatten(s.config)), ""]
    versions = s.attrs.get("versions")
    if versions:
        lines += [
            "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
            "",
        ]
    return lines


def _no_result_section(frame) -> list[str]:
    done = finished(frame).index.union(confirmed(frame).index)
    rest = frame[~frame.index.isin(done)]
    if rest.empty:
        return []
    rows = [
        [r["number"], r["state"], r["status"], r.get("series") or r.get("role") or "", r["reason"]]
        for _, r in rest.iterrows()
    ]
    return [
        "Trials without a result:",
        "",
        md_table(["#", "state", "status", "point", "reason"], rows),
        "",
    ]


def _family_rows(rows) -> list[list[str]]:
    """Family rows as table cells; a ``*`` on the pixels of members past the builder's limit."""
    return [
        [
            r.phi,
            f"{r.depth:.3f}",
            f"{r.width:.3f}",
            f"{r.resolution:.3f}",
            f"{r.pixels}*" if r.limit else r.pixels,
            r.layers,
            f"{r.params / 1e6:.2f}",
            f"{r.flops / 1e9:.3f}",
            f"{r.nominal_cost:.2f}",
            f"{r.measured_cost:.2f}",
        ]
        for r in rows
    ]


def _family_table(coeffs, phi_max: int, base_res: int, net=EFFICIENTNET_B0) -> list[str]:
    """The family φ = 0..phi_max (members past the builder's limit too, marked and footnoted)."""
    from scaler.scaling import family

    rows = family(coeffs, phi_max, base_res, base=net)
    lines = [md_table(FAMILY_HEADERS, _family_rows(rows)), ""]
    past = [f"φ = {r.phi} ({r.limit})" for r in rows if r.limit]
    if past:
        lines += [
            "\\* Past the builder's limit, so never built: parameters and FLOPs are exact, "
            f"from the Spec alone. {'; '.join(past)}.",
            "",
        ]
    return lines


def _search_section(s: StudyData, phi_max: int) -> list[str]:
    """A search's leaderboard, noise floor, costs and coefficients, and its trials without one."""
    nz, board = _ranked(s.frame)
    lines = _leaderboard_lines(board, nz.usable) + _noise_lines(nz)
    cands = board[board["role"].isin(CANDIDATE_ROLES)] if not board.empty else board
    conf = summarize(s.frame, s.attrs, s.config)
    lines += _confirmation_lines(conf)
    if not cands.empty:
        lines += _cost_lines(s, cands)
        chosen = cands[cands["best"]].iloc[0]
        if conf.chosen is not None:
            chosen = s.frame.set_index("number", drop=False).loc[conf.chosen.trial]
        lines += _coefficients_lines(s, chosen, phi_max)
    return lines + _no_result_section(s.frame)


CONFIRM_HEADERS = ("search #", "role", "α", "β", "γ", "search top-1 %", "confirm top-1 %")
CONFIRM_HEADERS += ("runs", "P(best)", "95 % set", "test top-1 %")


def _confirmation_lines(c) -> list[str]:
    """The confirmation stage: its table and its sentences."""
    lines = ["### Confirmation", ""]
    if c.rows:
        rows = [
            [
                r.trial,
                r.role,
                _f(r.alpha),
                _f(r.beta),
                _f(r.gamma),
                f"{r.search_top1:.2f}",
                f"{r.top1:.2f}" + (f" ± {r.std:.2f}" if r.std is not None else ""),
                r.runs,
                "" if r.p_best is None else f"{r.p_best:.2f}",
                "" if r.possibly_best is None else ("possibly" if r.possibly_best else ""),
                "" if r.test_top1 is None else f"{r.test_top1:.2f}",
            ]
            for r in c.rows
        ]
        proxy = c.proxy
        images = proxy.get("images")
        run = f"{images} images" if images else f"{proxy.get('epochs')} epochs"
        lines += [
            f"Settings: top {c.settings.get('top')}, {c.settings.get('seeds')} paired seeds, "
            f"{run} per run ({c.state}). Top-1 on val; the test split is reported, never "
            "used to choose.",
            "",
            md_table(CONFIRM_HEADERS, rows),
            "",
        ]
    return lines + [f"- {x}" for x in sentences(c)] + [""]


def _set_cell(r, usable: bool) -> str:
    """best, possibly (in the 95 % set), or ? for a candidate without a usable noise estimate."""
    if r["best"]:
        return "best"
    if r["role"] == "base":
        return ""
    return ("possibly" if r["possibly_best"] else "") if usable else "?"


def _leaderboard_lines(board, usable: bool = True) -> list[str]:
    """The leaderboard table (or a line saying there is nothing to rank yet)."""
    lines = ["### Leaderboard", ""]
    if board.empty:
        return lines + ["No finished trial yet: nothing to rank.", ""]
    rows = [
        [
            r["number"],
            r["role"],
            _f(r["alpha"]),
            _f(r["beta"]),
            _f(r["gamma"]),
            f"{_int(r['pixels'])}/{_int(r['cost_pixels'])}",
            _top1(r),
            seeds_of(r),
            _set_cell(r, usable),
            _m(r["params"]),
            _m(r["flops"], ".1f"),
            _status_text(r),
        ]
        for _, r in board.iterrows()
    ]
    return lines + [md_table(BOARD_HEADERS, rows), ""]


def _noise_lines(nz: Noise) -> list[str]:
    """The noise floor with its degrees of freedom, and the "possibly best" rule."""
    verdict = (
        "The last column marks them (best, possibly)."
        if nz.usable
        else "Without a usable estimate no candidate is declared possibly best or ruled out (?)."
    )
    return [
        "### Noise floor and the candidates that could be the best",
        "",
        f"Noise floor: {nz.describe()}. Rule: {nz.rule}. {verdict}",
        "",
    ]


def _cost_lines(s: StudyData, cands) -> list[str]:
    """The candidates' nominal cost against their measured one, at the cost and proxy pixels."""
    rows = [
        [
            r["number"],
            _f(r["alpha"]),
            _f(r["beta"]),
            _f(r["gamma"]),
            _f(r["nominal_cost"]),
            _f(r["cost_ratio"]),
            _f(r["proxy_cost_ratio"]),
        ]
        for _, r in cands.iterrows()
    ]
    miss = (cands["cost_ratio"].astype(float) / cands["nominal_cost"].astype(float) - 1).abs()
    trained = cands[cands["status"] == "trained"]["proxy_cost_ratio"].astype(float)
    spread = (
        [
            f"At the proxy's pixels the trained candidates cost {trained.min():.2f}–"
            f"{trained.max():.2f}× the base.",
            "",
        ]
        if len(trained)
        else []
    )
    return [
        "### Nominal vs measured cost",
        "",
        f"The budget is {s.config.get('budget')}× the base. Nominal cost is α·β²·γ²; measured is "
        f"fvcore FLOPs ÷ the base's at {s.config.get('cost_pixels')} px (the constraint is "
        f"{s.config.get('constraint')}); proxy is the same ratio at the proxy's pixels. "
        f"Measured differs from nominal by up to {miss.max():.0%} here.",
        "",
        md_table(COST_HEADERS, rows),
        "",
        *spread,
    ]


def _coefficients_lines(s: StudyData, best, phi_max: int) -> list[str]:
    """The coefficients per unit φ of the best candidate, and their family φ = 0..phi_max."""
    from scaler.scaling import Coefficients

    budget = s.config.get("budget")
    phi = float(s.config.get("phi", math.log2(float(budget or 2))))
    base_res = int(s.config.get("cost_pixels", 224))
    net = from_config(s.config)
    coeffs = Coefficients.from_multipliers(
        float(best["alpha"]), float(best["beta"]), float(best["gamma"]), phi
    )
    return [
        "### Exported coefficients",
        "",
        f"Per unit φ (φ = {phi:g} at this budget): α = {coeffs.alpha:.4f}, "
        f"β = {coeffs.beta:.4f}, γ = {coeffs.gamma:.4f} (α·β²·γ² = {coeffs.product:.3f}); "
        f"write them with `scaler export {s.name}`. The family at {base_res} px, 1000 "
        "classes (FLOPs: fvcore's convention, from the exact cost model):",
        "",
        *_family_table(coeffs, phi_max, base_res, net),
    ]


COMPARE_HEADERS = ("network", "d", "w", "r", "px (proxy)", "MFLOPs (cost px)", "× base")
COMPARE_HEADERS += ("MFLOPs (proxy)", "top-1 %", "runs", "compound − it", "paired t (df)", "p")
COMPARE_HEADERS += ("verdict",)


def _compare_lines(s: StudyData) -> list[str]:
    """A compare sweep in the layout of the paper's Table 3, with each paired test."""
    from scaler.sweeps import COMPARE_ORDER, compare_verdicts

    done = s.finished
    if done is None or done.empty:
        return []
    tests = {v.dim: v for v in compare_verdicts(s.frame)}
    by_series = {r["series"]: r for _, r in done.iterrows()}
    base = by_series.get("base")
    rows = []
    for key in ("base", "compound", *COMPARE_ORDER):
        r = by_series.get(key)
        if r is None:
            continue
        v = tests.get(key)
        ratio = float(r["cost_flops"]) / float(base["cost_flops"]) if base is not None else None
        rows.append(
            [
                r["label"],
                _f(r["depth"], ".3g"),
                _f(r["width"], ".3g"),
                _f(r["resolution"], ".3g"),
                _int(r["pixels"]),
                _m(r["cost_flops"]),
                _f(ratio, ".2f"),
                _m(r["flops"]),
                _top1(r),
                seeds_of(r),
                f"{v.diff:+.2f}" if v else "",
                f"{v.t:.2f} ({v.df})" if v and v.n >= 2 else "",
                _f(v.p, ".3g") if v and v.n >= 2 else "",
                v.verdict if v else "",
            ]
        )
    budget, px = s.config.get("budget"), s.config.get("cost_pixels", 224)
    return [
        "### Compound against one dimension (the paper's Table 3 layout)",
        "",
        f"Every network is solved to {budget:g}× the base's measured FLOPs at r × {px} px; "
        "each trains with the same seeds, so compound − it is the mean of per-seed differences, "
        "tested by a paired t-test (df = pairs − 1). A verdict needs the difference's interval "
        "to exclude 0 at 95 % over the comparisons together (Bonferroni); otherwise it is not "
        "resolved by the noise.",
        "",
        md_table(COMPARE_HEADERS, rows),
        "",
    ]


def _sweep_section(s: StudyData) -> list[str]:
    """A sweep's points, one table per series, the FLOPs cap and its trials without a result."""
    if s.config.get("sweep") == "compare":
        return _compare_lines(s) + _no_result_section(s.frame)
    lines = ["### Points", ""]
    done = s.finished
    if done is None or done.empty:
        lines += ["No finished trial yet: nothing to show.", ""]
    else:
        for label, rows in _series(done):
            table = [_point_row(r) for _, r in rows.sort_values("flops").iterrows()]
            lines += [f"**{label}**", "", md_table(POINT_HEADERS, table), ""]
    cap = s.attrs.get("max_flops")
    if cap:
        from scaler.sweeps import fmt_flops

        where = "r × 224 px" if s.attrs.get("max_flops_at") == "cost" else "the proxy's pixels"
        lines += [f"The last run capped points at {fmt_flops(cap)} at {where} (--max-flops).", ""]
    return lines + _no_result_section(s.frame)


def _point_row(r) -> list[Any]:
    """The table cells of one sweep point."""
    return [
        f"{r['value_name']}={float(r['point_value']):g}",
        _f(r["depth"], ".3g"),
        _f(r["width"], ".3g"),
        _f(r["resolution"], ".3g"),
        _int(r["pixels"]),
        _int(r["layers"]),
        _m(r["params"]),
        _m(r["flops"]),
        _m(r.get("cost_flops")),
        _top1(r),
        seeds_of(r),
        _status_text(r),
    ]


def build_markdown(studies: Sequence[StudyData], figures: Sequence[str], phi_max: int = 7) -> str:
    """The README text of a report over ``studies`` linking the figure files ``figures``."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    names = ", ".join(s.name for s in studies)
    lines = [
        f"# Report: {names}",
        "",
        f"Written {now} by scaler {__version__}. FLOPs are fvcore's (one multiply-add = one "
        "flop); top-1 is on the data's held-out split after the proxy run.",
        "",
        md_table(
            ["study", "kind", "storage", "trials", "states"],
            [
                [
                    s.name,
                    s.kind if s.kind != "sweep" else f"sweep ({s.config.get('sweep')})",
                    s.storage,
                    len(s.frame),
                    _states(s.frame),
                ]
                for s in studies
            ],
        ),
        "",
    ]
    shows, lacks = findings(studies)
    lines += ["## What the data show", ""]
    lines += [f"- {x}" for x in shows] or ["- Nothing yet."]
    lines += ["", "## What the data do not show", ""]
    lines += [f"- {x}" for x in lacks] or ["- (no caveat computed)"]
    lines += [""]
    pngs = [f for f in figures if f.endswith(".png")]
    if pngs:
        lines += ["## Figures", ""]
        for f in pngs:
            svg = f[: -len(".png")] + ".svg"
            lines += [f"![{f}]({f})", "", f"[{svg}]({svg})", ""]
    for s in studies:
        lines += [f"## {s.name} ({s.kind})", "", "### Configuration", ""]
        lines += _config_section(s)
        if s.kind == "search":
            lines += _search_section(s, phi_max)
        elif s.kind == "sweep":
            lines += _sweep_section(s)
        elif s.frame.empty or s.finished.empty:
            lines += ["No finished trial: nothing to report.", ""]
        else:
            lines += ["Not a scaler search or sweep: only its trials are listed.", ""]
    lines += [
        "## Files",
        "",
        "- `trials.csv`: every trial of every study, with its state, status and the reason of "
        "those without a result (failed, pruned, infeasible, skipped, lost).",
        "- Figures: PNG for reading, SVG for print (text kept as text).",
        "",
    ]
    return "\n".join(lines)


def trials_csv(studies: Sequence[StudyData]) -> bytes:
    """Every trial of every study as CSV (lists as JSON), the study name first."""
    import pandas as pd

    frames = [s.frame for s in studies]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "study" in frame:
        frame = frame[["study"] + [c for c in frame.columns if c != "study"]]
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, (list, tuple, dict))).any():
            frame[col] = frame[col].map(
                lambda v: json.dumps(v) if isinstance(v, (list, tuple, dict)) else v
            )
    return frame.to_csv(index=False).encode()


def write_report_files(
    study_names: Sequence[str],
    storage: str | None = None,
    out: Path | None = None,
    phi_max: int = 7,
) -> list[Path]:
    """Write the report (see :func:`write_report`); returns every path written, README last."""
    names = list(study_names)
    if not names:
        raise ValueError("no study given: name at least one study")
    check_phi_max(phi_max)
    out = check_out_dir(Path(out) if out is not None else default_out(names))
    studies = load_studies(names, storage)
    files = render(figures_for(studies))
    text = build_markdown(studies, list(files), phi_max)
    files["trials.csv"] = trials_csv(studies)
    files["README.md"] = text.encode()  # last: a README always has its files beside it
    return write_files(out, files)


def write_report(
    study_names: Sequence[str],
    storage: str | None = None,
    out: Path | None = None,
    phi_max: int = 7,
) -> Path:
    """Write ``README.md``, ``trials.csv`` and the figures to ``out`` (default
    reports/<first study>/); returns the README's path. Everything is read and rendered before
    the first file is written, and each file is written atomically."""
    return write_report_files(study_names, storage, out, phi_max)[-1]


def default_out(names: Sequence[str]) -> Path:
    """reports/<first study name>/."""
    return Path("reports") / names[0]


def plot_studies(
    names: Sequence[str], storage: str | None = None, out: Path | None = None
) -> list[Path]:
    """Write the PNG and SVG figures of the studies to ``out`` (default reports/<name>/)."""
    if not names:
        raise ValueError("no study given: name at least one study")
    out = check_out_dir(out or default_out(names))
    return write_files(out, render(figures_for(load_studies(names, storage))))
