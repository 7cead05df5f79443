"""Racing: paired seeds where they decide, as a pure function of the runs so far.

A confirmation with ``--seeds auto`` trains every confirmed network with :data:`START` paired
seeds (round 2: the fewest that give a spread), then looks: the candidates still possibly best
(:func:`scaler.stats.possibly_best`, the one rule the leaderboard uses, on the pooled σ of every
confirmation run so far) each get one more paired seed, and so does the base (the reference of
the test-split verdict); the others are out and keep their runs. It stops when one candidate is
left, when the survivors have ``max_seeds`` seeds, when (from round 4) the survivors' spread is far
under the gap the rule could call at ``max_seeds`` seeds (all remaining indistinguishable), or
when the time budget says no.

**Repeated looks.** Stopping as soon as one candidate is left looks at the data once per round,
and each look may eliminate the truly best: at 95 % per look the chance of a wrong single
winner grows with the rounds. So every look runs at the Bonferroni level
1 − (1 − level)/looks, with looks = max_seeds − START + 1: by the union bound the truly best
candidate survives every look with probability ≥ ``level``, and a wrong single winner (which
needs the best out) has probability ≤ 1 − level. Under paired noise (a per-seed component shared
by every network) the pooled σ counts the shared part that cancels in a difference, and the
means are positively correlated: both make the rule conservative (tests/test_racing.py
simulates it).

Everything is derived from the runs (index k: seed k), never from memory: a resumed or shared
race replays the same decisions. This module runs nothing; :mod:`scaler.confirm` queues what it
decides.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from scaler.stats import callable_gap, detectable_difference, pooled_sd, possibly_best

AUTO = "auto"  # the seeds setting that races
START = 2  # paired seeds of the first round: the fewest that give a spread
MAX_SEEDS = 8  # default cap of seeds per network: at most 4× the fixed default's runs

# A race stops as indistinguishable when, from round FUTILITY_FROM on (earlier spreads rest on
# too few runs), its survivors' spread is under FUTILITY × the gap the rule could call at
# max_seeds. Chosen by simulation (scripts/racing_simulation.py, docs/statistics.md "Racing"):
# larger shares or earlier rounds stop races whose best is 1 to 2 points ahead, and then pick it
# less often than fixed seeds with as many runs; these pick it as often, and save runs only
# where the candidates are equal.
FUTILITY = 0.25
FUTILITY_FROM = 4

# Why a race stopped.
ONE_WINNER = "one winner"
MAX_REACHED = "max seeds"
TIME_BUDGET = "time budget"
INDISTINGUISHABLE = "all remaining indistinguishable"
NONE_LEFT = "no candidate left (their runs failed)"


@dataclass(frozen=True)
class Decision:
    """Where a race stands after the runs it was given.

    ``round`` is the seeds every network still racing has (or is being trained to); ``due``
    says how many seeds each network should have by the end of it (the runs to queue);
    ``reason`` is None while the race goes on.
    """

    round: int
    survivors: tuple[Hashable, ...]  # candidates still possibly best, in the given order
    out_after: dict[Hashable, int] = field(default_factory=dict)  # eliminated → its last round
    due: dict[Hashable, int] = field(default_factory=dict)
    reason: str | None = None
    sigma: float = math.nan  # pooled σ of the runs behind the last look (points)
    dof: int = 0
    resolves: float = math.nan  # paired difference detectable at 80 % power, 5 % (points)

    @property
    def running(self) -> bool:
        return self.reason is None

    def next_round(self) -> dict[Hashable, int]:
        """While running, the runs of this round: {network: its 0-based seed}; the first round
        trains seeds 0 and 1 of every network, each later one seed ``round`` − 1."""
        if not self.running:
            return {}
        return {n: self.round - 1 for n, k in self.due.items() if k == self.round}


def look_level(level: float, max_seeds: int) -> float:
    """The level of each look: Bonferroni over the looks at rounds START..max_seeds."""
    return 1.0 - (1.0 - level) / max(1, max_seeds - START + 1)


def decide(
    runs: Mapping[Hashable, Sequence[float]],
    candidates: Sequence[Hashable],
    base: Hashable | None = None,
    max_seeds: int = MAX_SEEDS,
    level: float = 0.95,
    stopped_at: int | None = None,
    failed: Collection[Hashable] = (),
) -> Decision:
    """Replay the race over ``runs`` (network → top-1 of seed 0, 1, ...): its decision now.

    ``candidates`` race; ``base`` (optional) is trained along every round and never races.
    ``stopped_at``: the round after which the time budget stopped the race (stored by the
    caller), which ends it there unless the rule ended it first. ``failed``: networks whose
    training failed (recorded, never retried): a failed candidate is out after the runs it has,
    a failed base is trained no further, so a failing run never stalls the race.
    """
    alive = list(candidates)
    out: dict[Hashable, int] = {}
    anchors = [base] if base is not None else []
    level_each = look_level(level, max_seeds)
    r = START
    while True:
        lost = [n for n in alive + anchors if n in failed and len(runs.get(n, ())) < r]
        out |= {n: len(runs.get(n, ())) for n in lost if n in alive}
        alive = [n for n in alive if n not in lost]
        anchors = [n for n in anchors if n not in lost]
        if not alive:
            return Decision(r - 1, (), dict(out), dict(out), NONE_LEFT)
        due = {n: r for n in alive + anchors} | {n: k for n, k in out.items()}
        if any(len(runs.get(n, ())) < r for n in alive + anchors):
            return Decision(r, tuple(alive), dict(out), due)
        groups = [list(runs[n][:r]) for n in alive + anchors] + [
            list(runs.get(n, ())[:k]) for n, k in out.items()
        ]
        sigma, dof = pooled_sd(groups)
        means = [sum(runs[n][:r]) / r for n in alive]
        keep = possibly_best(means, [r] * len(alive), sigma, dof, level_each)
        if keep is not None:
            out |= {n: r for n, k in zip(alive, keep, strict=True) if not k}
            alive = [n for n, k in zip(alive, keep, strict=True) if k]
        reason = _stop(alive, means, keep, sigma, dof, r, max_seeds, level_each)
        if reason is None and stopped_at is not None and r >= stopped_at:
            reason = TIME_BUDGET
        if reason is not None:
            due = {n: r for n in alive + anchors} | dict(out)
            resolves = _resolves(runs, alive, [*candidates, *anchors], r)
            return Decision(r, tuple(alive), dict(out), due, reason, sigma, dof, resolves)
        r += 1


def _stop(alive, means, keep, sigma, dof, r, max_seeds, level_each) -> str | None:
    """Why the race stops after round ``r``, or None."""
    if len(alive) <= 1:
        return ONE_WINNER
    if r >= max_seeds:
        return MAX_REACHED
    if keep is None:  # no usable σ yet: another round gives one
        return None
    # The survivors' spread is far under the gap the rule could call at max_seeds seeds each:
    # more rounds would spend runs on networks the noise does not separate.
    kept = [m for m, k in zip(means, keep, strict=True) if k]
    gap = callable_gap(sigma, dof, len(kept), max_seeds, level_each)
    if r >= FUTILITY_FROM and max(kept) - min(kept) < FUTILITY * gap:
        return INDISTINGUISHABLE
    return None


def _resolves(runs, alive, others, r: int) -> float:
    """The paired difference the final runs detect at 80 % power and the 5 % level: σ of the
    paired differences (every other network, the base too, against the leader, over their
    common seeds) and the leader's r seeds."""
    if not alive:
        return math.nan
    leader = max(alive, key=lambda n: sum(runs[n][:r]) / r)
    groups = []
    for n in others:
        if n == leader:
            continue
        common = min(len(runs[n]), r)
        groups.append([a - b for a, b in zip(runs[leader][:common], runs[n][:common], strict=True)])
    sigma, dof = pooled_sd(groups)
    if dof < 1 or not math.isfinite(sigma):
        return math.nan
    found = detectable_difference(sigma, r)
    return math.nan if found is None else found
