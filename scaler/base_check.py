"""The base check: before a search spends its budget on candidates, has its base learned at all?

A proxy that is too short for the user's data (or labels that carry nothing) leaves every
network at the majority-class rate, and a search would then rank noise. ``scaler search`` trains
the base's runs first (:mod:`scaler.searches`) and judges them here:

**The rule.** The base passes when its mean val top-1 over its seeds is at least
:data:`MIN_POINTS` points above the val majority-class rate *and* a one-sided exact binomial
test of its mean correct count on the n val images against that rate gives p < :data:`ALPHA`
(:func:`scaler.stats.above_rate_p`, ``scipy.stats.binomtest``). The test treats the val images
as the sample (a network that learned nothing scores each image right at most at the majority
rate); it does not pool the seeds, which score the same images, so it is conservative for several
seeds. The floor of a few points keeps a
large val split from passing a base a fraction of a point above the majority class; the test
keeps a small one from passing a lucky few images (on 40 balanced images of 2 classes the base
needs 28 right, 70 %).

**The outcome** (:class:`BaseCheck`) is stored on the study (attribute ``base_check``), printed
in one line, and stated by the leaderboard and the report. ``--base-check stop`` (default) ends a
failed search before any candidate trains, exit code :data:`EXIT_CODE`; ``--base-check off``
trains the candidates anyway (and resumes a stopped search).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from scaler.stats import above_rate_p

__all__ = [
    "ALPHA",
    "ATTR",
    "EXIT_CODE",
    "MIN_POINTS",
    "MODES",
    "BaseCheck",
    "Outcome",
    "judge",
    "passes",
]

# One-sided level of the binomial test: a search stopped wrongly costs a rerun with a flag, one
# let through on noise costs its whole budget, so the bar is stricter than 5 %.
ALPHA: Final = 0.01
# The base must beat the majority class by at least this many points of top-1 (on any val size).
MIN_POINTS: Final = 2.0
MODES: Final = ("stop", "off")
# The exit code of a search the base check stopped (1: a failed run, 2: bad input, 3: workers
# left work undone, 130: Ctrl-C).
EXIT_CODE: Final = 4
# The study attribute that holds the outcome.
ATTR: Final = "base_check"


class Outcome(str, enum.Enum):
    """What the check did to the search."""

    PASSED = "passed"  # the candidates train
    STOPPED = "stopped"  # the base failed: no candidate trained (--base-check stop)
    OVERRIDDEN = "overridden"  # the base failed, and --base-check off trained the candidates


def passes(top1: float, val_images: int, majority: float) -> tuple[bool, float]:
    """(whether a mean val top-1 of ``top1`` % on ``val_images`` images passes against a
    majority-class rate of ``majority`` %, the one-sided binomial p-value)."""
    correct = round(top1 / 100 * val_images)
    p = above_rate_p(correct, val_images, min(max(majority / 100, 0.0), 1.0))
    return top1 >= majority + MIN_POINTS and p < ALPHA, p


@dataclass(frozen=True)
class BaseCheck:
    """The base check of one search: the base's val top-1 against the majority-class rate."""

    outcome: Outcome
    top1: float  # mean val top-1 (%) over the base's seeds
    seeds: tuple[int, ...]  # the seeds of its runs
    majority: float  # val majority-class rate (%)
    val_images: int
    p_value: float  # one-sided binomial, mean correct count against the majority rate
    steps: int | None = None  # SGD steps of one run (None: not known)

    @property
    def passed(self) -> bool:
        return self.outcome == Outcome.PASSED

    def _reached(self) -> str:
        seeds = ", ".join(str(s) for s in self.seeds)
        return (
            f"the base reached {self.top1:.1f} % (seeds {seeds}) against a majority-class rate "
            f"of {self.majority:.1f} % on {self.val_images} val images"
        )

    def _rule(self) -> str:
        return (
            f"{self.top1 - self.majority:+.1f} points, one-sided binomial p = {self.p_value:.2g}"
            f"; it must be ≥ {MIN_POINTS:g} points above with p < {ALPHA:g}"
        )

    def describe(self) -> str:
        """The check in one line, as printed and reported."""
        if self.passed:
            return f"base check passed: {self._reached()} ({self._rule()})"
        steps = f"{self.steps} SGD steps" if self.steps is not None else "its proxy run"
        if self.outcome == Outcome.OVERRIDDEN:
            return (
                f"base check failed and overridden (--base-check off): {self._reached()} "
                f"({self._rule()}); the candidates trained on a base that has not learned in "
                f"{steps}"
            )
        return (
            f"base check failed: {self._reached()} ({self._rule()}): it has not learned in "
            f"{steps}; the search stopped before its candidates. Lengthen the proxy (--epochs N "
            "or --min-steps N) or rerun with --base-check off"
        )

    def to_attrs(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        return {**values, "outcome": self.outcome.value, "seeds": list(self.seeds)}

    @classmethod
    def from_attrs(cls, values: Mapping[str, Any] | None) -> BaseCheck | None:
        """The stored check, or None (a study without one: checked never, or made before)."""
        if not values:
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        return cls(**{**kept, "outcome": Outcome(kept["outcome"]), "seeds": tuple(kept["seeds"])})


def judge(
    top1_seeds: Sequence[float],
    seeds: Sequence[int],
    val_images: int,
    majority: float,
    steps: int | None = None,
) -> BaseCheck:
    """The check of a base whose runs (seeds ``seeds``) scored ``top1_seeds`` % on val."""
    top1 = sum(top1_seeds) / len(top1_seeds)
    ok, p = passes(top1, val_images, majority)
    return BaseCheck(
        outcome=Outcome.PASSED if ok else Outcome.STOPPED,
        top1=top1,
        seeds=tuple(int(s) for s in seeds),
        majority=majority,
        val_images=val_images,
        p_value=p,
        steps=steps,
    )
