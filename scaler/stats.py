"""The statistics behind every "which candidate is better" scaler states, in one place.

No other module of scaler computes a t quantile, a bootstrap or a standard-error rule of its
own (tests/test_layering.py checks it): they call these functions, which stand on the field's
library (``scipy.stats``) and numpy's seeded Generator. Its pooled models (one OLS over every
run, statsmodels) are :mod:`scaler.stats_pooled`, split off only to keep files under 600 lines.

- **Student's t.** :func:`t_sf` and :func:`t_quantile` are ``scipy.stats.t.sf`` and ``.ppf``
  (infinite degrees of freedom: the normal).
- **Is a difference beyond the noise?** :func:`difference_test` is the t-test of a mean
  difference with its standard error and degrees of freedom (a pooled σ's, or pairs − 1);
  :func:`paired_test` is the paired t-test of runs that share their seeds. Both give the t
  statistic, the two-sided p and the difference's interval; a difference is called when the
  interval excludes 0 (equivalently, p < 1 − level).
- **Which candidates could be the best.** :func:`possibly_best` is Gupta's subset selection
  (equivalently: the candidates whose Hsu multiple-comparisons-with-the-best upper bound on
  μ_i − max_{j≠i} μ_j is ≥ 0), with a Bonferroni bound over the k − 1 one-sided comparisons and
  a pooled standard deviation with its degrees of freedom. Under normal, equal-variance runs it
  keeps the truly best candidate with probability ≥ ``level`` whatever the other means are
  (tests/test_stats.py simulates it). With fewer than 2 degrees of freedom it declares nothing.
  :func:`callable_gap` is the smallest gap it rules out at n runs each (a race's futility stop,
  :mod:`scaler.racing`); :func:`detectable_difference` the paired difference n pairs detect with
  80 % power (statsmodels' ``TTestPower``): what a race's final runs resolve.
- **Bootstraps.** :func:`paired_bootstrap` resamples the evaluation images (the same images for
  every candidate and every stage) and, within a stage, the seeds (the same seeds for every
  candidate: seed k means the same data order, augmentation and initial seeding for all of
  them). It gives each candidate's P(best) (:func:`p_best`) and intervals for Kendall's τ
  (:func:`kendall_tau`, ``scipy.stats.kendalltau``'s τ-b) and for differences of accuracy.
  :func:`bootstrap_mean_interval` resamples per-seed values (a calibration's τ, from
  :data:`MIN_BOOTSTRAP_SEEDS` seeds on: fewer per-seed values are reported as their range, with
  no coverage claimed). Every bootstrap is seeded (numpy's Generator): the same numbers on every
  read.
- **Is an order better than chance?** :func:`tau_permutation_p` is the exact one-sided p of a
  mean Kendall τ over seeds under the permutation null (each seed's order uniform over the n!
  orders, seeds independent), by enumerating the orders and convolving over seeds.
- **P(best) from the runs' noise.** :func:`p_best_t` draws every candidate's mean from its t
  posterior (mean, σ/√n, σ's degrees of freedom; one shared χ² draw, since σ is pooled: a
  multivariate t) by seeded Monte Carlo: the runs are the independent units, not the val images
  (overlapping crops of a few photographs).
- **What a study can resolve.** :func:`detectable_difference` is the smallest difference a
  paired t-test finds with 80 % power (statsmodels' power tools), for the plan a study prints
  before it trains (:mod:`scaler.plan`).
- **Where the noise comes from.** :func:`split_variance` splits the seed-to-seed variance of
  runs scored on two disjoint splits into a training part and an evaluation part, with their
  degrees of freedom (Satterthwaite's, :func:`satterthwaite_df`); :func:`sd_interval` is a
  σ's χ² interval; :func:`image_agreement` and :func:`binomial_variance` are what independent
  images would give (``scaler noise``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df = inf: the normal)."""
    from scipy.stats import t as student

    return float(student.sf(t, df))


def two_sided_p(t: float, df: float) -> float:
    """The two-sided p-value of a t statistic."""
    return min(1.0, 2.0 * t_sf(abs(t), df))


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom (0 < p < 1, df > 0)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    from scipy.stats import t as student

    return float(student.ppf(p, df))


def critical_value(level: float, df: float) -> float:
    """The two-sided ``level`` t quantile (12.71 at 95 % for 1 df, 1.96 for infinite df)."""
    return t_quantile(0.5 + level / 2.0, df)


def detectable_difference(
    sigma: float, n: int, power: float = 0.8, alpha: float = 0.05
) -> float | None:
    """The smallest true mean difference a two-sided paired t-test of ``n`` pairs (n − 1 df)
    at level ``alpha`` finds with probability ``power``, ``sigma`` being the σ of one paired
    difference; None below 2 pairs (no df).

    statsmodels' power of the one-sample t-test (the noncentral t): ``TTestPower.solve_power``
    gives the standardized effect, times σ.
    """
    from statsmodels.stats.power import TTestPower

    if n < 2 or not math.isfinite(sigma):
        return None
    effect = TTestPower().solve_power(nobs=n, alpha=alpha, power=power)
    return float(effect) * sigma


# ----------------------------------------------------------------------------------------------
# is a difference beyond the noise: the t-test of a difference, pooled or paired
# ----------------------------------------------------------------------------------------------


def standard_error(sigma: float, n1: int, n2: int) -> float:
    """Standard error of the difference of two means of n1 and n2 runs with spread sigma."""
    if not math.isfinite(sigma):
        return math.nan
    return sigma * math.sqrt(1 / max(n1, 1) + 1 / max(n2, 1))


@dataclass(frozen=True)
class DifferenceTest:
    """A difference of means, its t-test and its interval at ``level``."""

    diff: float
    se: float  # nan: no noise estimate
    df: int
    t: float  # nan without a standard error or degrees of freedom
    p: float  # two-sided
    low: float  # the difference's interval at ``level``
    high: float
    level: float

    @property
    def tested(self) -> bool:
        """Whether there was a standard error and degrees of freedom to test with."""
        return not math.isnan(self.t)

    @property
    def called(self) -> bool:
        """The difference is beyond the noise: its interval excludes 0 (p < 1 − level)."""
        return self.low > 0 or self.high < 0

    @property
    def direction(self) -> str:
        """ "higher", "lower" or "" (not resolved by the noise, or not tested)."""
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return ""


def difference_test(diff: float, se: float, df: int, level: float = 0.95) -> DifferenceTest:
    """The t-test of a mean difference ``diff`` with standard error ``se`` on ``df`` degrees of
    freedom, and its interval at ``level`` (no test, all nan, without se or df ≥ 1)."""
    nan = math.nan
    if not (math.isfinite(se) and df >= 1 and math.isfinite(diff)):
        return DifferenceTest(diff, se, max(df, 0), nan, nan, nan, nan, level)
    if se > 0:
        t = diff / se
        p = two_sided_p(t, df)
    else:  # runs without spread: any difference is exact
        t = math.copysign(math.inf, diff) if diff else 0.0
        p = float(diff == 0)
    half = critical_value(level, df) * se
    return DifferenceTest(diff, se, df, t, p, diff - half, diff + half, level)


def mean_test(mean: float, sigma: float, n: int, df: int, level: float = 0.95) -> DifferenceTest:
    """A mean of ``n`` runs with a pooled spread ``sigma`` on ``df`` degrees of freedom: its
    t interval at ``level`` (the test of mean ≠ 0 comes with it)."""
    se = sigma / math.sqrt(n) if n >= 1 and math.isfinite(sigma) else math.nan
    return difference_test(mean, se, df, level)


def paired_test(mine: Sequence[float], theirs: Sequence[float], level: float = 0.95):
    """The paired t-test of runs that share their seeds (index k: the same seed in both), on
    pairs − 1 degrees of freedom (untested below 2 pairs)."""
    diffs = [a - b for a, b in zip(mine, theirs, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n if n else math.nan
    sd = sample_sd(diffs)
    se = math.nan if sd is None else sd / math.sqrt(n)
    return difference_test(mean, se, n - 1, level)


# ----------------------------------------------------------------------------------------------
# pooled noise and the set of candidates that could be the best
# ----------------------------------------------------------------------------------------------

# Fewer degrees of freedom than this and σ is not used to call anything.
MIN_DOF = 2
# Fewer seeds than this and a bootstrap over seeds is no interval: its per-seed values' range is
# reported instead, with no coverage claimed.
MIN_BOOTSTRAP_SEEDS = 5


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


def callable_gap(sigma: float, dof: int, k: int, n: int, level: float = 0.95) -> float:
    """The smallest gap between two means of ``n`` runs each that :func:`possibly_best` rules
    out among ``k`` candidates at ``level``: q·σ·√(2/n), q its Bonferroni t quantile."""
    if k < 2 or dof < MIN_DOF or not math.isfinite(sigma):
        return math.nan
    return t_quantile(1.0 - (1.0 - level) / (k - 1), dof) * sigma * math.sqrt(2.0 / n)


# ----------------------------------------------------------------------------------------------
# rank agreement and the paired bootstrap
# ----------------------------------------------------------------------------------------------


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b between two scorings of the same items (nan when either is constant)."""
    from scipy.stats import kendalltau

    if len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(kendalltau(x, y, variant="b").statistic)


# Above this many items the exact null of τ (n! orders) is not enumerated.
MAX_EXACT_ITEMS = 9


@functools.lru_cache(maxsize=16)
def _inversion_scores(n: int):
    """S = concordant − discordant pairs of every one of the n! orders against the identity."""
    import itertools

    import numpy as np

    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int8)
    i, j = np.triu_indices(n, 1)
    return np.sign(perms[:, j] - perms[:, i]).sum(axis=1).astype(np.int64)


def tau_permutation_p(taus: Sequence[float], n: int) -> float:
    """The exact one-sided p (P(null mean τ ≥ observed mean τ)) of the mean of per-seed Kendall
    τ's of ``n`` items, under the permutation null: each seed's order uniform over the n! orders
    (no ties), seeds independent. Exact: the n! orders enumerated, their τ distribution convolved
    over seeds. nan for fewer than 2 items, more than :data:`MAX_EXACT_ITEMS`, or no τ."""
    import numpy as np

    taus = [t for t in taus if math.isfinite(t)]
    if not taus or not 2 <= n <= MAX_EXACT_ITEMS:
        return math.nan
    pairs = n * (n - 1) // 2
    scores = _inversion_scores(n)  # S in −pairs..pairs, τ = S / pairs
    one = np.bincount(scores + pairs, minlength=2 * pairs + 1).astype(float) / len(scores)
    total = np.array([1.0])
    for _ in taus:
        total = np.convolve(total, one)
    sums = np.arange(total.size) - pairs * len(taus)  # Σ S over the seeds
    observed = sum(taus) * pairs
    return float(min(1.0, total[sums >= observed - 1e-9].sum()))


def p_best_t(
    means: Sequence[float],
    runs: Sequence[int],
    sigma: float,
    dof: int,
    draws: int = 20000,
    seed: int = 0,
) -> list[float] | None:
    """P(best) of each candidate: the share of draws it tops when each mean is drawn from its
    t posterior, mean_i + σ/√n_i · Z_i · √(dof/χ²_dof) (Z_i independent normals, one χ² per
    draw: σ is pooled, so the draws follow a multivariate t), by numpy's Generator seeded with
    ``seed``. None without a usable σ (fewer than :data:`MIN_DOF` degrees of freedom)."""
    import numpy as np

    k = len(means)
    if k == 1:
        return [1.0]
    if dof < MIN_DOF or not math.isfinite(sigma):
        return None
    rng = np.random.default_rng(seed)
    scale = sigma / np.sqrt(np.asarray(runs, dtype=float))
    z = rng.standard_normal((draws, k))
    shrink = np.sqrt(dof / rng.chisquare(dof, size=(draws, 1)))
    sample = np.asarray(means, dtype=float) + z * scale * shrink
    return [float(x) for x in p_best(sample)]


def bootstrap_mean_interval(
    values: Sequence[float], samples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """A percentile interval of the mean of ``values`` (e.g. per-seed τ), resampled with
    replacement ``samples`` times by numpy's Generator seeded with ``seed``."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(samples, len(values)))
    return percentile_interval(values[draws].mean(axis=1), level)


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


# ----------------------------------------------------------------------------------------------
# where a run's noise comes from: training against the evaluation draw (scaler noise)
# ----------------------------------------------------------------------------------------------


def satterthwaite_df(terms: Sequence[tuple[float, float]]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of variance estimates, each given as
    (signed term, its degrees of freedom): (Σ x)² / Σ x²/df. 0 when the sum is 0."""
    num = sum(x for x, _ in terms) ** 2
    den = sum(x * x / df for x, df in terms if df > 0)
    return num / den if den > 0 else 0.0


def sample_variance(values: Sequence[float]) -> float:
    """The unbiased sample variance (n − 1 in the denominator); nan below 2 values."""
    sd = sample_sd(values)
    return math.nan if sd is None else sd * sd


@dataclass(frozen=True)
class VarianceSplit:
    """How the seed-to-seed variance of a score splits into training and evaluation parts.

    Each run k (one seed) is scored on two disjoint held-out splits, val (``n_val`` images) and
    test (``n_test``). The model: val_k = μ + T_k + E_k and test_k = μ + T_k + E'_k,
    with T the training part (which network the seed gave: shared by both splits) and E, E'
    independent evaluation parts whose variance falls as 1/images. Then val − test has no
    training part, var(val − test) = c·(1/n_val + 1/n_test), and the pooled score (all held-out
    images) has variance training + c/(n_val + n_test). A two-way layout (seeds × splits), so
    both plain variances have runs − 1 degrees of freedom and are independent under normality;
    their differences and sums get Satterthwaite's. Variances are in squared points (top-1 %).
    """

    runs: int
    df: int  # runs − 1: of ``val``, ``pooled``, ``evaluation`` and ``evaluation_pooled``
    val: float  # plain sample variance of val top-1 over seeds
    pooled: float  # the same of pooled top-1 (val and test images together)
    evaluation: float  # evaluation variance of one val score: var(val − test)·n_test/(n_v+n_t)
    evaluation_pooled: float  # of the pooled score: var(val − test)/4 for equal splits
    training: float  # pooled − evaluation_pooled (= cov(val, test) for equal splits; may be < 0)
    training_df: float  # Satterthwaite
    run: float  # training + evaluation: one val score's variance, estimated from both splits
    run_df: float  # Satterthwaite (between runs − 1 and 2·(runs − 1))

    @property
    def training_share(self) -> float:
        """The training part's share of one val score's variance (nan without a variance)."""
        return self.training / self.run if self.run > 0 else math.nan


def split_variance(
    val: Sequence[float], test: Sequence[float], n_val: int, n_test: int
) -> VarianceSplit:
    """The :class:`VarianceSplit` of paired val and test scores (index k: the same run)."""
    if len(val) != len(test) or len(val) < 2:
        raise ValueError("split_variance needs val and test scores of the same ≥ 2 runs")
    n = len(val)
    pooled = [(n_val * v + n_test * t) / (n_val + n_test) for v, t in zip(val, test, strict=True)]
    per_image = sample_variance([v - t for v, t in zip(val, test, strict=True)]) / (
        1 / n_val + 1 / n_test
    )  # c: the evaluation variance of a score over one image
    ev, ev_pooled = per_image / n_val, per_image / (n_val + n_test)
    var_pooled = sample_variance(pooled)
    df = n - 1
    return VarianceSplit(
        runs=n,
        df=df,
        val=sample_variance(val),
        pooled=var_pooled,
        evaluation=ev,
        evaluation_pooled=ev_pooled,
        training=var_pooled - ev_pooled,
        training_df=satterthwaite_df([(var_pooled, df), (-ev_pooled, df)]),
        run=var_pooled - ev_pooled + ev,
        run_df=satterthwaite_df([(var_pooled, df), (ev - ev_pooled, df)]),
    )


def sd_interval(variance: float, df: float, level: float = 0.95) -> tuple[float, float]:
    """The chi-square interval of a standard deviation from a variance estimate on ``df``
    degrees of freedom (a negative estimate is taken as 0); nan without degrees of freedom."""
    if not (df > 0 and math.isfinite(variance)):
        return math.nan, math.nan
    from scipy.stats import chi2

    v = max(variance, 0.0)
    hi_q, lo_q = chi2.ppf([(1 + level) / 2, (1 - level) / 2], df)
    return math.sqrt(df * v / hi_q), math.sqrt(df * v / lo_q)


def binomial_variance(top1: float, images: int) -> float:
    """The evaluation variance (squared points) of a top-1 of ``top1`` % over ``images``
    independent images: p(1 − p)/n, the floor that correlated images can only exceed."""
    p = top1 / 100.0
    return 1e4 * p * (1 - p) / images


def above_rate_p(correct: int, images: int, rate: float) -> float:
    """One-sided exact binomial p-value of ``correct`` right of ``images`` against a rate of
    ``rate`` (a fraction): how likely so many or more from a scorer that is right at that rate
    (scaler.base_check: a base against the majority class)."""
    from scipy.stats import binomtest

    return float(binomtest(correct, images, rate, alternative="greater").pvalue)


def image_agreement(correct) -> tuple[float, float]:
    """How often an image's correctness agrees between two runs (seeds), averaged over every
    pair of runs, and what it would be if the runs erred on independent images with their own
    accuracies: (observed, independent). ``correct`` is a boolean ``[runs, images]`` array."""
    import numpy as np

    c = np.asarray(correct, dtype=float)
    runs, images = c.shape
    if runs < 2:
        return math.nan, math.nan
    p = c.mean(axis=1)
    agree = (c @ c.T + (1 - c) @ (1 - c).T) / images  # [runs, runs]
    expected = np.outer(p, p) + np.outer(1 - p, 1 - p)
    upper = np.triu_indices(runs, k=1)  # every pair of runs once
    return float(agree[upper].mean()), float(expected[upper].mean())


@dataclass(frozen=True)
class VarianceRatio:
    """Pitman–Morgan test of equal variances of two paired samples (the same seeds)."""

    ratio: float  # var(new) / var(old); below 1: the new scoring is less noisy
    r: float  # correlation of the sums and differences of the pairs
    df: int  # pairs − 2
    p: float  # two-sided


def paired_variance_ratio(new: Sequence[float], old: Sequence[float]) -> VarianceRatio:
    """Whether ``new`` varies less than ``old`` over the same seeds (Pitman 1939, Morgan 1939):
    var(new) = var(old) exactly when new + old and new − old are uncorrelated, tested by
    scipy's Pearson correlation on pairs − 2 df."""
    import numpy as np
    from scipy import stats

    x, y = np.asarray(new, dtype=float), np.asarray(old, dtype=float)
    vx, vy = x.var(ddof=1), y.var(ddof=1)
    ratio = float(vx / vy) if vy > 0 else math.inf
    if len(x) < 3 or np.ptp(x + y) == 0 or np.ptp(x - y) == 0:
        return VarianceRatio(ratio, 0.0, max(len(x) - 2, 0), 1.0)
    test = stats.pearsonr(x + y, x - y)
    return VarianceRatio(ratio, float(test.statistic), len(x) - 2, float(test.pvalue))


def median_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): the distribution-free interval of a median from order statistics."""
    import numpy as np
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    median = float(np.median(x))
    # Ranks j < k with P(X_(j) <= median < X_(k)) >= level: binomial(n, 1/2) quantiles.
    j = int(binom.ppf((1 - level) / 2, n, 0.5))
    k = int(n - j)
    return median, float(x[max(j - 1, 0)]), float(x[min(k, n - 1)])
