"""Pooled evidence: one model over every run instead of one test per point.

One run of the proxy has σ ≈ 3.5 points and candidates at equal FLOPs differ by 1–3, so a test of
one point against another rarely resolves anything. The findings here fit one least-squares
model over every run of a study (:func:`scaler.stats_pooled.ols_fit`, statsmodels OLS; every
t interval on its residual df) and state what it gives:

- **a search's response surface** (:func:`search_surface`): top-1 per run as a quadratic in
  (log α, log β) along the budget's curve (γ follows from the budget), seed as a block, the
  largest model the trained candidates identify with at least
  :data:`scaler.stats_pooled.MIN_FIT_DF` residual df; its optimum in the searched box and the 95 %
  region where the optimum could be (the points not below the fitted optimum in 5 % of the
  parametric bootstrap's draws), beside the best observed point;
- **the Figure 1 verdict** (:func:`baseline_model`): ``top1 ~ C(baseline) + log_flops +
  C(seed)`` over every run of a width-by-baseline sweep, each baseline's offset against the
  first at equal FLOPs (Bonferroni over the baselines);
- **the Tables 3/7 verdicts** (:func:`compare_model`): ``top1 ~ C(dimension) + C(seed)`` over
  every row of a compare sweep, compound against each single dimension (Bonferroni over them).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from scaler.records import CANDIDATE_ROLES
from scaler.results import finished
from scaler.stats_pooled import (
    MIN_FIT_DF,
    LinearFit,
    SurfaceOptimum,
    fit_contrasts,
    ols_fit,
    plane_through,
    surface_fit,
    surface_grid,
    surface_optimum,
    surface_values,
)

LEVEL = 0.95  # family-wise, of every pooled verdict here
OPTIMUM_GRID = 41  # the surface's optimum and region are sought on a 41 × 41 grid of the box
SURFACE_NEEDS = (
    "3 distinct (α, β) not on one line and 5 runs for a plane, 5 points and 7 runs for a "
    "quadratic without the α·β term, 6 points and 8 runs for the full quadratic (each with "
    f"{MIN_FIT_DF} residual df; one run more for each seed beyond the first)"
)


def paired_runs(row) -> dict[int, float]:
    """Seed → top-1 of one finished point (seed k is the same seed for every point)."""
    tops, seeds = row.get("top1_seeds"), row.get("seed_list")
    if isinstance(tops, str):
        tops, seeds = json.loads(tops), json.loads(seeds) if isinstance(seeds, str) else seeds
    if not isinstance(tops, list):
        return {}
    if not isinstance(seeds, list) or len(seeds) != len(tops):
        seeds = list(range(len(tops)))  # written before seeds were stored: k-th run, seed k
    return {int(s): float(t) for s, t in zip(seeds, tops, strict=True)}


def runs_table(rows, **columns):
    """One row per run of ``rows`` (top1, seed) with each of ``columns``' row → value."""
    import pandas as pd

    out = []
    for _, r in rows.iterrows():
        extra = {k: f(r) for k, f in columns.items()}
        out += [{"top1": t, "seed": s, **extra} for s, t in paired_runs(r).items()]
    return pd.DataFrame(out, columns=["top1", "seed", *columns])


# ----------------------------------------------------------------------------------------------
# a search's response surface
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Surface:
    """A search's fitted response surface, its optimum and the best observed point."""

    why: str  # why there is no surface ("" when there is one)
    runs: int
    points: int
    fit: LinearFit | None = None
    model: str = ""
    box: tuple = ((0.0, 0.0), (0.0, 0.0))  # ((log α range), (log β range))
    gamma_plane: tuple = (0.0, 0.0, 0.0)  # log γ ≈ c0 + c1 log α + c2 log β (the candidates)
    optimum: SurfaceOptimum | None = None
    best: tuple = ()  # (α, β, γ, mean top-1) of the best observed point

    def gamma(self, la: float, lb: float) -> float:
        c0, c1, c2 = self.gamma_plane
        return math.exp(c0 + c1 * la + c2 * lb)

    def optimum_abg(self) -> tuple[float, float, float]:
        o = self.optimum
        return math.exp(o.la), math.exp(o.lb), self.gamma(o.la, o.lb)

    def region_text(self) -> str:
        o = self.optimum
        (a0, a1), (b0, b1) = o.region_la, o.region_lb
        return f"α {math.exp(a0):.3f}–{math.exp(a1):.3f}, β {math.exp(b0):.3f}–{math.exp(b1):.3f}"

    def describe(self) -> str:
        """One sentence: the model, the fitted optimum with its region, the best observed."""
        if self.fit is None:
            return f"no response surface: {self.why}."
        a, b, g = self.optimum_abg()
        ba, bb, bg, bt = self.best
        at_edge = "" if self._inside() else " (on the box's edge: the optimum may lie outside)"
        return (
            f"response surface ({self.model} in log α, log β, {self._block()}; OLS over "
            f"{self.runs} runs of {self.points} candidates, {self.fit.df} residual df, "
            f"σ = {self.fit.sigma:.2f}): fitted optimum α={a:.3f}, β={b:.3f}, γ={g:.3f} "
            f"({self.optimum.top1:.2f} % fitted){at_edge}; it could be anywhere in "
            f"{self.region_text()} ({self.optimum.share:.0%} of the searched box: the points "
            f"not below it in {1 - self.optimum.level:.0%} of {self.optimum.draws} "
            "parametric-bootstrap draws); best "
            f"observed α={ba:.3f}, β={bb:.3f}, γ={bg:.3f} with {bt:.2f} %."
        )

    def _block(self) -> str:
        return "seed as a block" if "C(seed)" in self.fit.formula else "one seed, no block"

    def _inside(self) -> bool:
        (a0, a1), (b0, b1) = self.box
        o = self.optimum
        return a0 < o.la < a1 and b0 < o.lb < b1

    def grid(self, n: int = 60):
        """(α, β, fitted top-1) on an n × n grid over the searched box, for contours."""
        import numpy as np

        (a0, a1), (b0, b1) = self.box
        la, lb = np.meshgrid(np.linspace(a0, a1, n), np.linspace(b0, b1, n), indexing="ij")
        return np.exp(la), np.exp(lb), surface_values(self.fit, la, lb)

    def region_grid(self):
        """(α, β, 1 inside the optimum's region else 0) on the optimum's own grid (for a filled
        contour)."""
        import numpy as np

        la, lb, _ = surface_grid(self.box, OPTIMUM_GRID)
        cells = {(round(a, 9), round(b, 9)) for a, b in self.optimum.cells}
        inside = [(round(a, 9), round(b, 9)) in cells for a, b in zip(la, lb, strict=True)]
        shape = (OPTIMUM_GRID, OPTIMUM_GRID)
        mask = np.array(inside, dtype=float).reshape(shape)
        return np.exp(la).reshape(shape), np.exp(lb).reshape(shape), mask

    def export_dict(self, chosen_by: str) -> dict[str, Any]:
        """What an export's statistics say of the surface, and which coefficients it holds."""
        return {**self.to_dict(), "exported_coefficients": coefficients_note(chosen_by)}

    def to_dict(self) -> dict[str, Any]:
        if self.fit is None:
            return {"fitted": False, "why": self.why, "runs": self.runs, "points": self.points}
        a, b, g = self.optimum_abg()
        return {
            "fitted": True,
            "formula": self.fit.formula,
            "model": self.model,
            "runs": self.runs,
            "points": self.points,
            "residual_df": self.fit.df,
            "sigma": self.fit.sigma,
            "coefficients": dict(zip(self.fit.names, self.fit.params, strict=True)),
            "optimum": {"alpha": a, "beta": b, "gamma": g, "top1": self.optimum.top1},
            "region": {
                "level": self.optimum.level,
                "alpha": [math.exp(x) for x in self.optimum.region_la],
                "beta": [math.exp(x) for x in self.optimum.region_lb],
                "draws": self.optimum.draws,
                "share_of_box": self.optimum.share,
                "rule": "grid points not below the fitted optimum in at least 1 - level of "
                "the coefficient draws (multivariate t)",
            },
            "best_observed": dict(zip(("alpha", "beta", "gamma", "top1"), self.best, strict=True)),
        }


def coefficients_note(chosen_by: str) -> str:
    """Which coefficients an export holds beside the surface, and why (one sentence)."""
    who = "the confirmation's pick" if chosen_by == "confirmation" else "the search's best"
    return (
        f"The exported coefficients are the chosen candidate's ({who}), a network that was "
        "trained; the surface's optimum is an estimate between trained points, given beside "
        "them and not exported."
    )


def _box(config: dict, la, lb) -> tuple:
    """The searched box in log α, log β: the study's ranges, else the candidates' span."""
    box = []
    for key, vals in (("alpha_range", la), ("beta_range", lb)):
        r = (config or {}).get(key)
        lo, hi = (math.log(float(r[0])), math.log(float(r[1]))) if r else (min(vals), max(vals))
        box.append((min(lo, min(vals)), max(hi, max(vals))))
    return tuple(box)


def search_surface(frame, config: dict | None = None, draws: int = 2000) -> Surface:
    """The response surface over a search's trained candidates (the search stage only: the
    base is off the budget's curve, reused twins repeat a run, confirmation runs are another
    stage)."""
    done = finished(frame)
    if done is None or done.empty:
        return Surface("no finished candidate", 0, 0)
    rows = done[done["role"].isin(CANDIDATE_ROLES) & (done["status"] == "trained")]
    table = runs_table(
        rows,
        la=lambda r: math.log(float(r["alpha"])),
        lb=lambda r: math.log(float(r["beta"])),
        lg=lambda r: math.log(float(r["gamma"])),
    )
    points = len(table[["la", "lb"]].round(9).drop_duplicates())
    fitted = None
    if len(table):
        fitted = surface_fit(table["la"], table["lb"], table["top1"], table["seed"])
    if fitted is None:
        why = f"{points} candidates and {len(table)} runs; it needs {SURFACE_NEEDS}"
        return Surface(why, len(table), points)
    fit, model = fitted
    box = _box(config, table["la"], table["lb"])
    means = table.groupby(["la", "lb", "lg"], as_index=False)["top1"].mean()
    top = means.loc[means["top1"].idxmax()]
    return Surface(
        why="",
        runs=len(table),
        points=points,
        fit=fit,
        model=model,
        box=box,
        gamma_plane=plane_through(table["la"], table["lb"], table["lg"]),
        optimum=surface_optimum(fit, box, LEVEL, draws, n=OPTIMUM_GRID),
        best=tuple(float(x) for x in (*map(math.exp, top[["la", "lb", "lg"]]), top["top1"])),
    )


# ----------------------------------------------------------------------------------------------
# Figure 1 and Tables 3/7: one model over every run, contrasts against a reference level
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offset:
    """One level's coefficient against the reference: its t-test at the model's stated level,
    and at the Bonferroni level over every offset of the model."""

    label: str
    test: Any  # scaler.stats.DifferenceTest, at PooledModel.each_level
    family: Any = None  # the same at 1 − (1 − LEVEL)/offsets

    def text(self) -> str:
        t = self.test
        if not t.tested:
            return f"{self.label} {t.diff:+.2f} (untested)"
        return f"{self.label} {t.diff:+.2f} [{t.low:+.2f}, {t.high:+.2f}]"


@dataclass(frozen=True)
class PooledModel:
    """A fitted pooled model and its offsets against the reference level."""

    formula: str  # as written (the reference level named)
    fit: LinearFit | None
    runs: int
    offsets: tuple[Offset, ...]
    why: str = ""
    bonferroni: bool = True  # each offset's interval at the Bonferroni level (else at LEVEL)

    @property
    def family_level(self) -> float:
        return 1.0 - (1.0 - LEVEL) / max(len(self.offsets), 1)

    @property
    def each_level(self) -> float:
        return self.family_level if self.bonferroni else LEVEL

    def head(self) -> str:
        """ "OLS over n runs: formula, residual df d, σ = s" """
        return (
            f"OLS over {self.runs} runs: {self.formula}, {self.fit.df} residual df, "
            f"σ = {self.fit.sigma:.2f}"
        )

    def to_dict(self) -> dict[str, Any]:
        if self.fit is None:
            return {"fitted": False, "why": self.why}
        return {
            "formula": self.formula,
            "runs": self.runs,
            "residual_df": self.fit.df,
            "sigma": self.fit.sigma,
            "level_each": self.each_level,
            "offsets": {
                o.label: {"estimate": o.test.diff, "low": o.test.low, "high": o.test.high}
                for o in self.offsets
            },
        }


def _pooled(table, term, labels, formula, ref, wanted=None, bonferroni=True) -> PooledModel:
    """Fit ``formula`` (``{ref}``: the reference code) and test the ``wanted`` levels (default:
    every other level) against it, each at 95 % and at the Bonferroni level over them."""
    block = " + C(seed)" if table["seed"].nunique() > 1 else ""
    fit = ols_fit(formula.format(ref=ref) + block, table)
    shown = formula.format(ref=labels[ref]) + block
    if fit is None:
        return PooledModel(shown, None, len(table), (), "the design leaves no residual df")
    wanted = [c for c in labels if c != ref] if wanted is None else wanted
    codes = [c for c in wanted if f"{term}[T.{c}]" in fit.names]
    names = [f"{term}[T.{c}]" for c in codes]
    family = fit_contrasts(fit, names, LEVEL)
    each = family if bonferroni else [fit_contrasts(fit, [n], LEVEL)[0] for n in names]
    offsets = tuple(Offset(labels[c], t, f) for c, t, f in zip(codes, each, family, strict=True))
    return PooledModel(shown, fit, len(table), offsets, "", bonferroni)


def baseline_model(done, x: str) -> PooledModel | None:
    """``top1 ~ C(baseline, Treatment(first)) + log_flops + C(seed)`` over every run of a
    width-by-baseline sweep (``x``: the FLOPs column): each baseline's offset against the first
    series at equal FLOPs (log FLOPs enters linearly). None with one series."""
    order = list(dict.fromkeys(done["series"]))
    if len(order) < 2:
        return None
    codes = {s: f"b{i}" for i, s in enumerate(order)}
    labels = {codes[s]: str(done[done["series"] == s]["label"].iloc[0]) for s in order}
    table = runs_table(
        done, baseline=lambda r: codes[r["series"]], log_flops=lambda r: math.log(float(r[x]))
    )
    term = "C(baseline, Treatment('{ref}'))"
    formula = f"top1 ~ {term} + log_flops"
    return _pooled(table, term.format(ref="b0"), labels, formula, "b0", bonferroni=False)


def compare_model(done, singles: tuple[str, ...]) -> PooledModel | None:
    """``top1 ~ C(dimension, Treatment('compound')) + C(seed)`` over every row of a compare
    sweep (the base included: it informs σ and the seeds' effects): compound minus each of
    ``singles`` (the sign turned so that > 0 means compound higher)."""
    if "compound" not in set(done["series"]):
        return None
    labels = {str(s): str(s) for s in done["series"]}
    table = runs_table(done, dimension=lambda r: str(r["series"]))
    term = "C(dimension, Treatment('{ref}'))"
    wanted = [d for d in singles if d in labels]
    formula = f"top1 ~ {term}"
    model = _pooled(table, term.format(ref="compound"), labels, formula, "compound", wanted)
    flipped = tuple(Offset(o.label, _negated(o.test), _negated(o.family)) for o in model.offsets)
    return PooledModel(model.formula, model.fit, model.runs, flipped, model.why)


def _negated(test):
    """compound − single from single − compound: the same test, the sign turned."""
    from dataclasses import replace

    return replace(test, diff=-test.diff, t=-test.t, low=-test.high, high=-test.low)
