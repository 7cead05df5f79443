"""Proxy fidelity against a known truth: do short proxy runs order B0..B3 as ImageNet does?

``calibrate`` trains official members at the proxy (each with its own resolution multiplier
applied to the proxy's base size) with paired seeds (seed k is the same data order, augmentation
stream and init seed for every member), then compares their order with the paper's ImageNet top-1
(Table 2) by Kendall's τ: :mod:`scaler.findings_calibration` computes τ per seed and averaged
(the figure the README's target is stated in), for the members' mean accuracies, its exact
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from scaler.findings_calibration import PAPER_TOP1, report_text, tau_p, tau_statistics
from scaler.proxy import ProxyConfig, resolve_proxy

DEFAULT_MEMBERS: Final = ("b0", "b1", "b2", "b3")


@dataclass(frozen=True)
class CalibrationConfig:
    """What a calibration trains: members, paired seeds, data and proxy."""

    members: tuple[str, ...] = DEFAULT_MEMBERS
    seeds: int = 3
    data: str = "embedded"
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
    for m, spec in specs:
        if source.max_pixels is not None and spec.pixels > source.max_pixels:
            raise ValueError(
                f"--base-pixels {base_pixels} is invalid for --data {cfg.data}: {m} trains at "
                f"{spec.pixels} px and the data serve at most {source.max_pixels} px"
            )
    return specs


# ----------------------------------------------------------------------------------------------
# the study: one trial per (member, paired seed), run by the runner like every other kind
# ----------------------------------------------------------------------------------------------

KIND: Final = "calibration"
# Proxy fields that change speed, not results: left out of the default name's hash.
_SPEED_ONLY: Final = ("threads", "device")


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
    from scaler.studies import default_name, proxy_json

    settings = proxy_json(cfg.proxy_config(), drop=_SPEED_ONLY)
    hashed = f"{fingerprint}|{settings}|{','.join(cfg.members)}|{cfg.seeds}"
    return default_name(KIND, cfg.data, cfg.proxy, hashed)


def stored(cfg: CalibrationConfig, source) -> dict[str, Any]:
    """The configuration as stored in the study (JSON-safe) and compared on every rerun."""
    return {
        "members": list(cfg.members),
        "seeds": cfg.seeds,
        "data": cfg.data,
        "data_fingerprint": source.fingerprint(),
        "data_classes": source.num_classes,
        "proxy_preset": cfg.proxy,
        "proxy_overrides": dict(cfg.proxy_overrides),
        "proxy": cfg.proxy_config().to_dict(),
    }


def prepare(
    cfg: CalibrationConfig, study: str | None = None, storage: str | None = None
) -> Prepared:
    """Validate everything a calibration needs (ValueError: one line); writes nothing."""
    from scaler.data import parse_data
    from scaler.device import check_device
    from scaler.studies import check_storage_url, check_study_name, default_storage

    cfg.validate()
    check_device(cfg.proxy_config().device)
    source = parse_data(cfg.data)
    specs = tuple(member_specs(cfg, source))  # a size the data cannot serve fails here
    name = check_study_name(study or default_study_name(cfg, source.fingerprint()))
    url = check_storage_url(storage) if storage else default_storage(name)
    return Prepared(cfg, name, url, source, specs, stored(cfg, source))


def trial_bytes(p: Prepared) -> int:
    """GPU memory the largest member's run may take."""
    from scaler.complexity import train_memory

    batch = p.cfg.proxy_config().batch_size
    return max(train_memory(spec, batch, p.source.num_classes) for _, spec in p.specs)


def queued_points(cfg: CalibrationConfig) -> list:
    """Every (member, seed k) run, member by member: the order the runs are trained in."""
    from scaler.records import CALIBRATE_ROLE
    from scaler.runner import QueuedPoint

    return [
        QueuedPoint(
            id=f"{CALIBRATE_ROLE}:{m}:{k}",
            params={},
            attrs={"role": CALIBRATE_ROLE, "member": m, "seed_index": k},
        )
        for m in cfg.members
        for k in range(cfg.seeds)
    ]


def create(p: Prepared):
    """Create the study (its runs queued once), or load it and refuse a changed configuration."""
    from scaler.runner import ensure_queue
    from scaler.studies import StudySpec, open_study

    spec = StudySpec(p.study_name, p.storage_url, KIND, p.stored)
    return open_study(spec, on_create=lambda st: ensure_queue(st, queued_points(p.cfg)))


class Describe:
    """Turns a claimed trial into its run: the member's network, trained with seed k alone."""

    def __init__(self, p: Prepared):
        self.specs = dict(p.specs)
        self.classes = p.source.num_classes
        self.settings = p.cfg.proxy_config()

    def __call__(self, trial):
        from scaler.complexity import count
        from scaler.records import CALIBRATE_ROLE, TrialRecord, write
        from scaler.runner import Job

        rec = TrialRecord.from_trial(trial)
        spec = self.specs[rec.member]
        cost = count(spec, self.classes)
        write(trial, pixels=spec.pixels, params=cost.params, flops=cost.flops)
        seed = self.settings.seed + rec.seed_index  # paired: seed k is the same for every member
        return Job(
            spec=spec,
            seeds=1,
            prune=False,
            info={"member": rec.member, "seed_index": rec.seed_index, "pixels": spec.pixels},
            proxy_settings=dataclasses.replace(self.settings, seed=seed),
            key=f"{CALIBRATE_ROLE}:{rec.member}:{seed}",  # never another run's twin
        )


def work(p: Prepared, progress=None) -> None:
    """Train the queued runs until none is left and no other worker trains one."""
    from scaler.runner import Trainer, work_queue

    study = create(p)
    trainer = Trainer(Describe(p), p.source, p.cfg.proxy_config(), progress)
    work_queue(study, lambda: queued_points(p.cfg), trainer)


def result(study, storage_url: str) -> Calibration:
    """The calibration its study's trials hold (ValueError while a run is missing or failed)."""
    from scaler.studies import stored_config

    config = stored_config(study)
    cfg = CalibrationConfig(
        members=tuple(config["members"]),
        seeds=int(config["seeds"]),
        data=config["data"],
        proxy=config["proxy_preset"],
        proxy_overrides=tuple(config["proxy_overrides"].items()),
    )
    found = _finished_runs(study)
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
    )


def _finished_runs(study) -> tuple[dict[tuple[str, int], Any], dict[tuple[str, int], str]]:
    """(member, seed index) → the record of its finished run, and → why a run failed."""
    from optuna.trial import TrialState

    from scaler.records import CALIBRATE_ROLE, Status, TrialRecord

    done: dict[tuple[str, int], Any] = {}
    failed: dict[tuple[str, int], str] = {}
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if rec.role != CALIBRATE_ROLE:
            continue
        if t.state == TrialState.COMPLETE:
            done[(rec.member, rec.seed_index)] = rec
        elif rec.status == Status.FAILED:
            failed[(rec.member, rec.seed_index)] = rec.reason
    return done, failed


def _member_runs(member: str, seeds: int, runs: tuple[dict, dict]) -> MemberRuns:
    """One member's paired runs, seed k at index k (ValueError naming a missing one)."""
    done, failed = runs
    missing = [k for k in range(seeds) if (member, k) not in done]
    if missing:
        k = missing[0]
        why = (
            f"it failed ({failed[(member, k)]}); a failed run is not retried: give another --study"
            if (member, k) in failed
            else "not trained yet: rerun the command"
        )
        raise ValueError(f"the calibration has no run of {member} with seed index {k}: {why}")
    recs = [done[(member, k)] for k in range(seeds)]
    return MemberRuns(
        member=member,
        pixels=int(recs[0].pixels),
        params=int(recs[0].params),
        flops=int(recs[0].flops),
        top1=tuple(float(r.top1_seeds[0]) for r in recs),
        wall_time=sum(float(r.wall_time) for r in recs),
        threads=tuple(r.threads for r in recs),
    )


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


Progress = Callable[[str, int, float], None]  # member, seed index, top-1


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


class RunEnds:
    """A runner progress function that calls ``progress(member, k, top-1)`` as a run ends."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.started: dict[int, dict[str, Any]] = {}

    def __call__(self, event) -> None:
        if event.kind == "trial_start":
            self.started[event.trial] = event.info
        elif event.kind == "trial_end":
            info = self.started.pop(event.trial)
            self.progress(info["member"], info["seed_index"], event.info["top1"])


def write_report(cal: Calibration, out) -> list:
    """Write ``calibration.json``, ``runs.csv`` and ``README.md`` into the folder ``out``."""
    import json

    from scaler.files import write_files

    rows = ["member,seed,pixels,params,flops,top1"]
    for r in cal.runs:
        for k, t in enumerate(r.top1):
            rows.append(
                f"{r.member},{cal.proxy_settings['seed'] + k},{r.pixels},{r.params},{r.flops},{t}"
            )
    files = {
        "calibration.json": json.dumps(cal.to_dict(), indent=2) + "\n",
        "runs.csv": "\n".join(rows) + "\n",
        "README.md": report_text(cal),
    }
    return write_files(out, files)
