"""What each kind of study will train, stage by stage, for its plan (:mod:`scaler.plan`).

One function per kind, named as its module (``searches``, ``sweeps``, ``confirm``,
``calibrate``, ``noise``), takes the kind's ``Prepared`` object and returns ``(stages, data,
proxy settings)``: each stage as (name, its :class:`scaler.plan.Planned` runs, the paired runs
of each network). Points the study already covers (a resumed study) are left out, as the
runner leaves them out; nothing is written and no study is created.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Planned:
    """Runs of one network a stage will train."""

    stage: str
    network: str  # its key: twins are planned once
    spec: Any
    seeds: int
    settings: Any  # its ProxyConfig


def stored_study(study_name: str, storage_url: str):
    """The stored study of that name, or None when it does not exist yet (nothing created)."""
    from scaler.studies import load_study, open_storage, sqlite_path, study_names

    path = sqlite_path(storage_url)
    if path is not None and not path.exists():
        return None  # never create a database file to plan
    if study_name not in study_names(open_storage(storage_url, create=False)):
        return None
    return load_study(study_name, storage_url)


def covered(study) -> set[str]:
    """The points ``study`` already covers (none for None: a study not created yet)."""
    from scaler.runner import _covers

    return set() if study is None else _points(study, _covers)


def _points(study, covers) -> set[str]:
    from scaler.records import TrialRecord

    return {
        rec.point
        for t in study.get_trials(deepcopy=False)
        if (rec := TrialRecord.from_trial(t)).point is not None and covers(t)
    }


def noise_studies(storage_url: str) -> list[tuple[str, str]]:
    """(name, storage URL) of every noise study where a study of ``storage_url`` would look:
    that storage, or every studies/noise-*.db for the default one-file-per-study storage."""
    from scaler.studies import STUDIES_DIR, open_storage, sqlite_path, study_names

    path = sqlite_path(storage_url)
    if path is not None and path.parent == STUDIES_DIR:
        files = sorted(Path(STUDIES_DIR).glob("noise-*.db"))
        return [(f.stem, f"sqlite:///{f}") for f in files]
    if path is not None and not path.exists():
        return []
    try:
        names = study_names(open_storage(storage_url, create=False))
    except ValueError:
        return []
    return [(n, storage_url) for n in names if n.startswith("noise-")]


def searches(p) -> tuple[list, str, Any]:
    """A search: its queued points and sampled trials, then its confirmation stage."""
    from scaler.candidates import realize_candidate
    from scaler.records import BASE_ROLE
    from scaler.searches import count_candidates, queued_points
    from scaler.spec import scale

    cfg, source = p.cfg, p.source
    settings = cfg.proxy_config()
    study = stored_study(p.study_name, p.storage_url)
    done = covered(study)
    runs, candidates = [], 0
    for q in queued_points(cfg):
        role = q.attrs["role"]
        candidates += role != BASE_ROLE
        if q.id in done:
            continue
        a, b = q.attrs["alpha"], q.attrs["beta"]
        n, top = source.num_classes, source.max_pixels
        cand = realize_candidate(cfg, role, a, b, n, top, timed=False)
        if cand.infeasible:
            continue
        spec = scale(a, b, base_pixels=settings.base_pixels, pixels=cand.pixels, base=cfg.base)
        seeds = cfg.base_seeds if role == BASE_ROLE else cfg.seeds
        runs.append(Planned("search", spec.key_str, spec, seeds, settings))
    if cfg.sampler != "grid":  # proposed trials: budget × the base's cost each
        spec = _at_budget(cfg, settings)
        used = candidates if study is None else count_candidates(study)
        left = max(0, cfg.candidate_cap() - used)
        runs += [Planned("search", f"sampled {i}", spec, cfg.seeds, settings) for i in range(left)]
    stages = [("search", runs, cfg.seeds)]
    if cfg.confirm:
        stages.append(_confirmation(cfg, source, settings))
    return stages, cfg.data, settings


def _at_budget(cfg, settings):
    """A network of the budget's cost at the proxy: B0's depth and width, γ = sqrt(budget)."""
    from scaler.spec import scale

    pixels = round(settings.base_pixels * math.sqrt(cfg.budget))
    return scale(base_pixels=settings.base_pixels, pixels=max(8, pixels), base=cfg.base)


def _confirmation(cfg, source, settings) -> tuple[str, list, int]:
    """A search's confirmation stage before the search ran: top networks at the budget's cost,
    the base and the paper's point, with the confirmation's longer proxy."""
    from scaler import confirm
    from scaler.records import BASE_ROLE
    from scaler.spec import scale

    n_train = len(source.load("train", settings.base_pixels))
    own = {"preset": cfg.proxy, "settings": settings}
    top, seeds, _, longer = confirm._resolve(cfg.confirm_config(), own, n_train)
    seeds = first_round(seeds)
    anchors = confirm.SMOKE.get(cfg.proxy, confirm.DEFAULTS)["anchors"]
    big = _at_budget(cfg, longer)
    runs = [Planned("confirmation", f"top {i}", big, seeds, longer) for i in range(top)]
    for role in anchors:
        spec = scale(base_pixels=longer.base_pixels, base=cfg.base) if role == BASE_ROLE else big
        runs.append(Planned("confirmation", role, spec, seeds, longer))
    return "confirmation", runs, seeds


def first_round(seeds) -> int:
    """The paired seeds a confirmation trains before it can decide anything: all of them, or a
    race's first round (later rounds depend on what the first shows and are not planned)."""
    from scaler.racing import AUTO, START

    return START if seeds == AUTO else int(seeds)


def confirm(p) -> tuple[list, str, Any]:
    """``scaler confirm``: the selected networks missing from the study, paired seeds each."""
    from scaler.bases import from_config
    from scaler.records import CONFIRM_ROLE
    from scaler.spec import scale
    from scaler.studies import stored_config

    sel = p.selection
    settings, seeds = sel.proxy_settings, first_round(sel.settings["seeds"])
    base = from_config(p.study.user_attrs.get("config", {}))
    done = covered(p.study)
    runs = []
    for pt in sel.points:
        if f"{CONFIRM_ROLE}:{pt['trial']}" in done:
            continue
        a = pt["attrs"]
        spec = scale(
            a["alpha"], a["beta"], base_pixels=settings.base_pixels, pixels=a["pixels"], base=base
        )
        runs.append(Planned("confirmation", spec.key_str, spec, seeds, settings))
    data = stored_config(p.study).get("data", "embedded")
    return [("confirmation", runs, seeds)], data, settings


def sweeps(p) -> tuple[list, str, Any]:
    """A sweep: its points that are not skipped and not yet covered."""
    from scaler.spec import scale

    settings = p.cfg.proxy_config()
    done = covered(stored_study(p.study_name, p.storage_url))
    runs = []
    for pt in p.points:
        if pt.skip or pt.id in done:
            continue
        spec = scale(
            pt.depth, pt.width, base_pixels=settings.base_pixels, pixels=pt.pixels, base=p.cfg.base
        )
        runs.append(Planned("sweep", spec.key_str, spec, p.cfg.seeds, settings))
    return [("sweep", runs, p.cfg.seeds)], p.cfg.data, settings


def _paired(p, stage: str, role: str) -> tuple[list, str, Any]:
    """Paired runs (calibrate, noise): one point per (network, seed k)."""
    settings = p.cfg.proxy_config()
    done = covered(stored_study(p.study_name, p.storage_url))
    runs = [
        Planned(stage, f"{name}:{k}", spec, 1, settings)
        for name, spec in p.specs
        for k in range(p.cfg.seeds)
        if f"{role}:{name}:{k}" not in done
    ]
    return [(stage, runs, p.cfg.seeds)], p.cfg.data, settings


def calibrate(p) -> tuple[list, str, Any]:
    from scaler.records import CALIBRATE_ROLE

    return _paired(p, "calibration", CALIBRATE_ROLE)


def noise(p) -> tuple[list, str, Any]:
    from scaler.records import NOISE_ROLE

    return _paired(p, "noise", NOISE_ROLE)
