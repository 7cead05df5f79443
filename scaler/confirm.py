"""The confirmation stage of a search: train the leaders again, longer and with paired seeds.

A search ranks candidates by short proxy runs, mostly one run each, and picks its best on the
same val split it ranks on (winner's curse). The confirmation stage trains again, as trials of
the same study (resumable, shareable by workers, role ``confirm``):

- the top ``top`` distinct networks of the search (default 3), the base and the paper's point,
- with a longer proxy (default: the search's own proxy, ``length`` × as long: 2×; or a named
  preset such as ``long`` with the search's base pixels, threads and device),
- with paired seeds (seed k is the same seed for every network): by default raced
  (``seeds`` "auto", :mod:`scaler.racing`): 2 seeds each, then one more paired seed a round for
  every candidate still possibly best and for the base, until one candidate is left, the
  survivors have ``max_seeds`` (default 8), the rest are indistinguishable, or a time budget
  (``should_continue``) says no; or a fixed number of seeds each (``seeds`` an integer).

A race's rounds are trials too: round 1 is one trial per network (seeds 0 and 1, as a fixed
confirmation's), each later round one trial per network still racing (``seed_index`` k: seed k
alone). Each round is decided from the stored trials (:func:`scaler.findings_confirm.race`), so
a rerun continues the race where it stopped and workers share it.

What the stage shows (proxy fidelity, which candidates could be the best, the test-split
verdict, the edge warning) is read back and stated by :mod:`scaler.findings_confirm`.

**Defaults, by arithmetic**: the confirmation's first round trains (top + 2) networks × 2 runs
× ``length`` the search's run length, i.e. 5 × 2 × 2 = 20 search-run equivalents at most (16 when
the paper's point is among the top), against the 7 runs (base × 2, the paper's point and 4 grid
points) the default 2× grid search trains: at most about 2.9× the search's own time (measured:
589 s against 309 s), which keeps the whole default search within 20 minutes on 2 CPU cores
(docs/search.md, "The confirmation stage"). A race's later rounds add at most 4 networks × 6
runs × 2 = 48 more (the cap: survivors at 8 seeds); ``--seeds 2`` keeps the stage at the first
round, a time budget bounds it. A
quick search is a smoke run: its confirmation is minimal (top 1 and the base only, 2 seeds, 1.5
× as long: 2 networks × 2 runs of 1.5 epochs; a race of one candidate ends after round 1) and
says so.

The settings and the chosen networks are stored on the study the first time (attribute
``confirm``): every later run and every worker confirms the same networks with the same proxy,
and other settings are refused with what differs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scaler.findings_confirm import ATTR, STOPPED, Confirmation, race, summarize
from scaler.proxy import ProxyConfig, resolve_proxy
from scaler.racing import AUTO, MAX_SEEDS, START
from scaler.records import BASE_ROLE, CANDIDATE_ROLES, CONFIRM_ROLE, Status, metric_columns, write
from scaler.results import finished, trials_frame
from scaler.runner import Job, QueuedPoint, Trainer, ensure_queue, work_queue

# Sized so that the default search, this stage included, stays near its time goal on 2 CPU
# cores (docs/search.md, "The confirmation stage"): paired runs twice the search's length, 2
# each in the first round, more only where they decide (racing; "auto").
# ``anchors``: the search's reference roles confirmed besides the top networks.
DEFAULTS = {"top": 3, "seeds": AUTO, "length": 2.0, "anchors": (BASE_ROLE, "paper")}
# A search with one of these proxy presets is a smoke run; so is its confirmation.
SMOKE = {"quick": {"top": 1, "seeds": AUTO, "length": 1.5, "anchors": (BASE_ROLE,)}}
# Should the race train this round (its runs: the next round's points)? The time budget's say.
ShouldContinue = Callable[[list[QueuedPoint]], bool]
# The network attributes a confirmation trial copies from the search trial it confirms.
COPIED = (
    "alpha",
    "beta",
    "gamma",
    "gamma_nominal",
    "cost_pixels",
    "pixels",
    "layers",
    "params",
    "activations",
    "flops",
    "cost_flops",
    "nominal_cost",
    "cost_ratio",
    "proxy_cost_ratio",
)


@dataclass(frozen=True)
class ConfirmConfig:
    """What to confirm and how; None takes the default (:data:`DEFAULTS`, :data:`SMOKE`)."""

    top: int | None = None  # distinct search networks to confirm, best first (default 3)
    seeds: int | str | None = None  # paired runs of each network, or "auto": raced (default)
    max_seeds: int | None = None  # with "auto": seeds a network gets at most (default 8)
    proxy: str | None = None  # a preset; None: the search's own proxy, made longer
    proxy_overrides: tuple[tuple[str, Any], ...] = ()  # e.g. (("epochs", 30),)
    length: float | None = None  # × the search's run length when no epochs/images are given
    prefix: str = "--"  # how options are named in errors: "--" (confirm), "--confirm-" (search)

    def check(self) -> ConfirmConfig:
        """Raise ValueError (one line, naming the option) on an invalid setting."""
        for name, value, low, high in (
            ("top", self.top, 1, 100),
            ("seeds", None if self.seeds == AUTO else self.seeds, 2, 100),
            ("max-seeds", self.max_seeds, START, 100),
        ):
            if value is not None and not (isinstance(value, int) and low <= value <= high):
                valid = "auto or an integer" if name == "seeds" else "an integer"
                raise ValueError(
                    f"{self.prefix}{name} {value} is invalid: it must be {valid} in {low}..{high}"
                )
        if self.max_seeds is not None and self.seeds not in (None, AUTO):
            raise ValueError(
                f"{self.prefix}max-seeds {self.max_seeds} is invalid with {self.prefix}seeds "
                f"{self.seeds}: it caps a race (--seeds auto) only"
            )
        if self.length is not None and not (math.isfinite(self.length) and self.length > 1):
            raise ValueError(f"{self.prefix}length {self.length} is invalid: it must be > 1")
        return self


def parse_seeds(text: str | None, option: str = "--seeds") -> int | str | None:
    """``--seeds`` as given: "auto", an integer, or None (the default); ValueError otherwise."""
    if text is None or text.strip().lower() == AUTO:
        return None if text is None else AUTO
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is invalid: it must be auto or an integer in 2..100"
        ) from None


@dataclass(frozen=True)
class Selection:
    """A validated confirmation: its settings, proxy settings and the networks it trains."""

    settings: dict[str, Any]  # top, seeds, [max_seeds,] smoke, proxy_preset (stored, compared)
    proxy_settings: ProxyConfig  # of the confirmation runs
    points: tuple[dict[str, Any], ...]  # per network: trial, role, alpha, beta, network_key

    def stored(self) -> dict[str, Any]:
        settings = self.proxy_settings.to_dict()  # stored under "proxy", as since 0.3
        return {"settings": self.settings, "proxy": settings, "points": self.points}

    @property
    def racing(self) -> bool:
        return self.settings.get("seeds") == AUTO

    def queued(self) -> list[QueuedPoint]:
        """The first round: every network's first trial (all its seeds, unless raced)."""
        return [
            QueuedPoint(id=f"{CONFIRM_ROLE}:{p['trial']}", params={}, attrs=p["attrs"])
            for p in self.points
        ]

    def seed_point(self, trial: int, k: int) -> QueuedPoint:
        """A race's later round: seed k of the network confirming search trial ``trial``."""
        attrs = next(p["attrs"] for p in self.points if p["trial"] == trial)
        return QueuedPoint(
            id=f"{CONFIRM_ROLE}:{trial}:seed{k}", params={}, attrs={**attrs, "seed_index": k}
        )


# ----------------------------------------------------------------------------------------------
# selecting: every check before anything is written
# ----------------------------------------------------------------------------------------------


def search_settings(study) -> ProxyConfig:
    """The proxy settings (a ProxyConfig) the search's trials were trained with."""
    from scaler.studies import stored_config

    return resolve_proxy(stored=stored_config(study).get("proxy", {}))


def _resolve(cfg: ConfirmConfig, search, n_train: int):
    """(top, seeds, smoke, settings) of a confirmation of a search whose proxy settings (a
    ProxyConfig) are ``search["settings"]`` and preset name ``search["preset"]``."""
    smoke = search["preset"] in SMOKE
    defaults = SMOKE.get(search["preset"], DEFAULTS)
    top = cfg.top or defaults["top"]
    seeds = cfg.seeds or defaults["seeds"]
    factor = cfg.length or defaults["length"]
    own = search["settings"]
    overrides = dict(cfg.proxy_overrides)
    if cfg.proxy is None:
        settings = resolve_proxy(stored=own.to_dict(), overrides=overrides)
    else:
        keep = {k: getattr(own, k) for k in ("base_pixels", "threads", "device")}
        settings = resolve_proxy(cfg.proxy, {**keep, **overrides})
    if cfg.proxy is None and not {"epochs", "images"} & set(overrides):
        if own.images is not None:
            settings = dataclasses.replace(settings, images=math.ceil(factor * own.images))
        elif (factor * own.epochs).is_integer():
            settings = dataclasses.replace(settings, epochs=int(factor * own.epochs))
        else:  # a fraction of an epoch more: counted in images, not rounded up to a whole epoch
            settings = dataclasses.replace(
                settings, images=math.ceil(factor * own.epochs * n_train)
            )
    _check_longer(cfg, settings, own, n_train)
    return top, seeds, smoke, settings


def _length(settings, n_train: int) -> int:
    """Training images one run of ``settings`` sees (partial batches dropped, as train() does)."""
    from scaler.timing import train_images

    return train_images(settings, n_train)


def _check_longer(cfg: ConfirmConfig, settings, own, n_train: int) -> None:
    mine, theirs = _length(settings, n_train), _length(own, n_train)
    if mine > theirs:
        return
    given = dict(cfg.proxy_overrides)
    option = next((f"--{k} {given[k]}" for k in ("images", "epochs") if k in given), None)
    option = option or f"{cfg.prefix}proxy {cfg.proxy}"
    raise ValueError(
        f"{option} is invalid: the confirmation proxy must train longer than the search's "
        f"({mine:,} against {theirs:,} training images per run)"
    )


def _choose(frame, top: int, anchors: tuple[str, ...], metric: str = "top1") -> list[Any]:
    """The search rows to confirm: the top distinct networks by ``metric``, then the
    ``anchors`` roles."""
    column = metric_columns(metric)[0]
    done = finished(frame).sort_values([column, "number"], ascending=[False, True])
    done = done.drop_duplicates("network_key")  # a reused twin is its network's trial again
    cands = done[done["role"].isin(CANDIDATE_ROLES)]
    chosen = list(cands.head(top).itertuples(index=False))
    keys = {r.network_key for r in chosen}
    for role in anchors:
        rows = done[done["role"] == role]
        if not rows.empty and rows.iloc[0]["network_key"] not in keys:
            chosen.append(next(rows.head(1).itertuples(index=False)))
            keys.add(rows.iloc[0]["network_key"])
    return chosen


def _point(row) -> dict[str, Any]:
    """A chosen search row as a stored confirmation point."""
    attrs = {k: _plain(getattr(row, k)) for k in COPIED}
    attrs.update(role=CONFIRM_ROLE, confirm_of=int(row.number), confirm_role=str(row.role))
    return {"trial": int(row.number), "role": str(row.role), "attrs": attrs}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def select(study, cfg: ConfirmConfig, source) -> Selection:
    """Validate a confirmation of ``study`` (a finished search) and choose its networks.

    Raises ValueError (one line, naming the option) for a study that is no search, has no
    finished candidate or is still running, a bad setting, a proxy no longer than the search's,
    or settings that differ from the ones the study was confirmed with.
    """
    from scaler.studies import stored_config

    cfg.check()
    name = study.study_name
    if study.user_attrs.get("kind") != "search":
        raise ValueError(f"study {name!r} is not a scaler search: only searches are confirmed")
    frame = trials_frame(study)
    if not finished(frame)["role"].isin(CANDIDATE_ROLES).any():
        raise ValueError(
            f"study {name!r} has no finished candidate to confirm: run scaler search first"
        )
    preset = stored_config(study).get("proxy_preset", "")
    own = search_settings(study)
    n_train = len(source.load("train", own.base_pixels))
    top, seeds, smoke, proxy_settings = _resolve(cfg, {"preset": preset, "settings": own}, n_train)
    settings = {"top": top, "seeds": seeds, "smoke": smoke, "proxy_preset": cfg.proxy or preset}
    stored = study.user_attrs.get(ATTR)
    if stored is not None and cfg.seeds is None and cfg.max_seeds is None:
        # Not given: the stored seeds stand (0.6 confirmed 2 fixed seeds by default, not auto).
        settings["seeds"] = stored["settings"].get("seeds", seeds)
    if settings["seeds"] == AUTO:
        default = (stored or {}).get("settings", {}).get("max_seeds", MAX_SEEDS)
        settings["max_seeds"] = cfg.max_seeds or default
    if stored is not None:
        _refuse_changed(name, stored, settings, proxy_settings)
        return Selection(stored["settings"], proxy_settings, tuple(stored["points"]))
    anchors = SMOKE.get(preset, DEFAULTS)["anchors"]
    metric = stored_config(study).get("metric", "top1")
    points = tuple(_point(r) for r in _choose(frame, top, anchors, metric))
    return Selection(settings, proxy_settings, points)


def _refuse_changed(name: str, stored: dict, settings: dict, proxy_settings) -> None:
    from scaler.studies import config_diff

    diff = config_diff(
        {**stored["settings"], "proxy": stored["proxy"]},
        {**settings, "proxy": proxy_settings.to_dict()},
    )
    if diff:
        raise ValueError(
            f"study {name!r} was confirmed with other settings ({'; '.join(diff)}): rerun with "
            "the original options"
        )


def check_idle(study) -> None:
    """Refuse to confirm a search that still has queued or running trials."""
    from optuna.trial import TrialState

    from scaler.dead_workers import fail_stale
    from scaler.studies import warnings_silenced

    with warnings_silenced():
        fail_stale(study)
    busy = study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    busy = [t for t in busy if t.user_attrs.get("role") != CONFIRM_ROLE]  # other workers'
    if busy:
        raise ValueError(
            f"study {study.study_name!r} is still searching ({len(busy)} trials queued or "
            "running): let scaler search finish it first"
        )


# ----------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------


def describe(trial) -> Job:
    """The Job of a claimed confirmation trial: its network at its search pixels, trained with
    the study's confirmation proxy and seeds (a twin key of its own: never a search twin); a
    race's later round trains its one seed (``seed_index``)."""
    from scaler.bases import from_config
    from scaler.spec import scale

    stored = trial.study.user_attrs[ATTR]
    settings = resolve_proxy(stored=stored["proxy"])
    a = trial.user_attrs
    base = from_config(trial.study.user_attrs.get("config", {}))  # the search's base network
    spec = scale(
        a["alpha"], a["beta"], base_pixels=settings.base_pixels, pixels=int(a["pixels"]), base=base
    )
    k = a.get("seed_index")
    seeds = stored["settings"]["seeds"]
    info = {**a, "role": f"confirm {a['confirm_role']}" + (f" seed {k}" if k else "")}
    return Job(
        spec=spec,
        seeds=1 if k else START if seeds == AUTO else int(seeds),
        prune=False,
        info=info,
        proxy_settings=settings,
        key=f"{CONFIRM_ROLE}:{spec.key_str}" + (f":seed{k}" if k else ""),
        first_seed=int(k or 0),
    )


def is_confirmation(trial) -> bool:
    return trial.user_attrs.get("role") == CONFIRM_ROLE


def stage(
    study,
    p: Selection,
    trainer: Trainer,
    search_points=lambda: [],
    should_continue: ShouldContinue | None = None,
) -> None:
    """Queue the selection's networks (once) and train them with ``trainer`` (whose describe hands
    confirmation trials to :func:`describe`), round after round while raced; ``search_points``
    keeps the search's own points queued, so a lost search trial is trained again too.

    A race asks ``should_continue`` before each new round; by default it goes on until the
    trainer's time budget has skipped a run (the round that did not fit stops the race)."""
    if should_continue is None:

        def should_continue(new: list) -> bool:
            return not trainer.out_of_time

    if ATTR not in study.user_attrs:
        study.set_user_attr(ATTR, p.stored())
    if STOPPED in study.user_attrs:  # a new command: its own time budget decides again
        study.set_user_attr(STOPPED, None)
    ensure_queue(study, p.queued())
    work_queue(study, lambda: search_points() + points(study, p, should_continue), trainer)


def points(study, p: Selection, should_continue: ShouldContinue | None = None) -> list:
    """The confirmation's points so far: the first round, and every later round the race has
    decided from the stored trials. A new round is queued only if ``should_continue`` (given
    its points) says yes; if not, the race stops there ("time budget", stored on the study)."""
    first = p.queued()
    if not p.racing:
        return first
    d = race(trials_frame(study), study.user_attrs)
    if d is None:
        return first
    later = [p.seed_point(n, k) for n, due in d.due.items() for k in range(START, due)]
    new = [q for q in later if q.id not in _point_ids(study)]
    if new and should_continue is not None and not should_continue(new):
        study.set_user_attr(STOPPED, d.round - 1)
        later = [q for q in later if q not in new]
    return first + later


def _point_ids(study) -> set[str]:
    return {t.user_attrs.get("point") for t in study.get_trials(deepcopy=False)}


class Describe:
    """A trainer's describe for ``scaler confirm`` alone: confirmation trials only."""

    def __call__(self, trial) -> Job:
        import optuna

        if not is_confirmation(trial):  # a search trial queued meanwhile: scaler search's
            write(trial, status=Status.DUPLICATE, reason="a search trial: scaler search runs it")
            raise optuna.TrialPruned("not a confirmation trial")
        return describe(trial)


# ----------------------------------------------------------------------------------------------
# scaler confirm STUDY
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A validated ``scaler confirm``: nothing has been written yet."""

    cfg: ConfirmConfig
    study_name: str
    storage_url: str
    study: Any
    selection: Selection
    source: Any


def prepare(cfg: ConfirmConfig, study: str | None = None, storage: str | None = None) -> Prepared:
    """Load the search ``study`` and check everything a confirmation needs (ValueError: one
    line)."""
    from scaler.data import parse_data
    from scaler.studies import default_storage, load_study, stored_config, stored_upsample

    cfg.check()
    if study is None:
        raise ValueError("STUDY is missing: name the search to confirm")
    st = load_study(study, storage)
    if st.user_attrs.get("kind") != "search":
        raise ValueError(f"study {study!r} is not a scaler search: only searches are confirmed")
    config = stored_config(st)
    # The search's own policy: its confirmation trains on the same images.
    source = parse_data(config.get("data", "embedded"), upsample=stored_upsample(config))
    selection = select(st, cfg, source)
    check_idle(st)
    return Prepared(cfg, study, storage or default_storage(study), st, selection, source)


def trial_bytes(p: Prepared) -> int:
    """GPU memory the largest confirmed network's run may take."""
    from scaler.bases import from_config
    from scaler.complexity import train_memory
    from scaler.spec import scale

    base = from_config(p.study.user_attrs.get("config", {}))
    sizes = [
        train_memory(
            scale(
                a["alpha"],
                a["beta"],
                base_pixels=p.selection.proxy_settings.base_pixels,
                pixels=a["pixels"],
                base=base,
            ),
            p.selection.proxy_settings.batch_size,
            p.source.num_classes,
        )
        for a in (pt["attrs"] for pt in p.selection.points)
    ]
    return max(sizes, default=0)


def create(p: Prepared):
    """Store the confirmation's settings and networks (once) and queue its trials."""
    if ATTR not in p.study.user_attrs:
        p.study.set_user_attr(ATTR, p.selection.stored())
    ensure_queue(p.study, p.selection.queued())
    return p.study


def work(p: Prepared, progress=None) -> None:
    """Train a prepared confirmation (its trials only: the search is finished); a race stops
    when the time budget skips a run."""
    stage(create(p), p.selection, trainer_of(p, progress))


def trainer_of(p: Prepared, progress=None) -> Trainer:
    """The trainer of a prepared confirmation's trials."""
    return Trainer(Describe(), p.source, p.selection.proxy_settings, progress)


def result(study, storage_url: str) -> Confirmation:
    """The confirmation of ``study`` as its trials hold it."""
    from scaler.studies import stored_config

    return summarize(trials_frame(study), study.user_attrs, stored_config(study))


def run(
    cfg: ConfirmConfig,
    study: str | None = None,
    storage: str | None = None,
    progress=None,
    workers: int = 1,
) -> Confirmation:
    """Run (or resume) the confirmation of the search ``study``; behind ``scaler confirm``."""
    import sys

    from scaler.runner import run_study

    return run_study(sys.modules[__name__], prepare(cfg, study, storage), progress, workers)
