"""Scaling curves: sweeps of fixed (d, w, r) points, each sweep an optuna study.

The paper's curves (Tan & Le 2019) are reproduced as *sweeps*: a fixed list of networks, each
trained on the same short proxy run as the search, so that their top-1 can be drawn against
measured FLOPs and compared with the search's compound point.

- ``width-by-baseline`` (the paper's Figure 4, our "Figure 1"): widths w for each baseline
  (d, r); one series per baseline, labelled "d=2.0, r=1.3".
- ``single`` (the paper's Figure 3): one series per scaled dimension (width, depth and/or
  resolution), the other two multipliers at 1. Several dimensions can share one study, and then
  the (1, 1, 1) point they all start from is trained once.
- ``compound``: the family φ = 0..K of exported coefficients, d = α^φ, w = β^φ, r = γ^φ.
- ``compare`` (the paper's Table 3, and Table 7 for B0): at one budget B, the compound network
  (d, w given, γ solved) against depth-only, width-only and resolution-only networks, each
  solved to the same *measured* FLOPs (B × the base's at its cost pixels), with the base; every
  point trained with the same seeds, so compound and each single dimension pair seed by seed
  (:func:`scaler.findings_sweeps.compare_verdicts`: a paired t-test per dimension, its df, and
  a verdict). As in a
  search, the networks that scale resolution train at the proxy input size solved to B × the
  base's proxy FLOPs (not round(r × proxy pixels)); the report states the proxy costs.

Every kind scales the configuration's base network (``--base``, :mod:`scaler.bases`); a base
other than EfficientNet-B0 is stored and named in the default study name.

How a sweep runs (the reasons):

- **Resolution is a multiplier of the proxy's base pixels** (``round_pixels(r, base_pixels)``),
  exactly as the search trains its candidates, so sweep and search points share one FLOPs axis:
  fvcore FLOPs of the proxy network at the proxy resolution.
- **Every point is a queued trial**, enqueued once (idempotent on resume); the runner
  (:mod:`scaler.runner`) hands each to exactly one worker, and identical realized networks
  (same ``network_key``) are trained once and reused.
- **Caps.** ``max_flops`` lets CPU users run a reduced sweep: points above it, or needing more
  pixels than the data serve, are recorded as *skipped* (a pruned trial with the reason) and
  never trained. The cap is not part of the configuration: rerunning with a higher cap resumes
  the same study and trains the points it now allows. The skip decision uses the exact cost
  model of :mod:`scaler.complexity` (pinned to fvcore by tests) so that no point is traced, let
  alone built, only to be skipped; trained points record fvcore's own count.
- **Resume and refusal** work as in the search: the configuration is stored with the study and
  a different one is refused with what differs. Failed trials are recorded with their reason and
  never stop the sweep.

This module runs a sweep (the StudyKind functions of :mod:`scaler.runner`: prepare,
trial_bytes, create, work, result, run) and reads it back. Its configuration and the options'
parsing are :mod:`scaler.sweep_config`; the series and points it trains, with their costs and
skip reasons, are :mod:`scaler.sweep_points`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import Any

from scaler import bases
from scaler.records import Status, write
from scaler.results import Noise, finished, noise, sweep_frame
from scaler.runner import (
    Job,
    ProgressFn,
    QueuedPoint,
    Trainer,
    ensure_queue,
    run_study,
    work_queue,
)
from scaler.spec import MAX_MULTIPLIER, scale
from scaler.studies import (
    SPEED_ONLY,
    StudySpec,
    default_name,
    default_storage,
    load_study,
    mask_url,
    open_study,
    proxy_json,
    resolve_target,
    stored_config,
)
from scaler.sweep_config import SweepConfig
from scaler.sweep_points import Point, sweep_points

# ----------------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A validated sweep, ready to run: nothing has been written yet."""

    cfg: SweepConfig
    source: Any
    study_name: str
    storage_url: str
    points: tuple[Point, ...]
    stored: dict[str, Any]


def default_study_name(cfg: SweepConfig, fingerprint: str) -> str:
    """sweep-<kind>[-<dims>]-<data>-<proxy>-<hash6 of data, proxy (and coefficients)>."""
    kind = cfg.kind + ("-" + "-".join(cfg.dims) if cfg.kind == "single" else "")
    extra = ""
    if cfg.kind == "compound":
        extra = json.dumps(dataclasses.asdict(cfg.compound_coefficients()), sort_keys=True)
    stored = bases.stored(cfg.base)
    if cfg.kind == "compare":
        kind += f"-{cfg.base.name}-{cfg.budget:g}x"
        extra += json.dumps([cfg.budget, cfg.compound_point()])
    elif stored:  # B0 keeps the names it had before bases existed
        kind += f"-{cfg.base.name}"
    if stored:
        extra += json.dumps(stored, sort_keys=True)
    hashed = f"{fingerprint}|{proxy_json(cfg.proxy_config(), drop=SPEED_ONLY)}|{extra}"
    return default_name(f"sweep-{kind}", cfg.data, cfg.proxy, hashed)


def trial_bytes(p: Prepared) -> int:
    """GPU memory the largest trained point of this sweep may take (for placement)."""
    from scaler.complexity import train_memory
    from scaler.scaling import cost_spec

    settings = p.cfg.proxy_config()
    trained = [q for q in p.points if not q.skip] or list(p.points)
    if not trained:
        return 0
    big = max(trained, key=lambda q: q.flops)
    spec = cost_spec(big.depth, big.width, big.resolution, settings.base_pixels, p.cfg.base)
    return train_memory(spec, settings.batch_size, p.source.num_classes)


def prepare(cfg: SweepConfig, study: str | None = None, storage: str | None = None) -> Prepared:
    """Validate everything a sweep needs before any study is created or changed."""
    cfg.validate()
    source, name, url = resolve_target(cfg, study, storage, default_study_name)
    stored = cfg.stored()
    stored["data_fingerprint"] = source.fingerprint()
    stored["upsample"] = source.upsample  # resolved: given, the study's own, or the default
    points = tuple(sweep_points(cfg, source.num_classes, source.max_pixels))
    return Prepared(cfg, source, name, url, points, stored)


def create(p: Prepared):
    """Create the study, or load it and refuse a different configuration."""
    attrs: tuple[tuple[str, Any], ...] = (("sweep", p.cfg.kind),)
    if p.cfg.kind == "compound":
        attrs += (("coefficients_file", str(p.cfg.coefficients)),)
    spec = StudySpec(p.study_name, p.storage_url, "sweep", p.stored, attrs)
    return open_study(spec, on_create=lambda st: ensure_queue(st, queued_points(p)))


def queued_points(p: Prepared) -> list[QueuedPoint]:
    """The sweep's points as the runner queues them (skipped ones with their reason)."""
    return [
        QueuedPoint(
            id=pt.id,
            params={"depth": pt.depth, "width": pt.width, "resolution": pt.resolution},
            attrs=pt.attrs(p.cfg.kind),
            skip=pt.skip,
        )
        for pt in p.points
    ]


class Describe:
    """Turns a claimed trial into the sweep point it trains (counted with fvcore)."""

    def __init__(self, p: Prepared):
        self.p = p
        self.points = {pt.id: pt for pt in p.points}
        self.settings = p.cfg.proxy_config()

    def __call__(self, trial) -> Job:
        import optuna

        from scaler.complexity import count

        point = self.points.get(trial.user_attrs.get("point", ""))
        if point is None or point.skip:
            # A point the current settings do not train (queued by a run with a higher cap).
            reason = point.skip if point is not None else "not a queued point of this sweep"
            write(trial, status=Status.SKIPPED, reason=reason)
            raise optuna.TrialPruned(reason)
        for name in ("depth", "width", "resolution"):
            v = getattr(point, name)
            trial.suggest_float(name, min(v, 0.01), max(v, MAX_MULTIPLIER))
        spec = scale(
            point.depth,
            point.width,
            base_pixels=self.settings.base_pixels,
            pixels=point.pixels,
            base=self.p.cfg.base,
        )
        cost = count(spec, self.p.source.num_classes)
        write(
            trial,
            flops=cost.flops,
            params=cost.params,
            activations=cost.activations,
            channels=[s.channels for s in spec.stages],
        )
        info = {**point.attrs(self.p.cfg.kind), "params": cost.params}
        return Job(spec=spec, seeds=self.p.cfg.seeds, prune=False, info=info)


# ----------------------------------------------------------------------------------------------
# running and reading a sweep back
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """What a sweep leaves: where it is stored, its trials and the points it skipped."""

    study_name: str
    storage: str  # masked
    config: dict[str, Any]
    frame: Any  # pandas DataFrame, one row per trial (sweep_frame)
    noise: Noise

    @property
    def points(self):
        """Finished points (trained or reused), in trial order."""
        return finished(self.frame)

    @property
    def skipped(self):
        """Points not trained, with the reason."""
        return self.frame[self.frame["status"] == "skipped"]


def result(study, storage_url: str) -> SweepResult:
    """A sweep's trials, points and noise floor, read back from its study."""
    frame = sweep_frame(study)
    return SweepResult(
        study_name=study.study_name,
        storage=mask_url(storage_url),
        config=stored_config(study),
        frame=frame,
        noise=noise(frame),
    )


def work(p: Prepared, progress: ProgressFn | None = None) -> None:
    """Work on the sweep until no queued point is left."""
    study = create(p)
    study.set_user_attr("max_flops", p.cfg.max_flops)  # the latest run's cap, for reports
    study.set_user_attr("max_flops_at", p.cfg.max_flops_at)
    trainer = Trainer(Describe(p), p.source, p.cfg.proxy_config(), progress)
    work_queue(study, lambda: queued_points(p), trainer)


def run(
    config: SweepConfig,
    study: str | None = None,
    storage: str | None = None,
    progress: ProgressFn | None = None,
    workers: int = 1,
) -> SweepResult:
    """Run (or resume) a sweep; the Python entry point behind ``scaler sweep``."""
    return run_study(sys.modules[__name__], prepare(config, study, storage), progress, workers)


run_sweep = run  # its name until 0.5 (``scaler.run_sweep``)


def load_sweep(name: str, storage: str | None = None) -> SweepResult:
    """A stored sweep's result (ValueError when missing or not a sweep)."""
    st = load_study(name, storage)
    if st.user_attrs.get("kind") != "sweep":
        raise ValueError(f"study {name!r} is not a scaler sweep")
    return result(st, storage or default_storage(name))
