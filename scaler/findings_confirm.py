"""The confirmation's verdict: what a search's confirmation stage shows, in numbers and words.

:mod:`scaler.confirm` runs the stage (the search's leaders trained again, longer, with paired
seeds); this module reads its trials back (:func:`summarize`, a :class:`Confirmation`) and states
what they show (:func:`sentences`):

- **proxy fidelity**: Kendall's τ-b between the search's and the confirmation's mean top-1 of
  the confirmed networks, with its exact one-sided p under the permutation null (every order of
  the n networks equally likely, :func:`scaler.stats.tau_permutation_p`) and, from
  :data:`scaler.stats.MIN_BOOTSTRAP_SEEDS` paired seeds on, a 95 % paired-bootstrap interval
  (val images drawn once for both stages, seeds drawn per stage);
- which confirmed candidates could be the best (:func:`scaler.stats.possibly_best` on the
  confirmation's pooled σ and its degrees of freedom) and each one's P(best) (each mean drawn
  from its t posterior with that σ, :func:`scaler.stats.p_best_t`: the runs are the independent
  units, not the val images, overlapping crops of a few photographs); a note when the choice
  is not resolved (more than one candidate possibly best);
- the **chosen** candidate (the best confirmation mean on val) on the **test split**, never
  used for any choice, against the base: t intervals on σ pooled over every confirmation run's
  test top-1, with its degrees of freedom (:class:`TestVerdict`);
- a warning when the chosen candidate lies on an edge of the α/β box that could be widened
  (:func:`edge_warning`);
- for a raced confirmation (``--seeds auto``), where the race stands (:func:`race`, replayed
  from the trials by :func:`scaler.racing.decide`): why it stopped, which networks went out
  after which round (the possibly-best flags are the race's survivors: one rule), and the
  paired difference its final runs resolve (:class:`Race`).

Every rule is :mod:`scaler.stats`'s.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scaler.findings_racing import Race, network_rows, race_of, race_summary
from scaler.racing import AUTO, START, TIME_BUDGET, Decision
from scaler.records import BASE_ROLE, CONFIRM_ROLE, METRIC_NAMES, metric_columns, unpack_bits
from scaler.results import LEVEL, Noise, confirmed, same_threads, seeds_of, threads_sentence
from scaler.stats import (
    MAX_EXACT_ITEMS,
    MIN_BOOTSTRAP_SEEDS,
    difference_test,
    kendall_tau,
    mean_test,
    p_best_t,
    paired_bootstrap,
    percentile_interval,
    pooled_sd,
    possibly_best,
    standard_error,
    tau_permutation_p,
)

ATTR = "confirm"  # the study attribute holding the confirmation's settings and networks
STOPPED = "confirm_stopped"  # the round after which a time budget stopped the race (or None)
BOOTSTRAP = 2000  # replicates of every bootstrap (seeded: the same numbers on every read)
P_BEST_DRAWS = 20000  # Monte Carlo draws of P(best) (seeded: the same numbers on every read)


@dataclass(frozen=True)
class ConfirmedRow:
    """One confirmed network: its search result and its confirmation result."""

    trial: int  # the search trial it confirms
    number: int  # the confirmation trial
    role: str  # base, paper, grid or sampled
    alpha: float
    beta: float
    gamma: float
    search_top1: float
    search_runs: int
    top1: float  # mean val top-1 of the confirmation runs
    std: float | None  # their standard deviation (None for one run)
    runs: int
    p_best: float | None = None  # t posterior (p_best_t); None for the base or without a usable σ
    possibly_best: bool | None = None  # None: no usable noise estimate (or the base)
    test_top1: float | None = None  # mean test top-1 (reported, never used to choose)
    out_after: int | None = None  # raced: the round after which it was out (None: still in)


@dataclass(frozen=True)
class TestVerdict:
    """The chosen candidate against the base on the test split: 95 % t intervals on σ pooled
    over every confirmation run's test top-1 (``sigma``, ``dof``), the difference's t-test."""

    chosen: float
    chosen_interval: tuple[float, float]
    base: float
    base_interval: tuple[float, float]
    difference: float
    difference_interval: tuple[float, float]
    runs: int  # runs behind the chosen candidate's mean
    images: int | None  # test images (None: no per-image results stored)
    base_runs: int = 0  # runs behind the base's mean
    sigma: float = math.nan  # pooled σ of the confirmation's test top-1 (points)
    dof: int = 0  # its degrees of freedom
    t: float = math.nan  # the difference's t statistic on ``dof`` df
    p: float = math.nan  # its two-sided p

    @property
    def verdict(self) -> str:
        lo, hi = self.difference_interval
        if lo > 0:
            return "better than the base"
        if hi < 0:
            return "worse than the base"
        return "not distinguishable from the base at 95 %"


@dataclass(frozen=True)
class Confirmation:
    """A search's confirmation stage as stored and trained so far."""

    state: str  # "not run", "in progress" or "done"
    settings: dict[str, Any]
    proxy_settings: dict[str, Any]  # the confirmation's ProxyConfig as stored
    rows: tuple[ConfirmedRow, ...]
    noise: Noise
    tau: float = math.nan  # Kendall τ-b, search proxy against confirmation proxy
    tau_interval: tuple[float, float] = (math.nan, math.nan)
    tau_p: float = math.nan  # exact one-sided permutation p of tau
    chosen: ConfirmedRow | None = None
    test: TestVerdict | None = None
    edge: str = ""  # the warning when the chosen candidate lies on an edge of the α/β box
    notes: tuple[str, ...] = ()  # what the data cannot support
    race: Race | None = None  # raced (--seeds auto) only

    def to_dict(self) -> dict[str, Any]:
        """The confirmation as plain JSON-ready values (for exports)."""
        noise_ = {"sigma": _num(self.noise.sigma), "dof": self.noise.dof, "runs": self.noise.runs}
        race = {} if self.race is None else {"race": _plain(dataclasses.asdict(self.race))}
        return {
            "state": self.state,
            "settings": self.settings,
            "proxy": self.proxy_settings,
            "level": LEVEL,
            "noise": {**noise_, "usable": self.noise.usable},
            "proxy_fidelity": {
                "kendall_tau": _num(self.tau),
                "interval": [_num(x) for x in self.tau_interval],
                "p": _num(self.tau_p),
                "networks": len(self.rows),
                "bootstrap": BOOTSTRAP,
            },
            "candidates": [self._row_dict(r) for r in self.rows],
            "chosen": None if self.chosen is None else self.chosen.trial,
            "test": None if self.test is None else _plain(dataclasses.asdict(self.test)),
            "edge_warning": self.edge or None,
            "notes": list(self.notes),
        } | race

    def _row_dict(self, r: ConfirmedRow) -> dict[str, Any]:
        row = dataclasses.asdict(r)
        if self.race is None:  # a fixed-seeds confirmation exports as before 0.6
            row.pop("out_after")
        return row


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """Floats that are not finite as None (JSON has no NaN), in values and pairs."""
    fix = lambda v: _num(v) if isinstance(v, float) else v  # noqa: E731
    return {k: [fix(x) for x in v] if isinstance(v, tuple | list) else fix(v) for k, v in d.items()}


def _bits(row, column: str, seeds: list[int]):
    """[seeds, images] per-image correctness of a frame row for the given seeds, or None."""
    import numpy as np

    packed, order = row.get(column), row.get("seed_list")
    if not isinstance(packed, list) or not isinstance(order, list) or len(packed) != len(order):
        return None
    return np.stack([unpack_bits(packed[order.index(s)]) for s in seeds])


def stage_array(rows: list, column: str = "val_correct"):
    """[networks, common seeds, images] correctness of frame rows, or None when a row lacks it
    (trained before 0.3), the rows share no seed or no image count, or their runs were made at
    different CPU thread counts (runs pair only at one count)."""
    import numpy as np

    if not same_threads(rows):
        return None
    seed_sets = [set(r.get("seed_list") or []) for r in rows]
    common = sorted(set.intersection(*seed_sets)) if seed_sets else []
    if not common:
        return None
    arrays = [_bits(r, column, common) for r in rows]
    if any(a is None for a in arrays) or len({a.shape for a in arrays}) != 1:
        return None
    return np.stack(arrays)


def race(frame, attrs: dict[str, Any]) -> Decision | None:
    """Where the study's raced confirmation stands (None: not raced, or not run)."""
    return race_of(frame, attrs.get(ATTR), attrs.get(STOPPED))


def reported_race(frame, attrs: dict[str, Any]) -> Decision | None:
    """:func:`race` as a report states it: a round that ``--time`` cut short after it was
    queued (some of its runs skipped, not trained since) ends the race at the round before,
    so the report says why it stopped and what its runs resolve. Not for deciding what to
    train: the same command with more time trains the skipped runs and goes on."""
    d = race(frame, attrs)
    if d is None or not d.running or d.round <= START or "reason" not in frame:
        return d
    rows = frame[(frame["status"] == "skipped") & (frame["role"] == CONFIRM_ROLE)]
    # A run --time skipped says "time budget" (scaler.budget.REASON, the race's TIME_BUDGET).
    cut = rows["reason"].fillna("").map(lambda r: r == TIME_BUDGET).any()
    return race_of(frame, attrs.get(ATTR), d.round - 1) if cut else d


def summarize(frame, attrs: dict[str, Any], config: dict[str, Any]) -> Confirmation:
    """The confirmation of a search frame (``attrs``: the study's attributes)."""
    stored = attrs.get(ATTR)
    if stored is None:
        return Confirmation("not run", {}, {}, (), Noise(math.nan, 0))
    raw = confirmed(frame)
    conf = network_rows(raw)
    decision = reported_race(frame, attrs)
    search = frame.set_index("number")
    metric = config.get("metric", "top1")
    mean_col, seeds_col = metric_columns(metric)
    pairs = [
        (search.loc[int(r["confirm_of"])], r)
        for _, r in conf.sort_values(mean_col, ascending=False).iterrows()
    ]
    groups = [r[seeds_col] for _, r in pairs if isinstance(r[seeds_col], list)]
    sigma, dof = pooled_sd(groups)
    nz = Noise(sigma, sum(len(g) for g in groups), dof)
    state = "done" if len(pairs) == len(stored["points"]) else "in progress"
    if decision is not None and decision.running:
        state = "in progress"
    summary = race_summary(decision, stored["settings"])
    so_far = Confirmation(state, stored["settings"], stored["proxy"], (), nz, race=summary)
    if not pairs:
        return so_far
    rows = _rows(pairs, nz, decision, mean_col)
    tau, tau_p, tau_interval, notes = _fidelity(pairs)
    if metric != "top1":
        notes.append(
            f"The confirmed networks are ranked, and the chosen one picked, by "
            f"{METRIC_NAMES[metric]} on val (--metric {metric}); P(best) and the possibly-best "
            "set are of it too, while a race drops networks on paired top-1."
        )
    chosen = next((r for r in rows if r.role != BASE_ROLE), None)
    test, test_notes = _test_verdict(pairs, chosen)
    notes += test_notes + _unresolved(rows, chosen, nz) + _limits(so_far, rows)
    notes += threads_sentence([r for _, r in raw.iterrows()], "The confirmation's runs")
    return dataclasses.replace(
        so_far,
        rows=tuple(rows),
        tau=tau,
        tau_p=tau_p,
        tau_interval=tau_interval,
        chosen=chosen,
        test=test,
        edge=edge_warning(chosen, config),
        notes=tuple(notes),
    )


def _rows(
    pairs: list, nz: Noise, race: Decision | None = None, mean_col: str = "top1_mean"
) -> list[ConfirmedRow]:
    """The confirmed rows with P(best) (t posterior on the pooled σ) and the possibly-best
    flags (a race's: its survivors, with the round each other candidate went out after), both
    of the ranked metric's ``mean_col``."""
    cands = [i for i, (s, _) in enumerate(pairs) if s["role"] != BASE_ROLE]
    means = [float(pairs[i][1][mean_col]) for i in cands]
    runs = [seeds_of(pairs[i][1]) for i in cands]
    keep = possibly_best(means, runs, nz.sigma, nz.dof, LEVEL)
    if race is not None:
        keep = [int(pairs[i][1]["confirm_of"]) in race.survivors for i in cands]
    probs = p_best_t(means, runs, nz.sigma, nz.dof, P_BEST_DRAWS) if cands else None
    rows = []
    for i, (s, c) in enumerate(pairs):
        j = cands.index(i) if i in cands else None
        tests = c.get("test_top1_seeds")
        rows.append(
            ConfirmedRow(
                trial=int(c["confirm_of"]),
                number=int(c["number"]),
                role=str(s["role"]),
                alpha=float(c["alpha"]),
                beta=float(c["beta"]),
                gamma=float(c["gamma"]),
                search_top1=float(s["top1_mean"]),
                search_runs=seeds_of(s),
                top1=float(c["top1_mean"]),
                std=None if seeds_of(c) < 2 else float(c["top1_std"]),
                runs=seeds_of(c),
                p_best=None if j is None or probs is None else float(probs[j]),
                possibly_best=None if j is None or keep is None else keep[j],
                test_top1=sum(tests) / len(tests) if isinstance(tests, list) and tests else None,
                out_after=None if race is None else race.out_after.get(int(c["confirm_of"])),
            )
        )
    return rows


def _fidelity(pairs: list) -> tuple[float, float, tuple[float, float], list[str]]:
    """Kendall τ-b between the stages over the confirmed networks, its exact permutation p, and
    its bootstrap interval from :data:`scaler.stats.MIN_BOOTSTRAP_SEEDS` paired seeds on."""
    nan2 = (math.nan, math.nan)
    if len(pairs) < 3:
        return (
            math.nan,
            math.nan,
            nan2,
            [f"Proxy fidelity needs at least 3 confirmed networks; {len(pairs)} so far: no τ."],
        )
    tau = kendall_tau(
        [float(s["top1_mean"]) for s, _ in pairs], [float(c["top1_mean"]) for _, c in pairs]
    )
    p = tau_permutation_p([tau], len(pairs))
    first = stage_array([s for s, _ in pairs])
    second = stage_array([c for _, c in pairs])
    if first is None or second is None or first.shape[2] != second.shape[2]:
        return (
            tau,
            p,
            nan2,
            [
                "The τ of proxy fidelity has no interval: some runs stored no per-image results "
                "(trained before scaler 0.3)."
            ],
        )
    if second.shape[1] < MIN_BOOTSTRAP_SEEDS:  # no coverage to claim: the p says it
        return tau, p, nan2, []
    a, b = paired_bootstrap([first, second], BOOTSTRAP)
    taus = [kendall_tau(x, y) for x, y in zip(a, b, strict=True)]
    return tau, p, percentile_interval(taus, LEVEL), []


def _test_verdict(pairs: list, chosen: ConfirmedRow | None) -> tuple[TestVerdict | None, list]:
    """The chosen candidate against the base on the test split: t intervals on σ pooled over
    every confirmation run's test top-1 (its df), the difference σ·√(1/n₁ + 1/n₂)."""
    if chosen is None:
        return None, ["No candidate was confirmed (only the base): no test-split verdict."]
    by_trial = {int(c["confirm_of"]): c for _, c in pairs}
    base_run = next((c for s, c in pairs if s["role"] == BASE_ROLE), None)
    if base_run is None:
        return None, ["The base was not confirmed: no test-split comparison."]
    mine, base = (_test_runs(r) for r in (by_trial[chosen.trial], base_run))
    if not mine or not base:
        return None, [
            "No test-split result: the data have no test split (an image folder needs a test/ "
            "folder) or the runs predate scaler 0.3."
        ]
    sigma, dof = pooled_sd([g for g in (_test_runs(c) for _, c in pairs) if len(g) >= 2])
    mean = [sum(g) / len(g) for g in (mine, base)]
    test = difference_test(mean[0] - mean[1], standard_error(sigma, len(mine), len(base)), dof)
    each = [mean_test(sum(g) / len(g), sigma, len(g), dof) for g in (mine, base)]
    array = stage_array([by_trial[chosen.trial], base_run], "test_correct")
    verdict = TestVerdict(
        chosen=mean[0],
        chosen_interval=(each[0].low, each[0].high),
        base=mean[1],
        base_interval=(each[1].low, each[1].high),
        difference=test.diff,
        difference_interval=(test.low, test.high),
        runs=len(mine),
        images=None if array is None else int(array.shape[2]),
        base_runs=len(base),
        sigma=sigma,
        dof=dof,
        t=test.t,
        p=test.p,
    )
    return verdict, []


def _test_runs(row) -> list[float]:
    """A confirmation row's test top-1 per run (empty without a test split)."""
    runs = row.get("test_top1_seeds")
    return [float(x) for x in runs] if isinstance(runs, list) else []


def _unresolved(rows: list[ConfirmedRow], chosen: ConfirmedRow | None, nz: Noise) -> list[str]:
    """One sentence when more than one confirmed candidate could be the best."""
    cands = [r for r in rows if r.role != BASE_ROLE]
    kept = sum(bool(r.possibly_best) for r in cands)
    if chosen is None or kept < 2:
        return []
    return [
        f"Not resolved: {kept} of {len(cands)} confirmed candidates are possibly best at 95 % "
        f"(σ = {nz.sigma:.2f} points, {nz.dof} df); the coefficients are the highest mean's, "
        f"({round(chosen.alpha, 3)}, {round(chosen.beta, 3)}), not a resolved choice."
    ]


def _limits(c: Confirmation, rows: list[ConfirmedRow]) -> list[str]:
    """What this confirmation cannot support, in words."""
    notes = []
    if c.settings.get("smoke"):
        notes.append(
            "This confirmation is a smoke run (quick proxy: top 1 and the base, 2 seeds, "
            "a few epochs): its numbers check the wiring and are no evidence."
        )
    if not c.noise.usable:
        notes.append(
            f"The confirmation has {c.noise.describe()}: it cannot say which candidates could "
            "be the best."
        )
    if c.state != "done":
        notes.append("The confirmation is not finished: rerun the command to complete it.")
    return notes


def edge_warning(chosen: ConfirmedRow | None, config: dict[str, Any]) -> str:
    """A warning when ``chosen`` lies on an edge of the α/β box that could be widened."""
    if chosen is None or not config.get("alpha_range") or not config.get("beta_range"):
        return ""
    up = float(config.get("budget", 2.0)) > 1
    edges, options = [], []
    for name, value, (lo, hi) in (
        ("α", chosen.alpha, config["alpha_range"]),
        ("β", chosen.beta, config["beta_range"]),
    ):
        option = "--alpha-range" if name == "α" else "--beta-range"
        # Above 1x the coefficients cannot go under 1 (under 1x not over 1): that edge is a wall.
        wall = (up and lo <= 1.0) if abs(value - lo) < 1e-9 else (not up and hi >= 1.0)
        if abs(value - lo) < 1e-9 or abs(value - hi) < 1e-9:
            side = "minimum" if abs(value - lo) < 1e-9 else "maximum"
            if wall:
                edges.append(f"{name} = {value:g} at its {side}, a wall: it cannot cross 1")
            else:
                edges.append(f"{name} = {value:g} at its {side}")
                options.append(option)
    if not options:
        return ""
    return (
        f"The chosen candidate lies on an edge of the search box ({', '.join(edges)}): the "
        f"best may lie outside it; widen {' and '.join(options)} and search again."
    )


def _net(r: ConfirmedRow) -> str:
    return f"#{r.trial} {r.role} (α {r.alpha:g}, β {r.beta:g}, γ {r.gamma:.3f})"


def _fidelity_sentence(c: Confirmation) -> str:
    if not math.isfinite(c.tau):
        return "Proxy fidelity: no Kendall τ (fewer than 3 confirmed networks)."
    text = (
        f"Proxy fidelity: Kendall τ = {c.tau:+.2f} between the search proxy's and the "
        f"confirmation proxy's ranking of {len(c.rows)} networks"
    )
    n, (lo, hi) = len(c.rows), c.tau_interval
    if math.isfinite(c.tau_p):
        text += (
            f" (exact one-sided permutation p = {c.tau_p:.2g}, each of the {math.factorial(n)} "
            "orders equally likely under the null"
        )
    else:
        text += f" (no exact p: more than {MAX_EXACT_ITEMS} networks"
    seeds = c.settings.get("seeds")
    if seeds == AUTO:  # raced: the seeds every network has
        seeds = min(r.runs for r in c.rows)
    if math.isfinite(lo):
        text += f"; 95 % paired-bootstrap interval {lo:+.2f} to {hi:+.2f})"
    elif isinstance(seeds, int) and seeds < MIN_BOOTSTRAP_SEEDS:
        text += f"; no interval: {seeds} seeds, fewer than {MIN_BOOTSTRAP_SEEDS})"
    else:
        text += "; no interval: runs without per-image results)"
    if c.tau_p < 1 - LEVEL:
        return text + ": the short proxy ranks these networks as the longer one does (τ > 0)."
    return text + ": the data cannot tell whether the short proxy ranks them as the longer does."


def _best_sentence(c: Confirmation) -> str:
    cands = [r for r in c.rows if r.role != BASE_ROLE]
    probs = ", ".join(f"#{r.trial} {r.p_best:.2f}" for r in cands if r.p_best is not None)
    probs = (
        f" P(best), each mean drawn from its t posterior with the pooled σ (seeded Monte Carlo; "
        f"the runs are the independent units): {probs}."
        if probs
        else ""
    )
    if not c.noise.usable:
        return f"Which candidates could be the best: not stated ({c.noise.describe()}).{probs}"
    keep = [_net(r) for r in cands if r.possibly_best]
    if c.race is not None:
        out = [f"{_net(r)} out after round {r.out_after}" for r in cands if r.out_after]
        return (
            f"Possibly best at 95 % over every round of the race (Gupta subset selection with "
            f"t quantiles, each round at 1 − 5 %/rounds; {c.noise.describe()}): "
            f"{', '.join(keep)}{'; ' if out else ''}{'; '.join(out)}.{probs}"
        )
    return (
        f"Possibly best at 95 % on the confirmation runs ({c.noise.describe()}; Gupta subset "
        f"selection with t quantiles): {', '.join(keep)}.{probs}"
    )


def _test_sentence(c: Confirmation) -> str:
    t = c.test
    assert t is not None and c.chosen is not None

    def ci(iv: tuple[float, float]) -> str:
        return f"{iv[0]:.2f}–{iv[1]:.2f}"

    lo, hi = t.difference_interval
    images = f" and {t.images} images" if t.images else ""
    runs = f"{t.runs} runs each" if t.runs == t.base_runs else f"{t.runs} and {t.base_runs} runs"
    if not math.isfinite(t.t):
        return (
            f"On the test split (never used to choose), the chosen candidate {_net(c.chosen)} "
            f"scored {t.chosen:.2f} % against the base's {t.base:.2f} %: {t.difference:+.2f} "
            f"points over {runs}{images}, not tested (no pooled σ of the test runs)."
        )
    return (
        f"On the test split (never used to choose), the chosen candidate {_net(c.chosen)} "
        f"scored {t.chosen:.2f} % (95 % t interval {ci(t.chosen_interval)}) against the base's "
        f"{t.base:.2f} % ({ci(t.base_interval)}): {t.difference:+.2f} points ({lo:+.2f} to "
        f"{hi:+.2f}; t = {t.t:.2f}, {t.dof} df, on σ = {t.sigma:.2f} points pooled over the "
        f"confirmation's test runs) over {runs}{images}, {t.verdict}."
    )


def sentences(c: Confirmation) -> list[str]:
    """What a confirmation shows, in sentences computed from it."""
    if c.state == "not run":
        return ["No confirmation stage yet: `scaler confirm STUDY` trains the leaders again."]
    if not c.rows:
        return ["The confirmation has no finished run yet: rerun the command to train it."]
    out = [_fidelity_sentence(c), _best_sentence(c)]
    if c.race is not None:
        out.append(c.race.sentence())
    if c.test is not None:
        out.append(_test_sentence(c))
    if c.edge:
        out.append(c.edge)
    return out + list(c.notes)
