"""What the data show: the statistical findings of a report's studies, and their sentences.

This is the findings layer. Running modules (:mod:`scaler.searches`, :mod:`scaler.sweeps`,
:mod:`scaler.confirm`, :mod:`scaler.calibrate`, :mod:`scaler.noise`) import their findings from
it; presentation (:mod:`scaler.report`, :mod:`scaler.plots`, the CLI) imports findings, never a
running module (tests/test_layering.py). Every rule for "better" is :mod:`scaler.stats`'s; the
frames are :mod:`scaler.results`'s.

- here: the noise floors, a search's best candidate against the base and its rivals, compound
  scaling against single dimensions at equal FLOPs (:class:`Match`), the proxy caveats, and
  :func:`findings`, a report's "what the data show / do not show";
- :mod:`scaler.findings_sweeps`: the Figure 1 verdict and the Tables 3/7 compare verdicts;
- :mod:`scaler.findings_confirm`: the confirmation's verdict (proxy fidelity, P(best), the test
  split, the edge warning);
- :mod:`scaler.findings_calibration`: a calibration's τ statistics and its report;
- :mod:`scaler.findings_noise`: where a run's noise comes from (``scaler noise``);
- :mod:`scaler.findings_pooled`: the pooled models (a search's response surface, Figure 1's
  and Tables 3/7's blocked models).

The findings are computed from the data, never written in advance. When the studies needed for
a claim are missing, they say which ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scaler.findings_confirm import sentences, summarize
from scaler.findings_sweeps import (
    compare_caveats,
    compare_findings,
    is_compare,
    series_findings,
)
from scaler.records import BASE_ROLE
from scaler.results import (
    LEVEL,
    Noise,
    StudyData,
    best_candidate,
    leaderboard,
    multipliers_text,
    noise,
    seeds_of,
    setup_key,
)
from scaler.results import isnan as _nan
from scaler.stats import DifferenceTest, difference_test, standard_error

# A single-dimension point is "at equal FLOPs" with a compound point within this ratio.
EQUAL_FLOPS = 1.5
DIMENSIONS = ("width", "depth", "resolution")


def top1_text(row) -> str:
    """A row's mean top-1, with its standard deviation when it has several seeds."""
    if _nan(row.get("top1_mean")):
        return ""
    seeds = seeds_of(row)
    std = f" ± {float(row['top1_std']):.2f}" if seeds > 1 and not _nan(row.get("top1_std")) else ""
    return f"{float(row['top1_mean']):.2f}{std}"


def states_text(frame) -> str:
    """How many trials of a frame are in each status ("3 trained, 1 failed")."""
    if frame.empty:
        return "no trials"
    counts = frame["status"].fillna("").value_counts()
    return ", ".join(f"{n} {k}" for k, n in counts.items())


def ranked(frame, metric: str = "top1") -> tuple[Noise, Any]:
    """A search frame's noise floor and its leaderboard under that floor, both of ``metric``."""
    nz = noise(frame, metric)
    return nz, leaderboard(frame, nz, metric)


# ----------------------------------------------------------------------------------------------
# compound scaling against single dimensions at equal FLOPs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A compound point against the single-dimension point closest to it in measured FLOPs."""

    dim: str
    label: str  # the single-dimension point, e.g. "width w=1.4"
    flops_ratio: float  # its FLOPs ÷ the compound point's
    gap: float  # compound top-1 − single top-1 (points)
    se: float  # standard error of the gap (nan without a noise estimate)
    df: int = 0  # degrees of freedom of the σ behind ``se``

    @property
    def comparable(self) -> bool:
        return 1 / EQUAL_FLOPS <= self.flops_ratio <= EQUAL_FLOPS

    @property
    def test(self) -> DifferenceTest:
        """The t-test of the gap on σ's degrees of freedom (:mod:`scaler.stats`)."""
        return difference_test(self.gap, self.se, self.df, LEVEL)

    @property
    def verdict(self) -> str:
        """better, worse or tied (not resolved by the t-test at 95 %); judged by sign alone
        without a noise estimate."""
        test = self.test
        if test.tested:
            return {"higher": "better", "lower": "worse"}.get(test.direction, "tied")
        if self.gap == 0:
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


def match(compound_row, singles, nz: Noise) -> list[Match]:
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
                se=standard_error(nz.sigma, seeds_of(compound_row), seeds_of(r)),
                df=nz.dof,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------
# a report's findings
# ----------------------------------------------------------------------------------------------


def findings(studies: Sequence[StudyData]) -> tuple[list[str], list[str]]:
    """(what the data show, what they do not show), computed from the studies."""
    floors, shows, lacks = _noise_floors(studies)
    nz = next(iter(floors.values())) if len(floors) == 1 else Noise(math.nan, 0)
    for s in studies:
        study_shows, study_lacks = _study_findings(s, floors)
        shows += study_shows
        lacks += study_lacks
    cmp_shows, cmp_lacks = _comparison_findings(studies, nz)
    return shows + cmp_shows, lacks + cmp_lacks + _proxy_caveats(studies)


def _noise_floors(studies: Sequence[StudyData]) -> tuple[dict[str, Noise], list[str], list[str]]:
    """The noise floor by setup key, with what the data show and do not show about each."""
    import pandas as pd

    shows: list[str] = []
    lacks: list[str] = []
    # Noise depends on the proxy: it is pooled only over studies trained with the same setup.
    by_setup: dict[str, list[StudyData]] = {}
    for s in studies:
        by_setup.setdefault(setup_key(s.config), []).append(s)
    floors: dict[str, Noise] = {}
    for key, group in by_setup.items():
        frames = [s.frame for s in group if not s.frame.empty]
        pooled = noise(pd.concat(frames, ignore_index=True)) if frames else Noise(math.nan, 0)
        floors[key] = pooled
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
    return floors, shows, lacks


def _study_findings(s: StudyData, floors: dict[str, Noise]) -> tuple[list[str], list[str]]:
    """What one study's own results show, and the points it skipped (what they do not show)."""
    if s.finished is None or s.finished.empty:
        return [f"{s.name} has no finished trial yet ({states_text(s.frame)})."], []
    shows: list[str] = []
    lacks: list[str] = []
    if s.kind == "search":
        shows += _search_findings(s)
    elif is_compare(s):
        shows += compare_findings(s)
        lacks += compare_caveats(s)
    elif s.kind == "sweep":
        shows += series_findings(s, floors[setup_key(s.config)])
    skipped = s.frame[s.frame["status"] == "skipped"] if not s.frame.empty else s.frame
    if not len(skipped):
        return shows, lacks
    return shows, lacks + [
        f"{s.name}: {len(skipped)} point(s) were not trained (over --max-flops or beyond "
        "the pixels the data serve), so its curves stop early: they say nothing about "
        "larger networks."
    ]


def _comparison_findings(studies: Sequence[StudyData], nz: Noise) -> tuple[list[str], list[str]]:
    """Compound against single dimensions, when every study was trained with the same setup.

    Compare sweeps hold their own comparison (:func:`scaler.findings_sweeps.compare_findings`)
    and stay out of this one.
    """
    studies = [s for s in studies if not is_compare(s)]
    if not studies:
        return [], []
    if len({setup_key(s.config) for s in studies if s.kind != "unknown"}) > 1:
        return [], [
            "The studies were trained with different data or proxy settings, so they are not "
            "compared with each other (compound against single dimensions included): that "
            "needs them trained with the same data and proxy."
        ]
    return _compound_findings(studies, nz)


def _proxy_caveats(studies: Sequence[StudyData]) -> list[str]:
    """The caveat that every point is a short proxy run, once per distinct proxy setup."""
    setups: dict[str, list[str]] = {}  # one caveat per distinct setup, naming its studies
    for s in studies:
        if s.kind == "unknown":
            continue
        settings = s.config.get("proxy") or {}
        run = (
            f"{settings.get('images')} images"
            if settings.get("images")
            else f"{settings.get('epochs')} epoch(s)"
        )
        text = (
            f"a short proxy run ({run} at a {settings.get('base_pixels')} px base on "
            f"{s.config.get('data')})"
        )
        setups.setdefault(text, []).append(s.name)
    return [
        f"Every point of {', '.join(names)} is {text}: rankings after full training on a "
        "large data set may differ, and accuracy here is not ImageNet accuracy."
        for text, names in setups.items()
    ]


def _search_findings(s: StudyData) -> list[str]:
    nz, board = ranked(s.frame)
    best = board[board["best"]]
    if best.empty:
        return [f"{s.name}: no candidate finished (only the base)."]
    b = best.iloc[0]
    out = []
    base_rows = board[board["role"] == BASE_ROLE]
    # A reused twin is the best's own network: it is no rival, so it is not counted.
    rivals = board["possibly_best"] & ~board["best"] & (board["network_key"] != b["network_key"])
    tied = int(rivals.sum())
    text = (
        f"{s.name}: the best candidate is {multipliers_text(b, ', ')} with {top1_text(b)} % top-1 "
        f"at {float(b['cost_ratio']):.2f}× the base's measured FLOPs"
    )
    if not base_rows.empty:
        gap = float(b["top1_mean"]) - float(base_rows.iloc[0]["top1_mean"])
        se = standard_error(nz.sigma, seeds_of(b), seeds_of(base_rows.iloc[0]))
        test = difference_test(gap, se, nz.dof, LEVEL)
        # A σ from the base's two runs (1 df) is no noise estimate: a t on it (0.5 printed t =
        # 11.0 where σ pooled over the study's 28 runs gave t = 1.0) says nothing.
        if test.tested and se > 0 and nz.usable:
            side = "significant" if test.called else "not significant"
            text += (
                f", {gap:+.2f} points over the base (t = {test.t:.1f} with {nz.dof} df, "
                f"two-sided p = {test.p:.2f}: {side} at 5 %; picked and scored on the same val "
                "split, so optimistic)"
            )
        elif not nz.usable:
            text += f", {gap:+.2f} points over the base, untested ({nz.describe()})"
        else:  # σ = 0: repeated runs that agree exactly estimate nothing
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


def _compound_findings(studies: Sequence[StudyData], nz: Noise) -> tuple[list[str], list[str]]:
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
        matches = match(row, singles, nz)
        parts, beaten, open_ = [], [], []
        for m in matches:
            where = f"{m.label}, {m.flops_ratio:.2f}× its FLOPs"
            test = m.test
            noise = f", t = {test.t:.1f} with {test.df} df" if test.tested and m.se > 0 else ""
            if not m.comparable:
                open_.append(m.dim)
                parts.append(f"{m.dim}: closest point {where} — not at equal FLOPs")
                continue
            parts.append(f"{m.dim}: {m.gap:+.2f} points vs {where}{noise} → {m.verdict}")
            if m.verdict == "better":
                beaten.append(m.dim)
        missing = [d for d in DIMENSIONS if d not in {m.dim for m in matches}]
        head = (
            f"Compound vs single dimensions for {desc}, {top1_text(row)} % at "
            f"{float(row['flops']) / 1e6:.1f} MFLOPs: "
        )
        if len(beaten) == len(DIMENSIONS):
            verdict = "it beat every single dimension at equal measured FLOPs"
        elif beaten:
            verdict = f"it beat {', '.join(beaten)} only"
        else:
            verdict = "it beat no single dimension beyond the noise"
        if not math.isfinite(nz.sigma):
            verdict += " (judged by sign alone: no noise estimate)"
        shows.append(head + verdict + " (" + "; ".join(parts) + ").")
        if missing or open_:
            lacks.append(
                f"For {desc}, no single-dimension point at equal FLOPs (within {EQUAL_FLOPS}×) "
                f"exists for {', '.join(missing + open_)}: sweep more values there."
            )
    return shows, lacks
