"""The plan a study prints before it trains: its runs per stage, their time here, what it can tell.

Every search, sweep, confirmation and calibration (:func:`plan`, from the ``Prepared`` object of
its kind, :class:`scaler.runner.StudyKind`) states before its first run:

- **The runs it will train**, per stage (:mod:`scaler.plan_stages`): the points its study does
  not hold yet (a resumed study plans only what is missing), identical networks once (the
  runner reuses twins), infeasible candidates never.
- **The time on this machine**: each run's, from the throughput measured and cached here
  (:mod:`scaler.timing`).
- **The smallest difference it can resolve**: a paired t-test between two networks of the
  stage with their paired runs (n − 1 df), 80 % power at the 5 % level, two-sided
  (:func:`scaler.stats.detectable_difference`), at the σ of a paired difference: measured by a
  ``scaler noise`` study of the same data and proxy where the storage holds one, else
  :data:`DEFAULT_SIGMA`.

The plan's estimate is stored on the study (attribute ``plan``) when it is created, so the
actual time can be read beside it; :func:`skipped_points` reads back what ``--time``
(:mod:`scaler.budget`) left for a later run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from scaler.timing import Throughput, run_seconds, throughput

# The σ of a paired difference of val top-1 (points) when no noise study is found: the
# committed reports/noise/README.md measured 4.78 for d=1:w=1.2:px=56 − B0 on the embedded
# data (standard proxy); its σ of one run was 3.96. Measure your own with scaler noise.
DEFAULT_SIGMA: Final = 4.8
DEFAULT_SOURCE: Final = "default: reports/noise/README.md measured 4.78 for B0 on the embedded data"
POWER: Final = 0.8  # of the resolution the plan states
ALPHA: Final = 0.05


# ----------------------------------------------------------------------------------------------
# the plan
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagePlan:
    """One stage of a plan: what it trains, how long that takes here, what it can resolve."""

    name: str
    networks: int
    runs: int
    seconds: float
    pairs: int  # paired runs of each network (seed k shared): a comparison's n
    resolves: float | None  # smallest difference found with 80 % power (None: n < 2)

    def describe(self) -> str:
        what = f"{self.runs} runs ({self.networks} networks)"
        if self.resolves is None:
            tell = f"resolves no difference alone ({self.pairs} run per network: no paired df)"
        else:
            df = self.pairs - 1
            tell = f"resolves ≥ {self.resolves:.1f} points ({self.pairs} paired runs, {df} df)"
        return f"{self.name:<13} {what:<24} ~{duration(self.seconds):>8}   {tell}"


@dataclass(frozen=True)
class Plan:
    """What a study will train, how long that takes here and the smallest difference it sees."""

    kind: str
    study: str
    stages: tuple[StagePlan, ...]
    sigma: float  # σ of a paired difference (points) the resolution assumes
    sigma_source: str
    throughput: Throughput
    pixels: tuple[int, int] = (0, 0)  # smallest and largest input size planned

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def runs(self) -> int:
        return sum(s.runs for s in self.stages)

    def lines(self) -> list[str]:
        """The plan as printed before the first run."""
        return [
            f"plan of {self.study} on {self.throughput.machine}:",
            *(f"  {s.describe()}" for s in self.stages),
            f"  total {self.runs} runs, ~{duration(self.seconds)} here; "
            f"{self.throughput.describe()}",
            f"  resolution: two-sided paired t, 5 % level, 80 % power, at σ {self.sigma:.2f} "
            f"points of a paired difference ({self.sigma_source})",
        ]

    def attrs(self) -> dict[str, Any]:
        """What the study stores (attribute ``plan``): the estimate beside the actual time."""
        return {
            "seconds": round(self.seconds, 1),
            "runs": self.runs,
            "stages": {s.name: [s.runs, round(s.seconds, 1)] for s in self.stages},
            "sigma": self.sigma,
            "machine": self.throughput.machine,
            "threads": self.throughput.threads,
        }


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def stage_plan(name: str, planned: list, pairs: int, sigma: float, source) -> StagePlan:
    """A stage's :class:`StagePlan` from the runs it will train (twins once)."""
    from scaler.stats import detectable_difference

    nets = {p.network: p for p in planned}
    seconds = sum(p.seeds * run_seconds(p.spec, p.settings, source) for p in nets.values())
    return StagePlan(
        name=name,
        networks=len({p.spec.key_str for p in nets.values()}),
        runs=sum(p.seeds for p in nets.values()),
        seconds=seconds,
        pairs=pairs,
        resolves=detectable_difference(sigma, pairs, POWER, ALPHA),
    )


def plan(kind, prepared, announce=None) -> Plan:
    """The plan of a prepared study of ``kind`` (searches, sweeps, confirm, calibrate, noise);
    ``announce()`` is called before this machine's speed is measured (once per cache)."""
    from scaler import plan_stages

    name = kind.__name__.rsplit(".", 1)[-1]
    stages, data, settings = getattr(plan_stages, name)(prepared)
    measured = throughput(settings.device, settings.threads, announce)
    sigma, where = noise_sigma(prepared.storage_url, data, settings)
    source = prepared.source
    sizes = [p.spec.pixels for _, runs, _ in stages for p in runs] or [settings.base_pixels]
    return Plan(
        kind=name,
        study=prepared.study_name,
        stages=tuple(stage_plan(n, runs, pairs, sigma, source) for n, runs, pairs in stages),
        sigma=sigma,
        sigma_source=where,
        throughput=measured,
        pixels=(min(sizes), max(sizes)),
    )


def noise_sigma(storage_url: str, data: str, settings) -> tuple[float, str]:
    """(σ of a paired difference, where it comes from): a finished ``scaler noise`` study of
    ``data`` and the proxy ``settings`` in the storage (under studies/ for the default, one
    file per study), else :data:`DEFAULT_SIGMA`."""
    from scaler.plan_stages import noise_studies

    for name, url in noise_studies(storage_url):
        found = _pair_sigma(name, url, data, settings)
        if found is not None:
            return found, f"measured by the noise study {name}"
    return DEFAULT_SIGMA, DEFAULT_SOURCE


def _pair_sigma(name: str, url: str, data: str, settings) -> float | None:
    from scaler import noise
    from scaler.studies import SPEED_ONLY, load_study, stored_config

    try:
        study = load_study(name, url)
        config = stored_config(study)
        own = {k: v for k, v in settings.to_dict().items() if k not in SPEED_ONLY}
        theirs = {k: v for k, v in config.get("proxy", {}).items() if k not in SPEED_ONLY}
        if config.get("data") != data or own != theirs:
            return None
        pairs = noise.result(study, url).findings.pairs
    except (ValueError, KeyError):  # unfinished or unreadable: not a measurement
        return None
    return math.sqrt(max(pairs[0].split.run, 0.0)) if pairs else None


def skipped_points(study) -> list[str]:
    """Points of ``study`` the time budget skipped and no later trial trained."""
    from scaler.budget import REASON
    from scaler.records import Status, TrialRecord
    from scaler.runner import _covers

    skipped, covered = [], set()
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if rec.status == Status.SKIPPED and rec.reason == REASON:
            if rec.point is not None:  # a sampled trial has none: the sampler proposes anew
                skipped.append(rec.point)
        elif rec.point is not None and _covers(t):
            covered.add(rec.point)
    return sorted({p for p in skipped if p not in covered})
