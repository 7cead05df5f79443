"""The statistics behind every "which candidate is best" scaler states, in one place.

scipy is not a dependency, so the few distributions needed are computed here and tested
against published values (tests/test_stats.py):

- **Student's t.** :func:`t_sf` from the regularized incomplete beta function (its continued
  fraction, evaluated by the modified Lentz method); :func:`t_quantile` by bisection on it
  (exact closed forms for 1 and 2 degrees of freedom, the normal quantile for infinite ones).
- **Which candidates could be the best.** :func:`possibly_best` is Gupta's subset selection
  (equivalently: the candidates whose Hsu multiple-comparisons-with-the-best upper bound on
  μ_i − max_{j≠i} μ_j is ≥ 0), with a Bonferroni bound over the k − 1 one-sided comparisons and
  a pooled standard deviation with its degrees of freedom. Under normal, equal-variance runs it
  keeps the truly best candidate with probability ≥ ``level`` whatever the other means are
  (tests/test_stats.py simulates it). With fewer than 2 degrees of freedom it declares nothing.
- **Paired bootstrap.** :func:`paired_bootstrap` resamples the evaluation images (the same
  images for every candidate and every stage) and, within a stage, the seeds (the same seeds
  for every candidate: seed k means the same data order, augmentation and initial seeding for
  all of them). It gives each candidate's P(best) (:func:`p_best`) and intervals for Kendall's
  τ (:func:`kendall_tau`) and for differences of accuracy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from statistics import NormalDist

_TINY = 1e-300
_EPS = 3e-16


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 1000):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):  # where the fraction converges fast
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df = inf: the normal)."""
    if math.isinf(df):
        return 1.0 - NormalDist().cdf(t)
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def two_sided_p(t: float, df: float) -> float:
    """The two-sided p-value of a t statistic."""
    return min(1.0, 2.0 * t_sf(abs(t), df))


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom (0 < p < 1, df > 0)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > 1.0 - p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):  # bisection: the tail is monotone, 200 halvings reach machine precision
        mid = 0.5 * (lo + hi)
        if t_sf(mid, df) > 1.0 - p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def critical_value(level: float, df: float) -> float:
    """The two-sided ``level`` t quantile (12.71 at 95 % for 1 df, 1.96 for infinite df)."""
    return t_quantile(0.5 + level / 2.0, df)


# ----------------------------------------------------------------------------------------------
# pooled noise and the set of candidates that could be the best
# ----------------------------------------------------------------------------------------------

# Fewer degrees of freedom than this and σ is not used to call anything.
MIN_DOF = 2


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """(pooled standard deviation, degrees of freedom) over groups of repeated runs."""
    ss, dof = 0.0, 0
    for values in groups:
        if len(values) >= 2:
            m = sum(values) / len(values)
            ss += sum((v - m) ** 2 for v in values)
            dof += len(values) - 1
    return (math.sqrt(ss / dof) if dof else math.nan), dof


def sample_sd(values: Sequence[float]) -> float | None:
    """The sample standard deviation, None for fewer than 2 values (undefined, not zero)."""
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def possibly_best(
    means: Sequence[float], runs: Sequence[int], sigma: float, dof: int, level: float = 0.95
) -> list[bool] | None:
    """Which candidates could be the best at ``level`` (Gupta subset / Hsu MCB, Bonferroni).

    Candidate i is kept when, for every other j, mean_i ≥ mean_j − q·σ·sqrt(1/n_i + 1/n_j) with
    q the one-sided 1 − (1 − level)/(k − 1) quantile of t with ``dof`` degrees of freedom.
    None when σ has fewer than :data:`MIN_DOF` degrees of freedom (no usable estimate).
    """
    k = len(means)
    if k == 1:
        return [True]
    if dof < MIN_DOF or not math.isfinite(sigma):
        return None
    q = t_quantile(1.0 - (1.0 - level) / (k - 1), dof)
    keep = []
    for i in range(k):
        keep.append(
            all(
                means[i] >= means[j] - q * sigma * math.sqrt(1 / runs[i] + 1 / runs[j])
                for j in range(k)
                if j != i
            )
        )
    return keep


# ----------------------------------------------------------------------------------------------
# rank agreement and the paired bootstrap
# ----------------------------------------------------------------------------------------------


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b between two scorings of the same items (nan when either is constant)."""
    n = len(x)
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom else math.nan


def paired_bootstrap(stages: Sequence, replicates: int = 2000, seed: int = 0, chunk: int = 250):
    """Bootstrap accuracies (percent) of every candidate of every stage.

    Each stage is a boolean array ``[candidates, seeds, images]``: whether run ``seed`` of
    candidate ``c`` classified image ``i`` correctly, the same seeds for every candidate of the
    stage and the same images (in the same order) in every stage. Each replicate draws the
    images with replacement once for all stages, and the seeds with replacement once per stage
    for all of its candidates, and scores each candidate by its mean accuracy over the drawn
    seeds on the drawn images. Returns one ``[replicates, candidates]`` array per stage.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    n_images = stages[0].shape[2]
    flat = [np.asarray(s, dtype=np.float32).reshape(-1, n_images) for s in stages]
    out = [np.empty((replicates, s.shape[0])) for s in stages]
    for start in range(0, replicates, chunk):
        b = min(chunk, replicates - start)
        weights = rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=b)
        weights = weights.astype(np.float32).T / n_images  # [images, b]
        for stage, f, acc in zip(stages, flat, out, strict=True):
            c, s = stage.shape[0], stage.shape[1]
            per_run = (f @ weights).reshape(c, s, b)  # accuracy of every run on the draw
            draws = rng.multinomial(s, np.full(s, 1.0 / s), size=b).T / s  # [seeds, b]
            acc[start : start + b] = 100.0 * np.einsum("csb,sb->bc", per_run, draws)
    return out


def p_best(samples) -> list[float]:
    """P(best) of each candidate: the share of bootstrap replicates it tops (ties shared)."""
    top = samples.max(axis=1, keepdims=True)
    winners = samples == top
    return list((winners / winners.sum(axis=1, keepdims=True)).mean(axis=0))


def percentile_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap replicates (nan ones dropped)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
