"""Paired runs of named networks: one study trial per (network, seed k), for every kind that
trains a fixed list of networks with the same seeds (``scaler calibrate``, ``scaler noise``).

Seed k is the proxy's seed + k for every network: the same data order, augmentation stream and
initial seeding, so run k of one network pairs with run k of another and their difference
carries no seed-order noise of its own. Each (network, k) is a queued point
``<role>:<name>:<k>``; the runner claims, trains and records it like any other point, so these
studies resume after Ctrl-C and share their runs between ``--workers``. What a kind adds is its
own configuration, its checks and what it reads from the runs; the queue, the trials, the
record of each run and the read-back of "seed k of network X" are here, once.

A kind's ``Prepared`` gives this module ``specs`` ((name, spec at the proxy) pairs), ``source``
(the data) and ``cfg`` (with ``seeds`` and ``proxy_config()``); names are stored in the
record's ``member`` field (an official member for a calibration, a network label otherwise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

Runs = tuple[dict[tuple[str, int], Any], dict[tuple[str, int], str]]


def queued_points(role: str, names, seeds: int) -> list:
    """Every (name, seed k) run, network by network: the order the runs are trained in."""
    from scaler.runner import QueuedPoint

    return [
        QueuedPoint(
            id=f"{role}:{name}:{k}",
            params={},
            attrs={"role": role, "member": name, "seed_index": k},
        )
        for name in names
        for k in range(seeds)
    ]


def target(cfg, study: str | None, storage: str | None, default_name_fn) -> tuple:
    """(data source, study name, storage URL) of a configuration, its device checked first."""
    from scaler.device import check_device
    from scaler.studies import resolve_target

    cfg.validate()
    check_device(cfg.proxy_config().device)
    return resolve_target(cfg, study, storage, default_name_fn)


def default_study_name(kind: str, cfg, names, fingerprint: str) -> str:
    """<kind>-<data>-<proxy>-<hash6 of the data, the proxy's results-relevant settings, the
    networks and the seeds>."""
    from scaler.studies import SPEED_ONLY, default_name, proxy_json

    settings = proxy_json(cfg.proxy_config(), drop=SPEED_ONLY)
    hashed = f"{fingerprint}|{settings}|{','.join(names)}|{cfg.seeds}"
    return default_name(kind, cfg.data, cfg.proxy, hashed)


def stored(cfg, source, key: str, names) -> dict[str, Any]:
    """The configuration as stored in the study (JSON-safe) and compared on every rerun; the
    networks under ``key``."""
    return {
        key: list(names),
        "seeds": cfg.seeds,
        "data": cfg.data,
        "data_fingerprint": source.fingerprint(),
        "upsample": source.upsample,  # resolved: given, the study's own, or the default
        "data_classes": source.num_classes,
        "proxy_preset": cfg.proxy,
        "proxy_overrides": dict(cfg.proxy_overrides),
        "proxy": cfg.proxy_config().to_dict(),
    }


def check_served(specs, source, data: str, base_pixels: int) -> None:
    """ValueError (one line) when the data cannot serve a network at its proxy pixels."""
    for name, spec in specs:
        if source.max_pixels is not None and spec.pixels > source.max_pixels:
            raise ValueError(
                f"--base-pixels {base_pixels} is invalid for --data {data}: {name} trains at "
                f"{spec.pixels} px and the images are {source.max_pixels} px (--upsample off); "
                "use --upsample bilinear"
            )


def trial_bytes(p) -> int:
    """GPU memory the largest network's run may take."""
    from scaler.complexity import train_memory

    batch = p.cfg.proxy_config().batch_size
    return max(train_memory(spec, batch, p.source.num_classes) for _, spec in p.specs)


def create(p, kind: str, role: str):
    """Create the study (its runs queued once), or load it and refuse a changed configuration."""
    from scaler.runner import ensure_queue
    from scaler.studies import StudySpec, open_study

    points = queued_points(role, [n for n, _ in p.specs], p.cfg.seeds)
    spec = StudySpec(p.study_name, p.storage_url, kind, p.stored)
    return open_study(spec, on_create=lambda st: ensure_queue(st, points))


class Describe:
    """Turns a claimed trial into its run: the named network, trained with seed k alone."""

    def __init__(self, p, role: str, variants: bool = False):
        self.role = role
        self.variants = variants
        self.specs = dict(p.specs)
        self.classes = p.source.num_classes
        self.settings = p.cfg.proxy_config()

    def __call__(self, trial):
        from scaler.complexity import count
        from scaler.records import TrialRecord, write
        from scaler.runner import Job

        rec = TrialRecord.from_trial(trial)
        spec = self.specs[rec.member]
        cost = count(spec, self.classes)
        write(trial, pixels=spec.pixels, params=cost.params, flops=cost.flops)
        seed = self.settings.seed + rec.seed_index  # paired: seed k is the same for every network
        return Job(
            spec=spec,
            seeds=1,
            prune=False,
            info={"member": rec.member, "seed_index": rec.seed_index, "pixels": spec.pixels},
            proxy_settings=dataclasses.replace(self.settings, seed=seed),
            key=f"{self.role}:{rec.member}:{seed}",  # never another run's twin
            variants=self.variants,
        )


def work(study, p, role: str, progress=None, variants: bool = False) -> None:
    """Train the queued runs until none is left and no other worker trains one; ``variants``
    scores each run every other way too (a noise study's methods)."""
    from scaler.runner import Trainer, work_queue

    names = [n for n, _ in p.specs]
    trainer = Trainer(Describe(p, role, variants), p.source, p.cfg.proxy_config(), progress)
    work_queue(study, lambda: queued_points(role, names, p.cfg.seeds), trainer)


def finished_runs(study, role: str) -> Runs:
    """(name, seed index) → the record of its finished run, and → why a run failed."""
    from optuna.trial import TrialState

    from scaler.records import Status, TrialRecord

    done: dict[tuple[str, int], Any] = {}
    failed: dict[tuple[str, int], str] = {}
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if rec.role != role:
            continue
        if t.state == TrialState.COMPLETE:
            done[(rec.member, rec.seed_index)] = rec
        elif rec.status == Status.FAILED:
            failed[(rec.member, rec.seed_index)] = rec.reason
    return done, failed


def seed_records(name: str, seeds: int, runs: Runs, what: str) -> list:
    """``name``'s records, seed k at index k; naming the ``what`` (e.g. "calibration"), a
    TrainError for a run that failed and a ValueError for one not trained yet."""
    done, failed = runs
    missing = [k for k in range(seeds) if (name, k) not in done]
    if missing:
        k = missing[0]
        lacks = f"the {what} has no run of {name} with seed index {k}"
        if (name, k) in failed:  # a run that failed, not bad input: exit 1, as a failed run
            from scaler.train import TrainError

            raise TrainError(
                f"{lacks}: it failed ({failed[(name, k)]}); a failed run is not retried: give "
                "another --study"
            )
        raise ValueError(f"{lacks}: not trained yet: rerun the command")
    return [done[(name, k)] for k in range(seeds)]


Progress = Callable[[str, int, float], None]  # network, seed index, top-1


class RunEnds:
    """A runner progress function that calls ``progress(name, k, top-1)`` as a run ends."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.started: dict[int, dict[str, Any]] = {}

    def __call__(self, event) -> None:
        if event.kind == "trial_start":
            self.started[event.trial] = event.info
        elif event.kind == "trial_end":
            info = self.started.pop(event.trial)
            self.progress(info["member"], info["seed_index"], event.info["top1"])
