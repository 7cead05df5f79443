"""The confirmation stage of a search: train the leaders again, longer and with paired seeds.

A search ranks candidates by short proxy runs, mostly one run each, and picks its best on the
same val split it ranks on (winner's curse). The confirmation stage trains again, as trials of
the same study (resumable, shareable by workers, role ``confirm``):

- the top ``top`` distinct networks of the search (default 3), the base and the paper's point,
- with a longer proxy (default: the search's own proxy, ``length`` × as long: 2×; or a named
  preset such as ``long`` with the search's base pixels, threads and device),
- and ``seeds`` paired seeds each (default 2): seed k is the same seed for every network.

and reports (:func:`summarize`, a :class:`Confirmation`):

- **proxy fidelity**: Kendall's τ-b between the search's and the confirmation's mean top-1 of
  the confirmed networks, with a 95 % paired-bootstrap interval (val images drawn once for both
  stages, seeds drawn per stage);
- which confirmed candidates could be the best (:func:`scaler.stats.possibly_best` on the
  confirmation's pooled σ and its degrees of freedom) and each one's P(best) (paired bootstrap
  over seeds and val images);
- the **chosen** candidate (the best confirmation mean on val) on the **test split**, never
  used for any choice, with its 95 % interval, against the base's, and their difference;
- a warning when the chosen candidate lies on an edge of the α/β box that could be widened.

**Defaults, by arithmetic**: the confirmation trains (top + 2) networks × ``seeds`` runs ×
``length`` the search's run length, i.e. 5 × 2 × 2 = 20 search-run equivalents at most (16 when
the paper's point is among the top), against the 7 runs (base × 2, the paper's point and 4 grid
points) the default 2× grid search trains: at most about 2.9× the search's own time (measured:
589 s against 309 s), which keeps the whole default search within 20 minutes on 2 CPU cores
(README, "The confirmation stage"). A
quick search is a smoke run: its confirmation is minimal (top 1 and the base only, 2 seeds, 1.5
× as long: 2 networks × 2 runs of 1.5 epochs) and says so.

The settings and the chosen networks are stored on the study the first time (attribute
``confirm``): every later run and every worker confirms the same networks with the same proxy,
and other settings are refused with what differs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scaler.records import CANDIDATE_ROLES, CONFIRM_ROLE, Status, unpack_bits, write
from scaler.results import LEVEL, Noise, confirmed, finished, seeds_of, trials_frame
from scaler.runner import Job, QueuedPoint, Trainer, ensure_queue, work_queue
from scaler.stats import (
    kendall_tau,
    p_best,
    paired_bootstrap,
    percentile_interval,
    pooled_sd,
    possibly_best,
)

ATTR = "confirm"  # the study attribute holding the confirmation's settings and networks
# Sized so that the default search, this stage included, stays near its time goal on 2 CPU
# cores (README, "The confirmation stage"): 2 paired runs, each twice the search's length.
# ``anchors``: the search's reference roles confirmed besides the top networks.
DEFAULTS = {"top": 3, "seeds": 2, "length": 2.0, "anchors": ("base", "paper")}
# A search with one of these proxy presets is a smoke run; so is its confirmation.
SMOKE = {"quick": {"top": 1, "seeds": 2, "length": 1.5, "anchors": ("base",)}}
BOOTSTRAP = 2000  # replicates of every bootstrap (seeded: the same numbers on every read)
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
    seeds: int | None = None  # paired runs of each confirmed network (default 2)
    proxy: str | None = None  # a preset; None: the search's own proxy, made longer
    proxy_overrides: tuple[tuple[str, Any], ...] = ()  # e.g. (("epochs", 30),)
    length: float | None = None  # × the search's run length when no epochs/images are given
    prefix: str = "--"  # how options are named in errors: "--" (confirm), "--confirm-" (search)

    def check(self) -> ConfirmConfig:
        """Raise ValueError (one line, naming the option) on an invalid setting."""
        for name, value, low, high in (("top", self.top, 1, 100), ("seeds", self.seeds, 2, 100)):
            if value is not None and not (isinstance(value, int) and low <= value <= high):
                raise ValueError(
                    f"{self.prefix}{name} {value} is invalid: it must be an integer in "
                    f"{low}..{high}"
                )
        if self.length is not None and not (math.isfinite(self.length) and self.length > 1):
            raise ValueError(f"{self.prefix}length {self.length} is invalid: it must be > 1")
        return self


@dataclass(frozen=True)
class Plan:
    """A validated confirmation: its settings, proxy and the networks it trains."""

    settings: dict[str, Any]  # top, seeds, smoke, proxy_preset (stored, compared on reruns)
    proxy: Any  # ProxyConfig of the confirmation runs
    points: tuple[dict[str, Any], ...]  # per network: trial, role, alpha, beta, network_key

    def stored(self) -> dict[str, Any]:
        return {"settings": self.settings, "proxy": self.proxy.to_dict(), "points": self.points}

    def queued(self) -> list[QueuedPoint]:
        return [
            QueuedPoint(id=f"{CONFIRM_ROLE}:{p['trial']}", params={}, attrs=p["attrs"])
            for p in self.points
        ]


# ----------------------------------------------------------------------------------------------
# planning: every check before anything is written
# ----------------------------------------------------------------------------------------------


def search_proxy(study):
    """The ProxyConfig the search's trials were trained with."""
    from scaler.studies import stored_config
    from scaler.train import ProxyConfig

    return ProxyConfig.from_dict(dict(stored_config(study).get("proxy", {})))


def _resolve(cfg: ConfirmConfig, search, n_train: int):
    """(top, seeds, length factor, smoke, proxy) of a confirmation of a search with ``search``
    proxy settings and preset name ``search.preset``."""
    from scaler.train import proxy_config

    smoke = search["preset"] in SMOKE
    defaults = SMOKE.get(search["preset"], DEFAULTS)
    top = cfg.top or defaults["top"]
    seeds = cfg.seeds or defaults["seeds"]
    factor = cfg.length or defaults["length"]
    own = search["proxy"]
    overrides = dict(cfg.proxy_overrides)
    if cfg.proxy is None:
        proxy = dataclasses.replace(own, **overrides)
    else:
        keep = {k: getattr(own, k) for k in ("base_pixels", "threads", "device")}
        proxy = proxy_config(cfg.proxy, **{**keep, **overrides})
    if cfg.proxy is None and not {"epochs", "images"} & set(overrides):
        if own.images is not None:
            proxy = dataclasses.replace(proxy, images=math.ceil(factor * own.images))
        elif (factor * own.epochs).is_integer():
            proxy = dataclasses.replace(proxy, epochs=int(factor * own.epochs))
        else:  # a fraction of an epoch more: counted in images, not rounded up to a whole epoch
            proxy = dataclasses.replace(proxy, images=math.ceil(factor * own.epochs * n_train))
    _check_longer(cfg, proxy, own, n_train)
    return top, seeds, smoke, proxy


def _length(proxy, n_train: int) -> int:
    """Training images one run of ``proxy`` sees (partial batches dropped, as train() does)."""
    batch = min(proxy.batch_size, n_train)
    if proxy.images is not None:
        return math.ceil(proxy.images / batch) * batch
    return proxy.epochs * (n_train // batch) * batch


def _check_longer(cfg: ConfirmConfig, proxy, own, n_train: int) -> None:
    mine, theirs = _length(proxy, n_train), _length(own, n_train)
    if mine > theirs:
        return
    given = dict(cfg.proxy_overrides)
    option = next((f"--{k} {given[k]}" for k in ("images", "epochs") if k in given), None)
    option = option or f"{cfg.prefix}proxy {cfg.proxy}"
    raise ValueError(
        f"{option} is invalid: the confirmation proxy must train longer than the search's "
        f"({mine:,} against {theirs:,} training images per run)"
    )


def _choose(frame, top: int, anchors: tuple[str, ...]) -> list[Any]:
    """The search rows to confirm: the top distinct networks, then the ``anchors`` roles."""
    done = finished(frame).sort_values(["top1_mean", "number"], ascending=[False, True])
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


def plan(study, cfg: ConfirmConfig, source) -> Plan:
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
    own = search_proxy(study)
    n_train = len(source.load("train", own.base_pixels))
    top, seeds, smoke, proxy = _resolve(cfg, {"preset": preset, "proxy": own}, n_train)
    settings = {"top": top, "seeds": seeds, "smoke": smoke, "proxy_preset": cfg.proxy or preset}
    stored = study.user_attrs.get(ATTR)
    if stored is not None:
        _refuse_changed(name, stored, settings, proxy)
        return Plan(stored["settings"], proxy, tuple(stored["points"]))
    anchors = SMOKE.get(preset, DEFAULTS)["anchors"]
    points = tuple(_point(r) for r in _choose(frame, top, anchors))
    return Plan(settings, proxy, points)


def _refuse_changed(name: str, stored: dict, settings: dict, proxy) -> None:
    from scaler.studies import config_diff

    diff = config_diff(
        {**stored["settings"], "proxy": stored["proxy"]}, {**settings, "proxy": proxy.to_dict()}
    )
    if diff:
        raise ValueError(
            f"study {name!r} was confirmed with other settings ({'; '.join(diff)}): rerun with "
            "the original options"
        )


def check_idle(study) -> None:
    """Refuse to confirm a search that still has queued or running trials."""
    import optuna
    from optuna.trial import TrialState

    from scaler.studies import warnings_silenced

    with warnings_silenced():
        optuna.storages.fail_stale_trials(study)
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
    the study's confirmation proxy and seeds (a twin key of its own: never a search twin)."""
    from scaler.bases import from_config
    from scaler.spec import scale
    from scaler.train import ProxyConfig

    stored = trial.study.user_attrs[ATTR]
    proxy = ProxyConfig.from_dict(stored["proxy"])
    a = trial.user_attrs
    base = from_config(trial.study.user_attrs.get("config", {}))  # the search's base network
    spec = scale(
        a["alpha"], a["beta"], base_pixels=proxy.base_pixels, pixels=int(a["pixels"]), base=base
    )
    info = {**a, "role": f"confirm {a['confirm_role']}"}
    return Job(
        spec=spec,
        seeds=int(stored["settings"]["seeds"]),
        prune=False,
        info=info,
        proxy=proxy,
        key=f"{CONFIRM_ROLE}:{spec.key_str}",
    )


def is_confirmation(trial) -> bool:
    return trial.user_attrs.get("role") == CONFIRM_ROLE


def stage(study, p: Plan, trainer: Trainer, search_points=lambda: []) -> None:
    """Queue the plan's networks (once) and train them with ``trainer`` (whose describe hands
    confirmation trials to :func:`describe`); ``search_points`` keeps the search's own points
    queued, so a lost search trial is trained again too."""
    if ATTR not in study.user_attrs:
        study.set_user_attr(ATTR, p.stored())
    ensure_queue(study, p.queued())
    work_queue(study, lambda: search_points() + p.queued(), trainer)


class Describe:
    """A trainer's describe for ``scaler confirm`` alone: confirmation trials only."""

    def __call__(self, trial) -> Job:
        import optuna

        if not is_confirmation(trial):  # a search trial queued meanwhile: scaler search's
            write(trial, status=Status.DUPLICATE, reason="a search trial: scaler search runs it")
            raise optuna.TrialPruned("not a confirmation trial")
        return describe(trial)


# ----------------------------------------------------------------------------------------------
# what a confirmation shows
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmedRow:
    """One confirmed network: its search result and its confirmation result."""

    trial: int  # the search trial it confirms
    number: int  # the confirmation trial
    role: str  # base, paper, grid or sampled
    alpha: float
    beta: float
    gamma: float
    search_top1: float
    search_runs: int
    top1: float  # mean val top-1 of the confirmation runs
    std: float | None  # their standard deviation (None for one run)
    runs: int
    p_best: float | None = None  # paired bootstrap; None for the base or without per-image data
    possibly_best: bool | None = None  # None: no usable noise estimate (or the base)
    test_top1: float | None = None  # mean test top-1 (reported, never used to choose)


@dataclass(frozen=True)
class TestVerdict:
    """The chosen candidate against the base on the test split (paired bootstrap, 95 %)."""

    chosen: float
    chosen_interval: tuple[float, float]
    base: float
    base_interval: tuple[float, float]
    difference: float
    difference_interval: tuple[float, float]
    runs: int  # paired seeds behind each mean
    images: int  # test images

    @property
    def verdict(self) -> str:
        lo, hi = self.difference_interval
        if lo > 0:
            return "better than the base"
        if hi < 0:
            return "worse than the base"
        return "not distinguishable from the base at 95 %"


@dataclass(frozen=True)
class Confirmation:
    """A search's confirmation stage as stored and trained so far."""

    state: str  # "not run", "in progress" or "done"
    settings: dict[str, Any]
    proxy: dict[str, Any]
    rows: tuple[ConfirmedRow, ...]
    noise: Noise
    tau: float = math.nan  # Kendall τ-b, search proxy against confirmation proxy
    tau_interval: tuple[float, float] = (math.nan, math.nan)
    chosen: ConfirmedRow | None = None
    test: TestVerdict | None = None
    edge: str = ""  # the warning when the chosen candidate lies on an edge of the α/β box
    notes: tuple[str, ...] = ()  # what the data cannot support

    def to_dict(self) -> dict[str, Any]:
        """The confirmation as plain JSON-ready values (for exports)."""
        noise_ = {"sigma": _num(self.noise.sigma), "dof": self.noise.dof, "runs": self.noise.runs}
        return {
            "state": self.state,
            "settings": self.settings,
            "proxy": self.proxy,
            "level": LEVEL,
            "noise": {**noise_, "usable": self.noise.usable},
            "proxy_fidelity": {
                "kendall_tau": _num(self.tau),
                "interval": [_num(x) for x in self.tau_interval],
                "networks": len(self.rows),
                "bootstrap": BOOTSTRAP,
            },
            "candidates": [dataclasses.asdict(r) for r in self.rows],
            "chosen": None if self.chosen is None else self.chosen.trial,
            "test": None if self.test is None else dataclasses.asdict(self.test),
            "edge_warning": self.edge or None,
            "notes": list(self.notes),
        }


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _bits(row, column: str, seeds: list[int]):
    """[seeds, images] per-image correctness of a frame row for the given seeds, or None."""
    import numpy as np

    packed, order = row.get(column), row.get("seed_list")
    if not isinstance(packed, list) or not isinstance(order, list) or len(packed) != len(order):
        return None
    return np.stack([unpack_bits(packed[order.index(s)]) for s in seeds])


def stage_array(rows: list, column: str = "val_correct"):
    """[networks, common seeds, images] correctness of frame rows, or None when a row lacks it
    (trained before 0.3) or the rows share no seed or no image count."""
    import numpy as np

    seed_sets = [set(r.get("seed_list") or []) for r in rows]
    common = sorted(set.intersection(*seed_sets)) if seed_sets else []
    if not common:
        return None
    arrays = [_bits(r, column, common) for r in rows]
    if any(a is None for a in arrays) or len({a.shape for a in arrays}) != 1:
        return None
    return np.stack(arrays)


def summarize(frame, attrs: dict[str, Any], config: dict[str, Any]) -> Confirmation:
    """The confirmation of a search frame (``attrs``: the study's attributes)."""
    stored = attrs.get(ATTR)
    if stored is None:
        return Confirmation("not run", {}, {}, (), Noise(math.nan, 0))
    conf = confirmed(frame)
    search = frame.set_index("number")
    pairs = [
        (search.loc[int(r["confirm_of"])], r)
        for _, r in conf.sort_values("top1_mean", ascending=False).iterrows()
    ]
    groups = [r["top1_seeds"] for _, r in pairs if isinstance(r["top1_seeds"], list)]
    sigma, dof = pooled_sd(groups)
    nz = Noise(sigma, sum(len(g) for g in groups), dof)
    state = "done" if len(pairs) == len(stored["points"]) else "in progress"
    base = Confirmation(state, stored["settings"], stored["proxy"], (), nz)
    if not pairs:
        return base
    rows = _rows(pairs, nz)
    tau, tau_interval, notes = _fidelity(pairs)
    chosen = next((r for r in rows if r.role != "base"), None)
    test, test_notes = _test_verdict(pairs, chosen)
    notes += test_notes + _limits(base, rows)
    return dataclasses.replace(
        base,
        rows=tuple(rows),
        tau=tau,
        tau_interval=tau_interval,
        chosen=chosen,
        test=test,
        edge=edge_warning(chosen, config),
        notes=tuple(notes),
    )


def _rows(pairs: list, nz: Noise) -> list[ConfirmedRow]:
    """The confirmed rows with P(best) (paired bootstrap) and the possibly-best flags."""
    cands = [i for i, (s, _) in enumerate(pairs) if s["role"] != "base"]
    keep = possibly_best(
        [float(pairs[i][1]["top1_mean"]) for i in cands],
        [seeds_of(pairs[i][1]) for i in cands],
        nz.sigma,
        nz.dof,
        LEVEL,
    )
    probs = None
    array = stage_array([pairs[i][1] for i in cands])
    if array is not None and cands:
        probs = p_best(paired_bootstrap([array], BOOTSTRAP)[0])
    rows = []
    for i, (s, c) in enumerate(pairs):
        j = cands.index(i) if i in cands else None
        tests = c.get("test_top1_seeds")
        rows.append(
            ConfirmedRow(
                trial=int(c["confirm_of"]),
                number=int(c["number"]),
                role=str(s["role"]),
                alpha=float(c["alpha"]),
                beta=float(c["beta"]),
                gamma=float(c["gamma"]),
                search_top1=float(s["top1_mean"]),
                search_runs=seeds_of(s),
                top1=float(c["top1_mean"]),
                std=None if seeds_of(c) < 2 else float(c["top1_std"]),
                runs=seeds_of(c),
                p_best=None if j is None or probs is None else float(probs[j]),
                possibly_best=None if j is None or keep is None else keep[j],
                test_top1=sum(tests) / len(tests) if isinstance(tests, list) and tests else None,
            )
        )
    return rows


def _fidelity(pairs: list) -> tuple[float, tuple[float, float], list[str]]:
    """Kendall τ-b between the stages over the confirmed networks, with its bootstrap interval."""
    if len(pairs) < 3:
        return (
            math.nan,
            (math.nan, math.nan),
            [f"Proxy fidelity needs at least 3 confirmed networks; {len(pairs)} so far: no τ."],
        )
    tau = kendall_tau(
        [float(s["top1_mean"]) for s, _ in pairs], [float(c["top1_mean"]) for _, c in pairs]
    )
    first = stage_array([s for s, _ in pairs])
    second = stage_array([c for _, c in pairs])
    if first is None or second is None or first.shape[2] != second.shape[2]:
        return (
            tau,
            (math.nan, math.nan),
            [
                "The τ of proxy fidelity has no interval: some runs stored no per-image results "
                "(trained before scaler 0.3)."
            ],
        )
    a, b = paired_bootstrap([first, second], BOOTSTRAP)
    taus = [kendall_tau(x, y) for x, y in zip(a, b, strict=True)]
    return tau, percentile_interval(taus, LEVEL), []


def _test_verdict(pairs: list, chosen: ConfirmedRow | None) -> tuple[TestVerdict | None, list]:
    """The chosen candidate against the base on the test split, over their common seeds."""
    if chosen is None:
        return None, ["No candidate was confirmed (only the base): no test-split verdict."]
    by_trial = {int(c["confirm_of"]): c for _, c in pairs}
    base = next((c for s, c in pairs if s["role"] == "base"), None)
    if base is None:
        return None, ["The base was not confirmed: no test-split comparison."]
    array = stage_array([by_trial[chosen.trial], base], "test_correct")
    if array is None:
        return None, [
            "No test-split result: the data have no test split (an image folder needs a test/ "
            "folder) or the runs predate scaler 0.3."
        ]
    (samples,) = paired_bootstrap([array], BOOTSTRAP)
    point = array.mean(axis=(1, 2)) * 100.0
    verdict = TestVerdict(
        chosen=float(point[0]),
        chosen_interval=percentile_interval(samples[:, 0], LEVEL),
        base=float(point[1]),
        base_interval=percentile_interval(samples[:, 1], LEVEL),
        difference=float(point[0] - point[1]),
        difference_interval=percentile_interval(samples[:, 0] - samples[:, 1], LEVEL),
        runs=int(array.shape[1]),
        images=int(array.shape[2]),
    )
    return verdict, []


def _limits(c: Confirmation, rows: list[ConfirmedRow]) -> list[str]:
    """What this confirmation cannot support, in words."""
    notes = []
    if c.settings.get("smoke"):
        notes.append(
            "This confirmation is a smoke run (quick proxy: top 1 and the base, 2 seeds, "
            "a few epochs): its numbers check the wiring and are no evidence."
        )
    if not c.noise.usable:
        notes.append(
            f"The confirmation has {c.noise.describe()}: it cannot say which candidates could "
            "be the best."
        )
    if c.state != "done":
        notes.append("The confirmation is not finished: rerun the command to complete it.")
    return notes


def edge_warning(chosen: ConfirmedRow | None, config: dict[str, Any]) -> str:
    """A warning when ``chosen`` lies on an edge of the α/β box that could be widened."""
    if chosen is None or not config.get("alpha_range") or not config.get("beta_range"):
        return ""
    up = float(config.get("budget", 2.0)) > 1
    edges, options = [], []
    for name, value, (lo, hi) in (
        ("α", chosen.alpha, config["alpha_range"]),
        ("β", chosen.beta, config["beta_range"]),
    ):
        option = "--alpha-range" if name == "α" else "--beta-range"
        # Above 1x the coefficients cannot go under 1 (under 1x not over 1): that edge is a wall.
        wall = (up and lo <= 1.0) if abs(value - lo) < 1e-9 else (not up and hi >= 1.0)
        if abs(value - lo) < 1e-9 or abs(value - hi) < 1e-9:
            side = "minimum" if abs(value - lo) < 1e-9 else "maximum"
            if wall:
                edges.append(f"{name} = {value:g} at its {side}, a wall: it cannot cross 1")
            else:
                edges.append(f"{name} = {value:g} at its {side}")
                options.append(option)
    if not options:
        return ""
    return (
        f"The chosen candidate lies on an edge of the search box ({', '.join(edges)}): the "
        f"best may lie outside it; widen {' and '.join(options)} and search again."
    )


def _net(r: ConfirmedRow) -> str:
    return f"#{r.trial} {r.role} (α {r.alpha:g}, β {r.beta:g}, γ {r.gamma:.3f})"


def _fidelity_sentence(c: Confirmation) -> str:
    if not math.isfinite(c.tau):
        return "Proxy fidelity: no Kendall τ (fewer than 3 confirmed networks)."
    text = (
        f"Proxy fidelity: Kendall τ = {c.tau:+.2f} between the search proxy's and the "
        f"confirmation proxy's ranking of {len(c.rows)} networks"
    )
    lo, hi = c.tau_interval
    if not math.isfinite(lo):
        return text + " (no interval: runs without per-image results)."
    text += f" (95 % paired-bootstrap interval {lo:+.2f} to {hi:+.2f})"
    if lo > 0:
        return text + ": the short proxy ranks these networks as the longer one does (τ > 0)."
    return text + ": the data cannot tell whether the short proxy ranks them as the longer does."


def _best_sentence(c: Confirmation) -> str:
    cands = [r for r in c.rows if r.role != "base"]
    probs = ", ".join(f"#{r.trial} {r.p_best:.2f}" for r in cands if r.p_best is not None)
    probs = f" P(best) by paired bootstrap over seeds and val images: {probs}." if probs else ""
    if not c.noise.usable:
        return f"Which candidates could be the best: not stated ({c.noise.describe()}).{probs}"
    keep = [_net(r) for r in cands if r.possibly_best]
    return (
        f"Possibly best at 95 % on the confirmation runs ({c.noise.describe()}; Gupta subset "
        f"selection with t quantiles): {', '.join(keep)}.{probs}"
    )


def _test_sentence(c: Confirmation) -> str:
    t = c.test
    assert t is not None and c.chosen is not None

    def ci(iv: tuple[float, float]) -> str:
        return f"{iv[0]:.2f}–{iv[1]:.2f}"

    lo, hi = t.difference_interval
    return (
        f"On the test split (never used to choose), the chosen candidate {_net(c.chosen)} "
        f"scored {t.chosen:.2f} % (95 % interval {ci(t.chosen_interval)}) against the base's "
        f"{t.base:.2f} % ({ci(t.base_interval)}): {t.difference:+.2f} points ({lo:+.2f} to "
        f"{hi:+.2f}) over {t.runs} paired seeds and {t.images} images, {t.verdict}."
    )


def sentences(c: Confirmation) -> list[str]:
    """What a confirmation shows, in sentences computed from it."""
    if c.state == "not run":
        return ["No confirmation stage yet: `scaler confirm STUDY` trains the leaders again."]
    if not c.rows:
        return ["The confirmation has no finished run yet: rerun the command to train it."]
    out = [_fidelity_sentence(c), _best_sentence(c)]
    if c.test is not None:
        out.append(_test_sentence(c))
    if c.edge:
        out.append(c.edge)
    return out + list(c.notes)


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
    plan: Plan
    source: Any


def prepare(cfg: ConfirmConfig, study: str | None = None, storage: str | None = None) -> Prepared:
    """Load the search ``study`` and check everything a confirmation needs (ValueError: one
    line)."""
    from scaler.data import parse_data
    from scaler.studies import default_storage, load_study, stored_config

    cfg.check()
    if study is None:
        raise ValueError("STUDY is missing: name the search to confirm")
    st = load_study(study, storage)
    if st.user_attrs.get("kind") != "search":
        raise ValueError(f"study {study!r} is not a scaler search: only searches are confirmed")
    source = parse_data(stored_config(st).get("data", "embedded"))
    p = plan(st, cfg, source)
    check_idle(st)
    return Prepared(cfg, study, storage or default_storage(study), st, p, source)


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
                base_pixels=p.plan.proxy.base_pixels,
                pixels=a["pixels"],
                base=base,
            ),
            p.plan.proxy.batch_size,
            p.source.num_classes,
        )
        for a in (pt["attrs"] for pt in p.plan.points)
    ]
    return max(sizes, default=0)


def create(p: Prepared):
    """Store the confirmation's settings and networks (once) and queue its trials."""
    if ATTR not in p.study.user_attrs:
        p.study.set_user_attr(ATTR, p.plan.stored())
    ensure_queue(p.study, p.plan.queued())
    return p.study


def work(p: Prepared, progress=None) -> None:
    """Train a prepared confirmation (its trials only: the search is finished)."""
    stage(create(p), p.plan, Trainer(Describe(), p.source, p.plan.proxy, progress))


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
