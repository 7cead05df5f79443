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

from scaler.timing import Throughput, run_cost, throughput

# The σ of a paired difference of val top-1 (points) when no noise study is found: for
# d=1:w=1.2:px=56 − B0 under the default data and proxy (fashion, EMA + flip TTA), 1.86 on
# seeds 300..305 and 1.37 on 400..405 (reports/noise-fashion), 1.63 pooled (10 df). 0.6's
# default (embedded, last weights) measured 4.78 (reports/noise). Measure your own with
# scaler noise.
DEFAULT_SIGMA: Final = 1.63
DEFAULT_SOURCE: Final = (
    "default: reports/noise-fashion measured 1.63 for B0 and a 2× network on the default data"
)
POWER: Final = 0.8  # of the resolution the plan states
ALPHA: Final = 0.05


# ----------------------------------------------------------------------------------------------
# the plan
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speed:
    """How fast runs go here: alone, and beside the study's other worker processes."""

    alone: Throughput
    shared: Throughput | None = None  # timed with `shared.processes` processes at once

    @property
    def workers(self) -> int:
        return 1 if self.shared is None else self.shared.processes

    def run_seconds(self, cost: tuple, active: int = 1, first: bool = False) -> float:
        """Seconds of a run of ``cost`` (:func:`scaler.timing.run_cost`) while ``active``
        processes train: linear between the speed alone and with every worker training.
        ``first``: the process's first run of that network (it pays for cuDNN's tuning)."""

        def at(t: Throughput) -> float:
            extra = t.first_seconds(cost[0], cost[3]) if first else 0.0
            return t.run_seconds(*cost) + extra

        alone = at(self.alone)
        if self.shared is None or active <= 1:
            return alone
        share = (min(active, self.workers) - 1) / (self.workers - 1)
        return alone + share * (at(self.shared) - alone)


def makespan(durations: list[float], workers: int) -> float:
    """Wall time of trials claimed in queue order, each by the first worker free."""
    free = [0.0] * max(1, workers)
    for d in durations:
        free[free.index(min(free))] += d
    return max(free)


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
    shared: Throughput | None = None  # the speed with every worker process training
    pixels: tuple[int, int] = (0, 0)  # smallest and largest input size planned

    @property
    def start(self) -> float:
        """Seconds for the worker processes to start (none without workers)."""
        return 0.0 if self.shared is None else self.shared.start

    @property
    def seconds(self) -> float:
        return self.start + sum(s.seconds for s in self.stages)

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
            *(
                [
                    f"  {self.shared.processes} worker processes, ~{self.start:.0f} s to start; "
                    f"with all of them training, {self.shared.describe()}"
                ]
                if self.shared
                else []
            ),
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
            "workers": 1 if self.shared is None else self.shared.processes,
        }


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def stage_plan(
    name: str, planned: list, pairs: int, sigma: float, source, speed: Speed
) -> StagePlan:
    """A stage's :class:`StagePlan` from the runs it will train (twins once): a network's
    seeds one after another (one trial), its trials on the study's workers in queue order."""
    from scaler.stats import detectable_difference

    nets = {p.network: p for p in planned}
    active = min(speed.workers, len(nets))
    trials = []
    for p in nets.values():  # a trial's network is new to its worker: its first run pays more
        cost = run_cost(p.spec, p.settings, source)
        rest = (p.seeds - 1) * speed.run_seconds(cost, active)
        trials.append(speed.run_seconds(cost, active, first=True) + rest)
    seconds = makespan(trials, speed.workers) if trials else 0.0
    return StagePlan(
        name=name,
        networks=len({p.spec.key_str for p in nets.values()}),
        runs=sum(p.seeds for p in nets.values()),
        seconds=seconds,
        pairs=pairs,
        resolves=detectable_difference(sigma, pairs, POWER, ALPHA),
    )


def plan(kind, prepared, announce=None, workers: int = 1) -> Plan:
    """The plan of a prepared study of ``kind`` (searches, sweeps, confirm, calibrate, noise)
    on ``workers`` processes; ``announce(what)`` is called before this machine's speed is
    measured (once per cache)."""
    from scaler import plan_stages

    name = kind.__name__.rsplit(".", 1)[-1]
    stages, data, settings = getattr(plan_stages, name)(prepared)
    speed = measured_speed(settings, workers, announce)
    sigma, where = noise_sigma(prepared.storage_url, data, settings)
    source = prepared.source
    sizes = [p.spec.pixels for _, runs, _ in stages for p in runs] or [settings.base_pixels]
    return Plan(
        kind=name,
        study=prepared.study_name,
        stages=tuple(stage_plan(n, runs, pairs, sigma, source, speed) for n, runs, pairs in stages),
        sigma=sigma,
        sigma_source=where,
        throughput=speed.alone,
        shared=speed.shared,
        pixels=(min(sizes), max(sizes)),
    )


def measured_speed(settings, workers: int, announce=None) -> Speed:
    """The :class:`Speed` of runs of ``settings`` here: alone, and with ``workers`` processes
    at once, each with the threads a worker gets (:func:`scaler.workers.placements`)."""
    from scaler.workers import placements

    def say(what: str):
        return None if announce is None else lambda: announce(what)

    alone = throughput(settings.device, settings.threads, say("B0 alone"), processes=1)
    if workers <= 1:
        return Speed(alone)
    threads = settings.threads or placements(workers)[0].threads
    what = f"B0 in {workers} processes at once"
    return Speed(alone, throughput(settings.device, threads, say(what), processes=workers))


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


def clock(study, started: float, ended: float) -> dict[str, float]:
    """The time a command took, beside its plan's: ``seconds`` (the command's runs, from
    ``started`` to ``ended``, ``time.time()``), ``planned_part`` (until the last trial of the
    runs a plan covers ended: every trial but a race's later rounds, whose seeds start at
    :data:`scaler.racing.START` or later) and ``later_rounds`` (trials of those rounds)."""
    from scaler.racing import START
    from scaler.records import CONFIRM_ROLE, Status, TrialRecord

    ends, later = [], 0
    for t in study.get_trials(deepcopy=False):
        if t.datetime_complete is None or t.datetime_complete.timestamp() < started:
            continue  # unfinished, or an earlier command's
        rec = TrialRecord.from_trial(t)
        if rec.status in (Status.SKIPPED, Status.INFEASIBLE, Status.DUPLICATE):
            continue  # no run: a record written when the runs around it ended
        if rec.role == CONFIRM_ROLE and rec.seed_list and min(rec.seed_list) >= START:
            later += 1
        else:
            ends.append(t.datetime_complete.timestamp())
    return {
        "seconds": round(ended - started, 1),
        "planned_part": round((max(ends) if ends else ended) - started, 1),
        "later_rounds": later,
    }


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
