"""Proxy fidelity against a known truth: do short proxy runs order B0..B3 as ImageNet does?

``calibrate`` trains official members at the proxy (each with its own resolution multiplier
applied to the proxy's base size) with paired seeds (seed k is the same data order, augmentation
stream and init seed for every member), then compares their order with the paper's ImageNet top-1
(Table 2) by Kendall's τ: :mod:`scaler.findings_calibration` computes τ per seed and averaged
(the figure docs/proxy.md states the target in), for the members' mean accuracies, its exact
permutation p, and its 95 % interval (a paired bootstrap over seeds; below 5 seeds the per-seed
values' range, no coverage claimed), and writes the report's sentences.

A calibration is a kind of study (:class:`scaler.runner.StudyKind`): each (member, seed k) run is
one queued trial of an optuna study (default storage ``studies/<name>.db`` or
``$SCALER_STORAGE``; ``--study``, ``--storage``), claimed and trained by the runner like a
search's points. So ``scaler calibrate`` resumes after Ctrl-C (the finished runs are kept, the
same command trains only the missing ones), and ``--workers N`` shares the runs between
processes. The :class:`Calibration` is read back from the trials (:func:`result`), so a resumed
or shared calibration reads exactly as one run in one sitting; its ``wall_time`` is the runs'
training time, summed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Final

from scaler import paired
from scaler.data import DEFAULT_DATA
from scaler.findings_calibration import (
    PAPER_TOP1,
    Scoring,
    report_text,
    scorings,
    tau_p,
    tau_statistics,
)
from scaler.paired import Progress, RunEnds
from scaler.proxy import ProxyConfig, resolve_proxy
from scaler.records import CALIBRATE_ROLE

DEFAULT_MEMBERS: Final = ("b0", "b1", "b2", "b3")


@dataclass(frozen=True)
class CalibrationConfig:
    """What a calibration trains: members, paired seeds, data and proxy."""

    members: tuple[str, ...] = DEFAULT_MEMBERS
    seeds: int = 3
    data: str = DEFAULT_DATA
    # --upsample: bilinear | bicubic | off; None: an existing study's own, else bilinear
    upsample: str | None = None
    proxy: str = "standard"
    proxy_overrides: tuple[tuple[str, Any], ...] = ()

    def proxy_config(self) -> ProxyConfig:
        return resolve_proxy(self.proxy, self.proxy_overrides)

    def validate(self) -> CalibrationConfig:
        """Raise ValueError (one line, naming the option) on invalid settings."""
        unknown = [m for m in self.members if m not in PAPER_TOP1]
        if unknown:
            raise ValueError(
                f"--members {','.join(self.members)!r} is invalid: {unknown[0]!r} is not an "
                f"official member; valid: {', '.join(PAPER_TOP1)}"
            )
        if len(set(self.members)) < 2 or len(set(self.members)) != len(self.members):
            raise ValueError(
                f"--members {','.join(self.members)!r} is invalid: name at least 2 distinct "
                "members, e.g. b0,b1,b2,b3"
            )
        if not 2 <= self.seeds <= 100:
            raise ValueError(f"--seeds {self.seeds} is invalid: it must be in 2..100")
        self.proxy_config()  # unknown presets / invalid overrides raise here
        return self


@dataclass(frozen=True)
class MemberRuns:
    """One member's paired runs."""

    member: str
    pixels: int
    params: int
    flops: int
    top1: tuple[float, ...]  # seed k at index k
    wall_time: float
    threads: tuple[int | None, ...] = ()  # seed k's CPU threads at index k (None: not stored)
    # Seed k's top-1 on the test split and over val and test images together (empty when the
    # data have no test split).
    test: tuple[float, ...] = ()
    pooled: tuple[float, ...] = ()

    @property
    def mean(self) -> float:
        return sum(self.top1) / len(self.top1)

    @property
    def std(self) -> float:
        m, n = self.mean, len(self.top1)
        return math.sqrt(sum((x - m) ** 2 for x in self.top1) / (n - 1))


@dataclass(frozen=True)
class Calibration:
    """A calibration's result; ``to_dict`` is what ``calibration.json`` holds."""

    config: CalibrationConfig
    proxy_settings: dict[str, Any]  # the ProxyConfig as stored; calibration.json's "proxy"
    data_classes: int
    runs: tuple[MemberRuns, ...]
    tau_per_seed: tuple[float, ...]
    tau_mean: float  # mean of tau_per_seed: the figure the target is stated in
    tau_of_means: float
    # 95 % paired bootstrap over seeds, of tau_mean; below 5 seeds the per-seed τ's range
    tau_interval: tuple[float, float]
    wall_time: float
    tau_p: float = math.nan  # exact one-sided permutation p of tau_mean (findings_calibration)
    # τ and the adjacent members' paired differences scored on val, test and both
    scorings: tuple[Scoring, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d = {("proxy" if k == "proxy_settings" else k): v for k, v in d.items()}
        d["config"]["members"] = list(self.config.members)
        d["paper_top1"] = {m: PAPER_TOP1[m] for m in self.config.members}
        for r, row in zip(self.runs, d["runs"], strict=True):
            row.update(mean=r.mean, std=r.std)
        return d


def member_specs(cfg: CalibrationConfig, source) -> list[tuple[str, Any]]:
    """(member, spec at the proxy) pairs; ValueError when the data cannot serve a member."""
    from scaler.spec import preset

    base_pixels = cfg.proxy_config().base_pixels
    specs = [(m, preset(m, base_pixels)) for m in cfg.members]
    paired.check_served(specs, source, cfg.data, base_pixels)
    return specs


# ----------------------------------------------------------------------------------------------
# the study: one trial per (member, paired seed), run by the runner like every other kind
# ----------------------------------------------------------------------------------------------

KIND: Final = "calibration"


@dataclass(frozen=True)
class Prepared:
    """A validated calibration, ready to run: nothing has been written yet."""

    cfg: CalibrationConfig
    study_name: str
    storage_url: str
    source: Any
    specs: tuple[tuple[str, Any], ...]  # (member, spec at the proxy)
    stored: dict[str, Any]


def default_study_name(cfg: CalibrationConfig, fingerprint: str) -> str:
    """calibration-<data>-<proxy>-<hash6 of the data, the proxy, the members and seeds>."""
    return paired.default_study_name(KIND, cfg, cfg.members, fingerprint)


def prepare(
    cfg: CalibrationConfig, study: str | None = None, storage: str | None = None
) -> Prepared:
    """Validate everything a calibration needs (ValueError: one line); writes nothing."""
    source, name, url = paired.target(cfg, study, storage, default_study_name)
    specs = tuple(member_specs(cfg, source))  # a size the data cannot serve fails here
    return Prepared(
        cfg, name, url, source, specs, paired.stored(cfg, source, "members", cfg.members)
    )


def trial_bytes(p: Prepared) -> int:
    """GPU memory the largest member's run may take."""
    return paired.trial_bytes(p)


def queued_points(cfg: CalibrationConfig) -> list:
    """Every (member, seed k) run, member by member: the order the runs are trained in."""
    return paired.queued_points(CALIBRATE_ROLE, cfg.members, cfg.seeds)


def create(p: Prepared):
    """Create the study (its runs queued once), or load it and refuse a changed configuration."""
    return paired.create(p, KIND, CALIBRATE_ROLE)


def work(p: Prepared, progress=None) -> None:
    """Train the queued runs until none is left and no other worker trains one."""
    paired.work(create(p), p, CALIBRATE_ROLE, progress)


def result(study, storage_url: str) -> Calibration:
    """The calibration its study's trials hold (ValueError while a run is missing or failed)."""
    from scaler.studies import stored_config

    config = stored_config(study)
    cfg = CalibrationConfig(
        members=tuple(config["members"]),
        seeds=int(config["seeds"]),
        data=config["data"],
        upsample=config.get("upsample"),
        proxy=config["proxy_preset"],
        proxy_overrides=tuple(config["proxy_overrides"].items()),
    )
    found = paired.finished_runs(study, CALIBRATE_ROLE)
    runs = [_member_runs(m, cfg.seeds, found) for m in cfg.members]
    per_seed, mean, of_means, interval = tau_statistics(runs)
    return Calibration(
        config=cfg,
        proxy_settings=config["proxy"],
        data_classes=int(config["data_classes"]),
        runs=tuple(runs),
        tau_per_seed=per_seed,
        tau_mean=mean,
        tau_of_means=of_means,
        tau_interval=interval,
        wall_time=sum(r.wall_time for r in runs),  # training time, however many sittings
        tau_p=tau_p(per_seed, len(runs)),
        scorings=scorings(runs),
    )


def _member_runs(member: str, seeds: int, runs: paired.Runs) -> MemberRuns:
    """One member's paired runs, seed k at index k (ValueError naming a missing one)."""
    recs = paired.seed_records(member, seeds, runs, "calibration")
    test, pooled = _test_and_pooled(recs)
    return MemberRuns(
        member=member,
        pixels=int(recs[0].pixels),
        params=int(recs[0].params),
        flops=int(recs[0].flops),
        top1=tuple(float(r.top1_seeds[0]) for r in recs),
        wall_time=sum(float(r.wall_time) for r in recs),
        threads=tuple(r.threads for r in recs),
        test=test,
        pooled=pooled,
    )


def _test_and_pooled(recs: list) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Each run's test top-1 and its top-1 over val and test images ((), () without test)."""
    from scaler.records import unpack_bits

    if any(not r.test_correct or not r.val_correct for r in recs):
        return (), ()
    test, pooled = [], []
    for r in recs:
        val, tst = unpack_bits(r.val_correct[0]), unpack_bits(r.test_correct[0])
        test.append(float(r.test_top1_seeds[0]))
        pooled.append(100.0 * (val.sum() + tst.sum()) / (val.size + tst.size))
    return tuple(test), tuple(pooled)


def run(
    cfg: CalibrationConfig,
    study: str | None = None,
    storage: str | None = None,
    progress=None,
    workers: int = 1,
) -> Calibration:
    """Run (or resume) a calibration; the Python entry point behind ``scaler calibrate``.

    ``progress`` takes the runner's events (:class:`scaler.runner.Event`).
    """
    import sys

    from scaler.runner import run_study

    return run_study(sys.modules[__name__], prepare(cfg, study, storage), progress, workers)


def calibrate(
    cfg: CalibrationConfig,
    progress: Progress | None = None,
    *,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
) -> Calibration:
    """Train every member with every paired seed (those its study lacks) and measure the order
    against the paper's. ``progress(member, seed index, top-1)`` follows each run that ends."""
    return run(cfg, study, storage, None if progress is None else RunEnds(progress), workers)


def write_report(cal: Calibration, out) -> list:
    """Write ``calibration.json``, ``runs.csv`` and ``README.md`` into the folder ``out``."""
    import json

    from scaler.files import write_files

    rows = ["member,seed,pixels,params,flops,top1,test_top1,pooled_top1"]
    for r in cal.runs:
        for k, t in enumerate(r.top1):
            rest = f",{r.test[k]},{r.pooled[k]}" if r.test else ",,"
            rows.append(
                f"{r.member},{cal.proxy_settings['seed'] + k},{r.pixels},{r.params},{r.flops},"
                f"{t}{rest}"
            )
    files = {
        "calibration.json": json.dumps(cal.to_dict(), indent=2) + "\n",
        "runs.csv": "\n".join(rows) + "\n",
        "README.md": report_text(cal),
    }
    return write_files(out, files)
