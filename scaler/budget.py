"""A time budget (``--time 20m``): no run starts that the plan says cannot finish in time.

The budget is a deadline on the wall clock, set once by the command (:func:`limited`) and read
by every trainer of the study (:func:`current`), in this process and in worker processes (it
travels in the environment variable :data:`ENV`, which worker processes inherit). It is no part
of a study's configuration: the same command with a larger budget resumes the same study, and
trains what the smaller one skipped.

A run that does not fit is recorded as a skipped trial with the reason :data:`REASON` (it does
not cover its point, so a later run trains it); :func:`scaler.plan.skipped_points` reads what
is still skipped back from the study.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

ENV: Final = "SCALER_DEADLINE"
REASON: Final = "time budget"
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_duration(text: str, option: str = "--time") -> float:
    """Seconds of ``90s``, ``20m``, ``1.5h`` (a bare number: seconds); ValueError (one line)."""
    match = _DURATION.match(str(text).lower())
    seconds = float(match[1]) * _UNITS[match[2] or "s"] if match else math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(
            f"{option} {text!r} is invalid: give a positive duration such as 90s, 20m or 1h"
        )
    return seconds


@dataclass(frozen=True)
class Budget:
    """A deadline (``time.time()`` seconds) and the budget it came from."""

    deadline: float
    seconds: float  # the budget as given

    def left(self) -> float:
        """Seconds left until the deadline (negative past it)."""
        return self.deadline - time.time()

    def fits(self, seconds: float) -> bool:
        """Whether work estimated to take ``seconds`` ends before the deadline.

        The question every loop that starts runs asks first (a confirmation's racing too).
        """
        return seconds <= self.left()


def current() -> Budget | None:
    """The budget the running command set (None: no ``--time``)."""
    value = os.environ.get(ENV, "")
    if not value:
        return None
    deadline, _, seconds = value.partition(":")
    return Budget(float(deadline), float(seconds or 0.0))


@contextlib.contextmanager
def limited(seconds: float | None) -> Iterator[Budget | None]:
    """Within the block every trainer (and worker process) keeps to ``seconds`` from now."""
    if seconds is None:
        yield None
        return
    before = os.environ.get(ENV)
    budget = Budget(time.time() + seconds, seconds)
    os.environ[ENV] = f"{budget.deadline!r}:{seconds!r}"
    try:
        yield budget
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def marked(points: list, skipped: set[str]) -> list:
    """``points`` (:class:`scaler.runner.QueuedPoint`) with those in ``skipped`` marked as
    skipped for time: the runner records them once and does not queue them again."""
    import dataclasses

    if not skipped:
        return points
    return [
        dataclasses.replace(p, skip=REASON) if p.id in skipped and not p.skip else p for p in points
    ]


def check(budget: Budget, trial, job_of: tuple, skipped: set[str]) -> None:
    """Skip ``trial`` (optuna.TrialPruned, status skipped) when the runs of its job cannot end
    before the deadline; ``job_of`` = (job, proxy settings, data source)."""
    import optuna

    from scaler.records import Status, TrialRecord, write
    from scaler.timing import job_seconds

    need = job_seconds(*job_of)
    if budget.fits(need):
        return
    skipped.add(TrialRecord.from_trial(trial).point or f"#{trial.number}")
    write(trial, status=Status.SKIPPED, reason=REASON)
    left = max(0.0, budget.left())
    raise optuna.TrialPruned(f"{REASON}: needs ~{need:.0f} s, {left:.0f} s left")
