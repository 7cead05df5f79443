"""The pooled models simulated (scaler.stats's OLS, its Bonferroni contrasts, the response
surface's optimum and region), and applied to the committed reports.

Each method is checked for (a) coverage: its interval holds the truth at the stated rate within
simulation error, and (b) power at the proxy's noise (σ = 3.5 points, 2 seeds): it detects a
2-point offset more often than the per-point test it replaces. Every simulation fits its design
once and refits the responses (:func:`scaler.stats.ols_fits`), so each runs in about a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaler.stats import difference_test, paired_test, pooled_sd
from scaler.stats_pooled import (
    fit_contrasts,
    ols_fit,
    ols_fits,
    surface_fit,
    surface_grid,
    surface_optimum,
)

REPORTS = Path(__file__).resolve().parents[1] / "reports"
SIGMA, REPS, OFFSET = 3.5, 400, 2.0
# Coverage of a 95 % interval over 400 runs has a simulation error of ≈ 1.1 points.
WITHIN = 0.035


def _noise(rng, n_rows: int, seeds: np.ndarray, reps: int = REPS) -> np.ndarray:
    """[reps, rows] of run noise: σ per run plus a seed effect shared by every point."""
    seed_effect = rng.normal(0, 1.0, size=(reps, seeds.max() + 1))[:, seeds]
    return rng.normal(0, SIGMA, size=(reps, n_rows)) + seed_effect


# ----------------------------------------------------------------------------------------------
# Figure 1: top1 ~ C(baseline) + log_flops + C(seed)
# ----------------------------------------------------------------------------------------------

FIG1_FORMULA = "top1 ~ C(baseline, Treatment('b0')) + log_flops + C(seed)"
REF_X = (0.0, 0.5, 1.0, 1.5, 2.0)  # the reference series' log FLOPs (5 widths)
OTHER_X = (0.25, 0.75, 1.25)  # every other baseline's (3 widths inside the reference's range)


def _fig1_design():
    rows = [("b0", x) for x in REF_X] + [(b, x) for b in ("b1", "b2", "b3") for x in OTHER_X]
    design = pd.DataFrame(
        [{"baseline": b, "log_flops": x, "seed": s} for b, x in rows for s in (0, 1)]
    )
    truth = np.where(design["baseline"] == "b0", 0.0, OFFSET) + 70 + 2.0 * design["log_flops"]
    return design.assign(top1=truth), truth.to_numpy()


def _per_point_calls(design, ys) -> np.ndarray:
    """The per-point Figure 1 test of b1 (findings_sweeps._baseline_call), per replicate: b1's
    points against b0 interpolated (linearly in log FLOPs) at their FLOPs, the mean difference
    tested on σ pooled over every point's repeated runs (df = points), 95 % two-sided."""
    points = design.groupby(["baseline", "log_flops"], sort=False).indices
    calls = []
    for y in ys:
        means = {k: y[i].mean() for k, i in points.items()}
        sigma, dof = pooled_sd([list(y[i]) for i in points.values()])
        ref = [means[("b0", x)] for x in REF_X]
        diffs = [means[("b1", x)] - np.interp(x, REF_X, ref) for x in OTHER_X]
        se = sigma * math.sqrt(1 / 2 + 1 / 2) / math.sqrt(len(diffs))
        calls.append(difference_test(float(np.mean(diffs)), se, dof, 0.95).low > 0)
    return np.array(calls)


def test_figure1_model_covers_and_beats_the_per_point_test():
    rng = np.random.default_rng(11)
    design, truth = _fig1_design()
    ys = truth + _noise(rng, len(design), design["seed"].to_numpy())
    fits = ols_fits(FIG1_FORMULA, design, ys)
    names = [f"C(baseline, Treatment('b0'))[T.{b}]" for b in ("b1", "b2", "b3")]
    one = [fit_contrasts(f, names[:1], 0.95)[0] for f in fits]  # a single contrast at 95 %
    family = [fit_contrasts(f, names, 0.95) for f in fits]  # Bonferroni over the three
    cover_one = np.mean([t.low <= OFFSET <= t.high for t in one])
    cover_all = np.mean([all(t.low <= OFFSET <= t.high for t in ts) for ts in family])
    assert abs(cover_one - 0.95) <= WITHIN, cover_one
    assert 0.95 - WITHIN <= cover_all <= 1.0, cover_all  # Bonferroni: at least 95 %
    # The ordering is an intersection-union claim: each baseline at 95 %, like the per-point tests.
    pooled = np.mean([t.low > 0 for t in one])  # b1 called above
    per_point = np.mean(_per_point_calls(design, ys))
    assert pooled > per_point, (pooled, per_point)


# ----------------------------------------------------------------------------------------------
# Tables 3/7: top1 ~ C(dimension, Treatment('compound')) + C(seed)
# ----------------------------------------------------------------------------------------------

LEVELS = ("base", "compound", "depth", "width", "resolution")
COMPARE_FORMULA = "top1 ~ C(dimension, Treatment('compound')) + C(seed)"


@pytest.mark.parametrize("seeds", [2, 3])
def test_compare_model_covers_and_beats_the_paired_tests(seeds):
    """Power is low for both at 2 seeds (≈ 2 % against ≈ 1 %), so the rates are taken over
    2000 replicates (the refits are cheap) to tell them apart."""
    rng, reps = np.random.default_rng(12), 2000
    design = pd.DataFrame([{"dimension": d, "seed": s} for d in LEVELS for s in range(seeds)])
    truth = np.where(design["dimension"] == "compound", 74.0 + OFFSET, 74.0)
    ys = truth + _noise(rng, len(design), design["seed"].to_numpy(), reps)
    fits = ols_fits(COMPARE_FORMULA, design.assign(top1=0.0), ys)
    names = [f"C(dimension, Treatment('compound'))[T.{d}]" for d in LEVELS[2:]]
    family = [fit_contrasts(f, names, 0.95) for f in fits]  # single − compound, Bonferroni
    cover = np.mean([all(t.low <= -OFFSET <= t.high for t in ts) for ts in family])
    assert 0.95 - WITHIN / 2 <= cover <= 1.0, cover  # 2000 replicates: ±0.5 points of error
    one = np.mean([fit_contrasts(f, names[:1], 0.95)[0].low <= -OFFSET for f in fits])
    compound, depth = (design["dimension"] == d for d in ("compound", "depth"))
    each = 1 - 0.05 / 3  # the paired tests' Bonferroni level over the three dimensions
    paired = np.mean([paired_test(y[compound], y[depth], each).low > 0 for y in ys])
    pooled = np.mean([ts[0].high < 0 for ts in family])  # depth below compound
    assert one > 0.95 - WITHIN and pooled > paired, (pooled, paired)


# ----------------------------------------------------------------------------------------------
# the response surface: the optimum's region and the fitted optimum against the best observed
# ----------------------------------------------------------------------------------------------

BOX = ((0.0, math.log(1.4)), (0.0, math.log(1.2)))
TRUE_OPT = (0.2, 0.1)


def _quadratic(curvature: float):
    def surface(la, lb):
        bowl = 400 * (la - TRUE_OPT[0]) ** 2 + 1200 * (lb - TRUE_OPT[1]) ** 2
        return 75 - curvature * bowl

    return surface


# strong: the 3 × 3 grid's points 8 to 28 points below the optimum; mild: 0 to 4 points (the
# proxy's equal-FLOPs candidates differ by 1-3), where the region must grow, not miss it.
@pytest.mark.parametrize("curvature", [1.0, 0.15])
def test_surface_region_covers_the_optimum_and_the_fit_beats_the_best_point(curvature):
    _true_surface = _quadratic(curvature)
    rng = np.random.default_rng(13)
    grid = [np.linspace(*BOX[0], 3), np.linspace(*BOX[1], 3)]
    la, lb = (np.repeat(x.ravel(), 2) for x in np.meshgrid(*grid, indexing="ij"))
    seed = np.tile([0, 1], 9)
    design = pd.DataFrame({"la": la, "lb": lb, "seed": seed, "top1": _true_surface(la, lb)})
    fit0, model = surface_fit(la, lb, design["top1"] + rng.normal(0, 1, 18), seed)
    assert model == "full quadratic" and fit0.df == 18 - 7
    reps = REPS // 2
    ys = _true_surface(la, lb) + _noise(rng, 18, seed)[:reps]
    _, _, step = surface_grid(BOX, 21)
    covered, fitted, observed = [], [], []
    for r, fit in enumerate(ols_fits(fit0.formula, design, ys)):
        opt = surface_optimum(fit, BOX, 0.95, draws=400, seed=r, n=21)
        covered.append(opt.covers(*TRUE_OPT, step))
        fitted.append(math.dist((opt.la, opt.lb), TRUE_OPT))
        means = pd.Series(ys[r]).groupby([la, lb]).mean()
        observed.append(math.dist(means.idxmax(), TRUE_OPT))
    assert 0.95 - 2 * WITHIN <= np.mean(covered) <= 1.0, np.mean(covered)
    assert np.mean(fitted) < np.mean(observed), (np.mean(fitted), np.mean(observed))


def test_surface_needs_enough_points_and_df():
    la, lb = np.log([1.0, 1.4, 1.0, 1.2]), np.log([1.2, 1.0, 1.0, 1.1])
    assert surface_fit(la, lb, [70.0, 72.0, 71.0, 73.0], [0] * 4) is None  # 3 + 2 df > 4 runs
    fit, model = surface_fit([*la, 0.1], [*lb, 0.05], [70.0, 72.0, 71.0, 73.0, 72.0], [0] * 5)
    assert model == "plane (linear)" and fit.df == 2 and "C(seed)" not in fit.formula
    square = pd.DataFrame({"la": [0, 1, 0, 1], "lb": [0, 0, 1, 1], "top1": [1, 2, 2, 4]})
    assert ols_fit("top1 ~ la + lb", square).df == 1
    assert ols_fit("top1 ~ la + lb", square.assign(lb=square["la"])) is None  # not identified
    assert ols_fit("top1 ~ la", square.iloc[:2]) is None  # no residual df


# ----------------------------------------------------------------------------------------------
# the committed reports under the pooled verdicts
# ----------------------------------------------------------------------------------------------


def _study(report: str, prefix: str = ""):
    frame = pd.read_csv(REPORTS / report / "trials.csv")
    return frame[frame["study"].str.startswith(prefix)].drop(columns="study")


def test_committed_figure1_and_search_surface():
    from scaler.findings_pooled import baseline_model, search_surface
    from scaler.findings_sweeps import baseline_findings
    from scaler.results import finished

    fig1 = _study("embedded-2x-0.5", "fig1")
    model = baseline_model(finished(fig1), "cost_flops")
    assert (model.runs, model.fit.df, model.each_level) == (26, 20, 0.95)
    assert [round(o.test.diff, 2) for o in model.offsets] == [2.55, -0.74, 3.84]
    assert [round(o.test.low, 2) for o in model.offsets] == [-1.24, -4.57, -0.81]
    assert not any(o.test.called for o in model.offsets)
    lines = baseline_findings(finished(fig1), fig1)
    assert "is not shown by the pooled model" in lines[-1]
    surface = search_surface(_study("embedded-2x-0.5", "search"), {"alpha_range": [1, 1.4]})
    assert (surface.model, surface.runs, surface.fit.df) == ("plane (linear)", 5, 2)
    assert [round(x, 2) for x in surface.optimum_abg()] == [1.4, 1.2, 0.94]  # a corner
    assert surface.optimum.share == 1.0  # the optimum could be anywhere in the box
    export = surface.export_dict("confirmation")
    assert export["best_observed"]["top1"] == pytest.approx(78.46, abs=0.01)
    assert "the confirmation's pick" in export["exported_coefficients"]


@pytest.mark.parametrize(
    "report, dims, called",
    [
        ("table7-b0-48px", ("depth", "width"), (False, True)),
        ("table3-mobilenetv2-48px", ("depth", "width"), (False, False)),
        ("table3-mobilenetv2-40px", ("depth", "width", "resolution"), (False, False, False)),
    ],
)
def test_committed_compare_tables(report, dims, called):
    from scaler.findings_pooled import compare_model
    from scaler.findings_sweeps import COMPARE_ORDER, compare_pooled
    from scaler.results import finished

    frame = _study(report)
    model = compare_model(finished(frame), COMPARE_ORDER)
    assert tuple(o.label for o in model.offsets) == dims
    assert tuple(o.test.low > 0 for o in model.offsets) == called
    assert compare_pooled(frame).startswith("pooled model, primary")
