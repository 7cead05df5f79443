"""The pooled models of :mod:`scaler.stats`: one least-squares fit over every run.

Part of the one statistics module, split from ``scaler/stats.py`` only to keep each file under
600 lines: like it, it is the only place that fits a model (statsmodels OLS on a patsy formula),
draws a parametric bootstrap or computes a t interval of a fitted coefficient
(tests/test_layering.py treats the two as one).

- :func:`ols_fit` / :func:`ols_fits`: OLS of a formula; every interval is a t interval on the
  fit's residual df (:func:`fit_contrasts`, Bonferroni over the contrasts named).
- :func:`surface_fit`: a response surface in (log α, log β), the largest of
  :data:`SURFACE_MODELS` the points identify with :data:`MIN_FIT_DF` residual df;
  :func:`surface_optimum`: its maximum in a box and the region where the maximum could be.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scaler.stats import difference_test

# A fitted model is used to call something only with at least this many residual df.
MIN_FIT_DF = 2


@dataclass(frozen=True)
class LinearFit:
    """An ordinary least-squares fit (statsmodels OLS on a patsy formula)."""

    formula: str
    names: tuple[str, ...]  # the coefficients' names, in order
    params: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]  # the coefficients' covariance (σ² (XᵀX)⁻¹)
    df: int  # residual degrees of freedom
    sigma: float  # residual standard deviation
    nobs: int

    def coef(self, name: str) -> float:
        return self.params[self.names.index(name)]

    def se(self, name: str) -> float:
        i = self.names.index(name)
        return math.sqrt(max(self.cov[i][i], 0.0))


def ols_fit(formula: str, data) -> LinearFit | None:
    """OLS of ``formula`` on the DataFrame ``data``; None when the design is rank deficient
    or leaves no residual degree of freedom."""
    return ols_fits(formula, data)[0]


def ols_fits(formula: str, data, responses=None) -> list[LinearFit | None]:
    """:func:`ols_fit` of each of ``responses`` (arrays, one per row of ``data``; default: the
    formula's own response) on the same design, built once (simulations refit it many times)."""
    import numpy as np
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    model = smf.ols(formula, data=data)
    x = model.exog
    rank = np.linalg.matrix_rank(x)
    ys = [model.endog] if responses is None else responses
    if rank < x.shape[1] or x.shape[0] - rank < 1:
        return [None for _ in ys]
    out = []
    for y in ys:
        res = sm.OLS(np.asarray(y, dtype=float), x).fit()
        cov = np.asarray(res.cov_params())
        out.append(
            LinearFit(
                formula=formula,
                names=tuple(model.exog_names),
                params=tuple(float(v) for v in res.params),
                cov=tuple(tuple(float(v) for v in row) for row in cov),
                df=int(round(res.df_resid)),
                sigma=float(math.sqrt(res.scale)),
                nobs=int(res.nobs),
            )
        )
    return out


def fit_contrasts(fit: LinearFit, names: Sequence[str], level: float = 0.95) -> list:
    """The t-test of each named coefficient on the fit's residual df, each interval at
    1 − (1 − level)/len(names) (Bonferroni: they hold together at ``level``)."""
    each = 1.0 - (1.0 - level) / max(len(names), 1)
    return [difference_test(fit.coef(n), fit.se(n), fit.df, each) for n in names]


# The response surface's models, largest first: (terms, what they are called).
SURFACE_MODELS = (
    (("la", "lb", "I(la**2)", "I(lb**2)", "la:lb"), "full quadratic"),
    (("la", "lb", "I(la**2)", "I(lb**2)"), "quadratic without the la·lb term"),
    (("la", "lb"), "plane (linear)"),
)


def surface_fit(la, lb, top1, seed) -> tuple[LinearFit, str] | None:
    """Top-1 per run as the largest :data:`SURFACE_MODELS` model in (la, lb) = (log α, log β)
    that the points identify with at least :data:`MIN_FIT_DF` residual df, seed as a block
    (``C(seed)``, when the runs have more than one seed). None when none does."""
    import pandas as pd

    data = pd.DataFrame({"la": la, "lb": lb, "top1": top1, "seed": seed})
    block = " + C(seed)" if data["seed"].nunique() > 1 else ""
    for terms, name in SURFACE_MODELS:
        fit = ols_fit("top1 ~ " + " + ".join(terms) + block, data)
        if fit is not None and fit.df >= MIN_FIT_DF:
            return fit, name
    return None


def _surface_design(la, lb, names: Sequence[str]):
    """The surface's columns (the seed block left out: it shifts, never moves, the optimum)."""
    import numpy as np

    cols = {"la": la, "lb": lb, "I(la ** 2)": la**2, "I(lb ** 2)": lb**2, "la:lb": la * lb}
    return np.stack([cols[n] for n in names], axis=-1)


def surface_terms(fit: LinearFit) -> list[str]:
    return [n for n in fit.names if n in ("la", "lb", "I(la ** 2)", "I(lb ** 2)", "la:lb")]


@dataclass(frozen=True)
class SurfaceOptimum:
    """The fitted surface's maximum in a box, and the ``level`` region of where the optimum
    could be: the grid points whose surface is not below the fitted maximum's in at least
    1 − ``level`` of the parametric-bootstrap draws (coefficients from the fit's multivariate
    t), a one-sided test of each point against the fitted optimum, like the possibly-best set."""

    la: float
    lb: float
    top1: float  # the fitted surface there (the reference seed's level)
    region_la: tuple[float, float]  # the region's extent in log α, log β
    region_lb: tuple[float, float]
    level: float
    draws: int
    cells: tuple[tuple[float, float], ...]  # the region's grid points (la, lb)
    share: float  # the region's share of the box's grid points

    def covers(self, la: float, lb: float, step: tuple[float, float]) -> bool:
        """Whether (la, lb) is within half a grid step of one of the region's points."""
        return any(
            abs(la - a) <= step[0] / 2 + 1e-12 and abs(lb - b) <= step[1] / 2 + 1e-12
            for a, b in self.cells
        )


def surface_grid(box: tuple[tuple[float, float], tuple[float, float]], n: int = 41):
    """An n × n grid over the box ((la0, la1), (lb0, lb1)): (la, lb, steps)."""
    import numpy as np

    (a0, a1), (b0, b1) = box
    ga, gb = np.linspace(a0, a1, n), np.linspace(b0, b1, n)
    la, lb = np.meshgrid(ga, gb, indexing="ij")
    step = ((a1 - a0) / (n - 1) if n > 1 else 0.0, (b1 - b0) / (n - 1) if n > 1 else 0.0)
    return la.ravel(), lb.ravel(), step


def surface_optimum(fit, box, level=0.95, draws=2000, seed=0, n=41):
    """The fitted maximum of the surface on an n × n grid over ``box`` and its ``level`` region
    (:class:`SurfaceOptimum`), from ``draws`` coefficient vectors drawn from the fit's
    multivariate t (its covariance, its residual df; numpy's Generator seeded with ``seed``).

    The region keeps a grid point when its surface is at least the fitted maximum's in at least
    1 − level of the draws. (The spread of each draw's own maximum is no region: on a flat
    surface the draws' maxima pile up on the box's edges and miss an inner optimum.)"""
    import numpy as np

    names = surface_terms(fit)
    idx = [fit.names.index(x) for x in names]
    beta = np.array([fit.params[i] for i in idx])
    cov = np.array([[fit.cov[i][j] for j in idx] for i in idx])
    la, lb, _ = surface_grid(box, n)
    x = _surface_design(la, lb, names)  # [grid, terms]
    fitted = x @ beta
    best = int(np.argmax(fitted))
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(len(beta)), cov, size=draws, method="eigh")
    z *= np.sqrt(fit.df / rng.chisquare(fit.df, size=draws))[:, None]
    values = (beta + z) @ x.T  # [draws, grid]
    keep = np.flatnonzero(np.mean(values >= values[:, [best]], axis=0) >= 1.0 - level)
    intercept = fit.coef("Intercept") if "Intercept" in fit.names else 0.0
    return SurfaceOptimum(
        la=float(la[best]),
        lb=float(lb[best]),
        top1=float(fitted[best] + intercept),
        region_la=(float(la[keep].min()), float(la[keep].max())),
        region_lb=(float(lb[keep].min()), float(lb[keep].max())),
        level=level,
        draws=draws,
        cells=tuple((float(la[i]), float(lb[i])) for i in keep),
        share=len(keep) / len(la),
    )


def surface_values(fit: LinearFit, la, lb):
    """The fitted surface (the reference seed's level) at arrays la, lb (for contours)."""
    import numpy as np

    names = surface_terms(fit)
    beta = np.array([fit.coef(n) for n in names])
    return _surface_design(np.asarray(la), np.asarray(lb), names) @ beta + fit.coef("Intercept")


def plane_through(x, y, z):
    """Least-squares z ≈ c0 + c1·x + c2·y (e.g. log γ over the candidates' log α, log β)."""
    import numpy as np

    a = np.column_stack([np.ones(len(x)), x, y])
    c, *_ = np.linalg.lstsq(a, np.asarray(z, dtype=float), rcond=None)
    return tuple(float(v) for v in c)
