"""The optuna driver: search α, β (and the γ they leave) under a measured-FLOPs budget.

Step 1 of the paper, made reproducible: fix the budget B (φ = log2 B), search α and β, derive γ
so the candidate costs B × the base, train each candidate on a short proxy run, keep the best.

How a study runs (every decision has its reason here):

- **The constraint removes a degree of freedom.** α and β are sampled; γ follows from the
  budget. In ``measured`` mode (default) γ is the integer input size whose fvcore FLOPs of the
  real, rounded network come closest to B × the base's (:func:`scaler.scaling.solve_pixels`); a
  candidate that misses by more than the tolerance, or would need γ < 1 (γ > 1 under 1×), is
  recorded as *infeasible* (a pruned trial with the reason) and never trained. ``nominal`` mode
  uses the paper's γ = sqrt(B / (α·β²)) and records the measured cost beside it.
- **Cost resolution.** The budget is measured at ``cost_resolution`` (224 px: the network as it
  would be deployed) and the proxy trains the same network at the same γ applied to the proxy's
  smaller base size. Measuring at the proxy size itself (set ``cost_resolution`` to the proxy's
  base pixels) is allowed, but at 32–64 px FLOPs jump 1.7–2.4× whenever the input crosses a
  multiple of 32 px (the last feature map grows from 1×1 to 2×2), so almost no (α, β) can hit
  a budget within 5 % there. Both cost ratios are recorded for every trial.
- **Every point is a queued trial.** The base (1×, trained ``base_seeds`` ≥ 2 times: the noise
  floor), the paper's (α, β) = (1.2, 1.1) and, with the grid sampler, every grid point are
  enqueued; optuna hands a queued trial to exactly one worker (its RUNNING transition is atomic
  in the storage), which GridSampler alone does not guarantee. TPE and random samplers propose
  the rest.
- **Dedupe.** A candidate whose realized network and pixels match a finished trial reuses that
  result (status ``reused``), so no identical network is trained twice in a study.
- **Resume.** A study's whole configuration is stored as a study attribute; running the same
  command again resumes, and a different configuration is refused with what differs. Trials
  lost to Ctrl-C or a crash (no recorded reason) are queued again; trials that failed with a
  reason (NaN, out of memory) are not retried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaler import __version__
from scaler.data import DEFAULT_DATA
from scaler.spec import B0_RESOLUTION, check_pixels, round_pixels, scale

SAMPLERS = ("grid", "tpe", "random")
CONSTRAINTS = ("measured", "nominal")
PRUNERS = ("none", "median", "hyperband")
CANDIDATE_ROLES = ("paper", "grid", "sampled")
STUDIES_DIR = Path("studies")
PAPER_POINT = (1.2, 1.1)
# A quick search is a smoke run: the paper's point and the two grid points farthest from it.
QUICK_TRIALS = {"quick": 3}
# Settings that may change between runs of one study without changing its results.
_RESUMABLE = ("trials", "threads", "device")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search; stored with the study and compared on resume."""

    budget: float = 2.0  # multiple of the base's FLOPs; φ = log2(budget)
    data: str = DEFAULT_DATA  # a --data spec: embedded, imagefolder:PATH, cifar10:PATH, ...
    proxy: str = "standard"  # proxy preset: quick | standard | long
    proxy_overrides: tuple[tuple[str, Any], ...] = ()  # (field, value) pairs on top of the preset
    sampler: str = "grid"  # grid (paper-style), tpe or random
    trials: int | None = (
        None  # cap on candidate trials; None = the whole grid, or 12 for tpe/random
    )
    seeds: int = 1  # proxy runs per candidate; the objective is their mean top-1
    base_seeds: int = 2  # runs of the unscaled base: >= 2, they measure the noise floor
    constraint: str = "measured"  # measured (fvcore, default) or nominal (the paper's formula)
    tolerance: float = 0.05  # largest relative miss of the budget in measured mode
    cost_resolution: int = B0_RESOLUTION  # input size of the base where the budget is measured
    alpha_range: tuple[float, float] | None = None  # default: [1, 1.4^φ] (or [1.4^φ, 1] under 1×)
    beta_range: tuple[float, float] | None = None  # default: [1, 1.2^φ] (or [1.2^φ, 1] under 1×)
    alpha_step: float | None = None  # default: half of the alpha range (3 grid values)
    beta_step: float | None = None  # default: half of the beta range (3 grid values)
    pruner: str = "none"  # none | median | hyperband, fed by the proxy's per-epoch accuracy
    sampler_seed: int = 0  # seed of the TPE/random sampler

    # -- derived ------------------------------------------------------------------------------
    @property
    def phi(self) -> float:
        return math.log2(self.budget)

    def ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(alpha_range, beta_range) with defaults filled in."""
        phi = self.phi
        a = self.alpha_range or tuple(sorted((1.0, round(1.4**phi, 4))))
        b = self.beta_range or tuple(sorted((1.0, round(1.2**phi, 4))))
        return (float(a[0]), float(a[1])), (float(b[0]), float(b[1]))

    def steps(self) -> tuple[float, float]:
        (a0, a1), (b0, b1) = self.ranges()
        a = self.alpha_step or max((a1 - a0) / 2, 1e-3)
        b = self.beta_step or max((b1 - b0) / 2, 1e-3)
        return float(a), float(b)

    def grid(self) -> list[tuple[float, float]]:
        """Grid points (α, β) in training order: from the paper's point, farthest first.

        Each next point is the one farthest (in range-normalized α, β) from those already
        taken, so a run cut short, or capped by ``trials``, has still covered the whole range.
        """
        (a0, a1), (b0, b1) = self.ranges()
        sa, sb = self.steps()
        points = [(a, b) for a in _values(a0, a1, sa) for b in _values(b0, b1, sb)]
        span_a, span_b = max(a1 - a0, 1e-9), max(b1 - b0, 1e-9)

        def dist(p, q) -> float:
            return math.hypot((p[0] - q[0]) / span_a, (p[1] - q[1]) / span_b)

        paper = _paper_at(self.budget)
        taken, rest = [paper], [p for p in points if not _close(p, paper)]
        while rest:
            nxt = max(rest, key=lambda p: (min(dist(p, q) for q in taken), -p[0], -p[1]))
            taken.append(nxt)
            rest.remove(nxt)
        on_grid = any(_close(p, paper) for p in points)
        return taken if on_grid else taken[1:]

    def proxy_config(self):
        from scaler.train import proxy_config

        return proxy_config(self.proxy, **dict(self.proxy_overrides))

    def candidate_cap(self) -> int:
        if self.trials is not None:
            return self.trials
        if self.proxy in QUICK_TRIALS:
            return QUICK_TRIALS[self.proxy]
        if self.sampler == "grid":  # the grid, plus the paper's point when it lies off the grid
            paper = _paper_at(self.budget)
            return len(self.grid()) + (not any(_close(paper, p) for p in self.grid()))
        return 12

    def validate(self) -> SearchConfig:
        """Raise ValueError (one line, naming the option) on any invalid setting."""
        if not (math.isfinite(self.budget) and self.budget > 0 and self.budget != 1):
            raise ValueError(f"--budget {self.budget} is invalid: it must be > 0 and not 1x")
        _choice("--sampler", self.sampler, SAMPLERS)
        _choice("--constraint", self.constraint, CONSTRAINTS)
        _choice("--pruner", self.pruner, PRUNERS)
        if self.trials is not None and self.trials < 1:
            raise ValueError(f"--trials {self.trials} is invalid: it must be an integer >= 1")
        if not 1 <= self.seeds <= 100:
            raise ValueError(f"--seeds {self.seeds} is invalid: it must be in 1..100")
        if not 2 <= self.base_seeds <= 100:
            raise ValueError(f"--base-seeds {self.base_seeds} is invalid: it must be in 2..100")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"--tolerance {self.tolerance} is invalid: it must be in (0, 1)")
        check_pixels(self.cost_resolution, "--cost-resolution")
        up = self.budget > 1
        for name, rng, step in (
            ("--alpha-range", self.alpha_range, self.alpha_step),
            ("--beta-range", self.beta_range, self.beta_step),
        ):
            if rng is not None:
                lo, hi = rng
                if not (math.isfinite(lo) and math.isfinite(hi)):
                    raise ValueError(f"{name} {lo}:{hi} is invalid: use finite numbers")
                if lo > hi:
                    raise ValueError(
                        f"{name} {lo}:{hi} is invalid: its minimum exceeds its maximum"
                    )
                if up and lo < 1:
                    raise ValueError(
                        f"{name} {lo}:{hi} is invalid: above 1x the coefficients must be >= 1"
                    )
                if not up and (hi > 1 or lo <= 0):
                    raise ValueError(
                        f"{name} {lo}:{hi} is invalid: under 1x the coefficients must be in (0, 1]"
                    )
            if step is not None and not step > 0:
                raise ValueError(
                    f"{name.replace('range', 'step')} {step} is invalid: it must be > 0"
                )
        if self.sampler == "grid" and len(self.grid()) > 400:
            raise ValueError(
                "the grid has more than 400 points: use a larger --alpha-step/--beta-step"
            )
        self.proxy_config()  # raises on unknown presets / invalid overrides
        return self

    def stored(self) -> dict[str, Any]:
        """The configuration as stored in the study (JSON-safe)."""
        proxy = dataclasses.asdict(self.proxy_config())
        (a, b), (sa, sb) = self.ranges(), self.steps()
        return {
            "budget": self.budget,
            "phi": self.phi,
            "data": self.data,
            "proxy_preset": self.proxy,
            "proxy": proxy,
            "sampler": self.sampler,
            "trials": self.trials,
            "seeds": self.seeds,
            "base_seeds": self.base_seeds,
            "constraint": self.constraint,
            "tolerance": self.tolerance,
            "cost_resolution": self.cost_resolution,
            "base_pixels": proxy["base_pixels"],
            "alpha_range": list(a),
            "beta_range": list(b),
            "alpha_step": sa,
            "beta_step": sb,
            "pruner": self.pruner,
            "sampler_seed": self.sampler_seed,
        }


def _values(lo: float, hi: float, step: float) -> list[float]:
    n = int(math.floor((hi - lo) / step + 1e-9))
    return [round(lo + i * step, 6) for i in range(n + 1)]


def _choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{option} {value!r} is invalid: valid values are {', '.join(valid)}")


def versions() -> dict[str, str]:
    """Versions of the packages that shape a result."""
    import optuna
    import torch

    try:
        from importlib.metadata import version

        fvcore = version("fvcore")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        fvcore = "unknown"
    return {
        "scaler": __version__,
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "fvcore": fvcore,
    }


# ----------------------------------------------------------------------------------------------
# storage
# ----------------------------------------------------------------------------------------------

_SCHEMES = ("sqlite", "postgresql", "mysql")


def heartbeat() -> tuple[int, int]:
    """(interval, grace period) in seconds for trial heartbeats.

    A trial whose worker sends no heartbeat for the grace period is failed as stale and queued
    again. ``SCALER_HEARTBEAT=INTERVAL,GRACE`` overrides the defaults (tests use short ones).
    """
    text = os.environ.get("SCALER_HEARTBEAT", "")
    try:
        interval, grace = (int(x) for x in text.split(","))
        if interval >= 1 and grace > interval:
            return interval, grace
    except ValueError:
        pass
    return 10, 60


def mask_url(url: str) -> str:
    """The storage URL with any password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)([^@]*)@", r"\1***@", url)


def mask_text(text: str, url: str | None) -> str:
    """``text`` with the password of ``url`` (if any) masked wherever it appears."""
    text = mask_url(text)
    match = re.search(r"://[^:/@]+:([^@]*)@", url or "")
    if match and match.group(1):
        text = text.replace(match.group(1), "***")
    return text


def check_storage_url(url: str) -> str:
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ValueError(
            f"--storage {mask_url(url)!r} is invalid: use an optuna storage URL "
            "(sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, mysql://...)"
        )
    return url


def default_storage(study: str) -> str:
    return f"sqlite:///{STUDIES_DIR / (study + '.db')}"


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return None


def open_storage(url: str, *, create: bool = True):
    """An optuna RDB storage with heartbeats; bad URLs and unreachable servers → ValueError."""
    import optuna

    check_storage_url(url)
    path = _sqlite_path(url)
    if path is not None:
        if not create and not path.exists():
            raise ValueError(f"storage {mask_url(url)!r} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several workers share one file: wait for the write lock instead of failing at once.
        engine_kwargs["connect_args"] = {"timeout": 120}
    else:
        engine_kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    interval, grace = heartbeat()
    for attempt in range(5):
        try:
            with warnings_silenced():
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=interval,
                    grace_period=grace,
                )
        except Exception as e:
            # Workers starting together on a new database race to create its tables; the
            # loser sees a duplicate and simply opens what the winner made.
            text = str(e).lower()
            if attempt < 4 and any(
                m in text for m in ("unique constraint", "already exists", "duplicate key")
            ):
                time.sleep(0.5 + attempt)
                continue
            raise _storage_error(url, e) from None
    raise AssertionError("unreachable")


def _storage_error(url: str, e: Exception) -> ValueError:
    """The one-line, password-masked error for a storage that cannot be opened."""
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ValueError(f"--storage {mask_url(url)!r} cannot be opened: {mask_text(reason, url)}")


@contextlib.contextmanager
def warnings_silenced():
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def study_names(storage) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_study(name: str, storage_url: str | None = None):
    """Load an existing study (from its default SQLite file when no storage is given)."""
    import optuna

    url = storage_url or default_storage(name)
    storage = open_storage(url, create=False)
    if name not in study_names(storage):
        raise ValueError(f"study {name!r} does not exist in {mask_url(url)}")
    return optuna.load_study(study_name=name, storage=storage)


# ----------------------------------------------------------------------------------------------
# candidates
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A point (α, β) realized under the budget: the network to train and its costs."""

    role: str
    alpha: float
    beta: float
    gamma: float  # effective: cost pixels / cost resolution
    gamma_nominal: float  # sqrt(budget / (α·β²))
    cost_pixels: int  # input size at the cost resolution
    pixels: int  # input size of the proxy run
    nominal_cost: float  # α·β²·γ_nominal² is the budget by construction; α·β²·γ² here
    cost_ratio: float  # fvcore FLOPs / base FLOPs at the cost resolution
    proxy_cost_ratio: float  # the same at the proxy's resolution
    flops: int  # fvcore FLOPs of the proxy network (its head has the data's classes)
    params: int
    activations: int
    layers: int
    channels: tuple[int, ...]
    network_key: str
    infeasible: str = ""  # the reason, when it cannot be trained

    def attrs(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d


def realize(
    cfg: SearchConfig,
    role: str,
    alpha: float,
    beta: float,
    num_classes: int,
    max_pixels: int | None,
) -> Candidate:
    """Turn (α, β) into the network a trial trains, solving γ under the budget."""
    from scaler.complexity import count
    from scaler.scaling import solve_pixels

    base_px = cfg.proxy_config().base_pixels
    res = cfg.cost_resolution
    base_cost = count(scale(base_resolution=res), num_classes).flops
    base_proxy = count(scale(base_resolution=base_px), num_classes).flops
    reason = ""
    if role == "base":
        alpha = beta = gamma = gamma_nominal = 1.0
        cost_pixels = res
    else:
        gamma_nominal = math.sqrt(cfg.budget / (alpha * beta**2))
        if cfg.constraint == "measured":
            sol = solve_pixels(alpha, beta, cfg.budget * base_cost, res, num_classes)
            cost_pixels = sol.spec.pixels
            if abs(sol.error) > cfg.tolerance:
                reason = (
                    f"closest input size {cost_pixels} px misses the budget by "
                    f"{sol.error:+.1%} (tolerance ±{cfg.tolerance:.0%})"
                )
        else:
            cost_pixels = round_pixels(gamma_nominal, res)
        gamma = cost_pixels / res
        if (cfg.budget > 1 and gamma < 1) or (cfg.budget < 1 and gamma > 1):
            side = "< 1" if cfg.budget > 1 else "> 1"
            # The more basic reason wins: depth and width alone already spend the budget.
            reason = f"needs γ {side} (γ = {gamma:.3f}): depth and width alone exceed the budget"
    pixels = round_pixels(gamma, base_px) if role != "base" else base_px
    cost_spec = scale(alpha, beta, base_resolution=res, pixels=cost_pixels)
    spec = scale(alpha, beta, base_resolution=base_px, pixels=max(8, pixels))
    if not reason and max_pixels is not None and spec.pixels > max_pixels:
        reason = f"needs {spec.pixels} px but the data serve at most {max_pixels} px"
    cost = count(spec, num_classes)
    return Candidate(
        role=role,
        alpha=float(alpha),
        beta=float(beta),
        gamma=float(gamma),
        gamma_nominal=float(gamma_nominal),
        cost_pixels=int(cost_pixels),
        pixels=int(spec.pixels),
        nominal_cost=float(alpha * beta**2 * gamma**2),
        cost_ratio=count(cost_spec, num_classes).flops / base_cost,
        proxy_cost_ratio=cost.flops / base_proxy,
        flops=cost.flops,
        params=cost.params,
        activations=cost.activations,
        layers=spec.layers,
        channels=tuple(s.channels for s in spec.stages),
        network_key=spec.key_str,
        infeasible=reason,
    )


# ----------------------------------------------------------------------------------------------
# the worker
# ----------------------------------------------------------------------------------------------


@dataclass
class Event:
    """What a worker reports to a progress display."""

    kind: str  # "trial_start" | "epoch" | "trial_end"
    trial: int
    done: int
    total: int
    info: dict[str, Any] = field(default_factory=dict)


ProgressFn = Callable[[Event], None]


def _point_id(role: str, alpha: float, beta: float) -> str:
    return f"{role}:{alpha:.6f}:{beta:.6f}"


def _trial_point(t) -> str | None:
    a = t.user_attrs
    if a.get("role") is None or "alpha" not in a:
        return None
    return _point_id(a["role"], a["alpha"], a["beta"])


def wanted_points(cfg: SearchConfig) -> list[tuple[str, float, float]]:
    """The queued points of a study: base, the paper's point, and the grid."""
    points: list[tuple[str, float, float]] = [("base", 1.0, 1.0)]
    paper = _paper_at(cfg.budget)
    points.append(("paper", *paper))
    if cfg.sampler == "grid":
        grid = [p for p in cfg.grid() if not _close(p, paper)]
        grid = grid[: max(0, cfg.candidate_cap() - 1)]
        points += [("grid", a, b) for a, b in grid]
    return points


def _paper_at(budget: float) -> tuple[float, float]:
    """The paper's (α, β) = (1.2, 1.1) per unit φ, at the budget's φ."""
    phi = math.log2(budget)
    return (round(PAPER_POINT[0] ** phi, 6), round(PAPER_POINT[1] ** phi, 6))


def _close(p: tuple[float, float], q: tuple[float, float]) -> bool:
    return abs(p[0] - q[0]) < 1e-6 and abs(p[1] - q[1]) < 1e-6


def ensure_queue(study, cfg: SearchConfig) -> int:
    """Enqueue every wanted point that no trial covers; returns how many were added.

    A point is covered by a waiting, running, complete or pruned trial, or by a failure with a
    recorded reason; a trial lost to Ctrl-C or a crash leaves its point uncovered.
    """
    from optuna.trial import TrialState

    covered = set()
    for t in study.get_trials(deepcopy=False):
        pid = _trial_point(t)
        if pid is None:
            continue
        if t.state != TrialState.FAIL or t.user_attrs.get("status") == "failed":
            covered.add(pid)
    added = 0
    for role, a, b in wanted_points(cfg):
        if _point_id(role, a, b) not in covered:
            study.enqueue_trial(
                {"alpha": a, "beta": b}, user_attrs={"role": role, "alpha": a, "beta": b}
            )
            added += 1
    return added


class Objective:
    """The optuna objective: realize, dedupe, train with seeds, record."""

    def __init__(self, cfg: SearchConfig, source, progress: ProgressFn | None = None):
        self.cfg = cfg
        self.source = source
        self.proxy = cfg.proxy_config()
        self.progress = progress
        self.counter = (0, 0)  # (done, total) for progress events

    def __call__(self, trial) -> float:
        import optuna

        cfg = self.cfg
        role = trial.user_attrs.get("role", "sampled")
        (a0, a1), (b0, b1) = cfg.ranges()
        if role == "sampled":
            trial.set_user_attr("role", role)
            sa, sb = cfg.steps()
            alpha = trial.suggest_float("alpha", a0, a1, step=sa)
            beta = trial.suggest_float("beta", b0, b1, step=sb)
        else:
            # Queued points (base, paper, grid) may lie off the sampler's range or step.
            alpha, beta = trial.user_attrs["alpha"], trial.user_attrs["beta"]
            trial.suggest_float("alpha", min(a0, alpha), max(a1, alpha))
            trial.suggest_float("beta", min(b0, beta), max(b1, beta))
        cand = realize(cfg, role, alpha, beta, self.source.num_classes, self.source.max_pixels)
        for k, v in cand.attrs().items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if cand.infeasible:
            trial.set_user_attr("status", "infeasible")
            trial.set_user_attr("reason", cand.infeasible)
            raise optuna.TrialPruned(f"infeasible: {cand.infeasible}")
        reused = self._reuse(trial, cand)
        if reused is not None:
            return reused
        with recorded_outcome(trial):
            self._emit("trial_start", trial.number, cand.attrs())
            return self._train(trial, cand)

    def _emit(self, kind: str, number: int, info: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(Event(kind, number, *self.counter, info))

    def _reuse(self, trial, cand: Candidate) -> float | None:
        seeds = self.cfg.base_seeds if cand.role == "base" else self.cfg.seeds
        return reuse_twin(trial, cand.network_key, seeds)

    def _train(self, trial, cand: Candidate) -> float:
        spec = scale(
            cand.alpha, cand.beta, base_resolution=self.proxy.base_pixels, pixels=cand.pixels
        )
        seeds = self.cfg.base_seeds if cand.role == "base" else self.cfg.seeds
        prune = self.cfg.pruner != "none" and cand.role != "base"
        return train_point(trial, spec, self.source, self.proxy, seeds, prune, self._emit)


@contextlib.contextmanager
def recorded_outcome(trial):
    """Record on ``trial`` why it ends without a value: pruned, interrupted or failed.

    A failure keeps its reason (and is not retried on resume); an interruption is queued again.
    """
    import optuna

    try:
        yield
    except optuna.TrialPruned:
        trial.set_user_attr("status", "pruned")
        raise
    except KeyboardInterrupt:
        trial.set_user_attr("status", "interrupted")
        raise
    except Exception as e:
        trial.set_user_attr("status", "failed")
        trial.set_user_attr("reason", f"{type(e).__name__}: {' '.join(str(e).split())}")
        raise


def reuse_twin(trial, network_key: str, seeds: int) -> float | None:
    """A finished identical network's value, copied into ``trial`` (waits for a running twin).

    Twins are trials of the same study with the same ``network_key`` (realized network and
    pixels) trained with at least ``seeds`` seeds. Returns None when there is none.
    """
    import optuna
    from optuna.trial import TrialState

    while True:
        twins = [
            t
            for t in trial.study.get_trials(deepcopy=False)
            if t.number != trial.number
            and t.user_attrs.get("network_key") == network_key
            and len(t.user_attrs.get("top1_seeds", [])) >= seeds
        ]
        done = [t for t in twins if t.state == TrialState.COMPLETE]
        if done:
            src = min(done, key=lambda t: t.number)
            for key in _RESULT_ATTRS:
                if key in src.user_attrs:
                    trial.set_user_attr(key, src.user_attrs[key])
            trial.set_user_attr("status", "reused")
            trial.set_user_attr("reused_from", src.user_attrs.get("reused_from", src.number))
            return float(src.value)
        running = [
            t
            for t in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number < trial.number
            and t.user_attrs.get("network_key") == network_key
            and t.user_attrs.get("status") is None
        ]
        if not running:
            return None
        time.sleep(2.0)  # an identical network is training in another worker
        optuna.storages.fail_stale_trials(trial.study)  # unless that worker died


_RESULT_ATTRS = (
    "top1_seeds",
    "top5_seeds",
    "top1_mean",
    "top1_std",
    "top5_mean",
    "wall_time",
    "images_per_s",
    "loss_curve",
)


def train_point(
    trial,
    spec,
    source,
    proxy,
    seeds: int,
    prune: bool,
    emit: Callable[[str, int, dict[str, Any]], None] | None = None,
) -> float:
    """Train ``spec`` with ``seeds`` seeds, record the results on ``trial``, return mean top-1.

    With ``prune`` the first seed's per-epoch accuracy feeds the study's pruner.
    """
    import optuna

    from scaler.train import train

    top1, top5, walls, speeds, curves = [], [], [], [], []
    for k in range(seeds):

        def on_epoch(epoch: int, acc: float, k: int = k) -> None:
            if k == 0 and prune:
                trial.report(acc, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch} (top-1 {acc:.1f} %)")

        def on_progress(epoch, epochs, loss, ips, k: int = k) -> None:
            if emit is not None:
                info = {
                    "epoch": epoch,
                    "epochs": epochs,
                    "loss": loss,
                    "images_per_s": ips,
                    "seed": k,
                    "seeds": seeds,
                }
                emit("epoch", trial.number, info)

        result = train(
            spec, source, proxy, seed=proxy.seed + k, callback=on_epoch, progress=on_progress
        )
        top1.append(result.top1)
        top5.append(result.top5)
        walls.append(result.wall_time)
        speeds.append(result.images_per_s)
        curves.append(list(result.loss_curve))
    mean = sum(top1) / len(top1)
    for key, value in (
        ("top1_seeds", top1),
        ("top5_seeds", top5),
        ("top1_mean", mean),
        ("top1_std", _std(top1)),
        ("top5_mean", sum(top5) / len(top5)),
        ("wall_time", sum(walls)),
        ("images_per_s", sum(speeds) / len(speeds)),
        ("loss_curve", curves[0]),
        ("status", "trained"),
    ):
        trial.set_user_attr(key, value)
    if emit is not None:
        emit("trial_end", trial.number, {"top1": mean, "wall_time": sum(walls)})
    return mean


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _make_sampler(cfg: SearchConfig):
    import optuna

    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=cfg.sampler_seed)
    # Grid points are queued trials; the random sampler only serves tpe-less modes.
    return optuna.samplers.RandomSampler(seed=cfg.sampler_seed)


def _make_pruner(cfg: SearchConfig):
    import optuna

    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(2, cfg.proxy_config().epochs)
        )
    return optuna.pruners.NopPruner()


def default_study_name(cfg: SearchConfig, fingerprint: str) -> str:
    """Name from the data, the budget and the proxy settings."""
    data = re.sub(r"[^A-Za-z0-9]+", "-", cfg.data.split(":", 1)[0]).strip("-")
    if ":" in cfg.data:
        data += "-" + re.sub(r"[^A-Za-z0-9]+", "-", Path(cfg.data.split(":", 1)[1]).name)[:24]
    proxy = json.dumps(dataclasses.asdict(cfg.proxy_config()), sort_keys=True)
    digest = hashlib.sha1(f"{fingerprint}|{proxy}".encode()).hexdigest()[:6]
    return f"search-{data}-{cfg.budget:g}x-{cfg.proxy}-{digest}"


def config_diff(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a stored configuration and a new one (resumable keys ignored)."""
    out = []
    for key in sorted(set(stored) | set(new)):
        if key in _RESUMABLE:
            continue
        a, b = stored.get(key), new.get(key)
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            if isinstance(a, dict) and isinstance(b, dict):
                out += [f"{key}.{d}" for d in config_diff(a, b)]
            else:
                out.append(f"{key}: {a} → {b}")
    return out


@dataclass(frozen=True)
class Prepared:
    """A validated search, ready to run: nothing has been written yet."""

    cfg: SearchConfig
    source: Any
    study_name: str
    storage_url: str


def resolve_target(cfg, study: str | None, storage: str | None, default_name) -> tuple:
    """(data source, study name, storage URL) of a validated search or sweep configuration.

    ``default_name(cfg, fingerprint)`` names the study when ``study`` is not given.
    """
    from scaler.data import parse_data

    source = parse_data(cfg.data)
    base_px = cfg.proxy_config().base_pixels
    if source.max_pixels is not None and base_px > source.max_pixels:
        raise ValueError(
            f"proxy base_pixels {base_px} is invalid for {cfg.data}: the data serve at most "
            f"{source.max_pixels} px"
        )
    name = study or default_name(cfg, source.fingerprint())
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name):
        raise ValueError(f"--study {name!r} is invalid: use letters, digits, '.', '_' and '-'")
    url = check_storage_url(storage) if storage else default_storage(name)
    return source, name, url


def prepare(cfg: SearchConfig, study: str | None = None, storage: str | None = None) -> Prepared:
    """Validate everything a search needs before any study is created or changed."""
    cfg.validate()
    source, name, url = resolve_target(cfg, study, storage, default_study_name)
    prepared = Prepared(cfg, source, name, url)
    # Connect and compare with an existing study now, before any progress display starts.
    st = open_storage(url)
    if name in study_names(st):
        open_search_study(prepared)
    return prepared


def open_search_study(p: Prepared):
    """Create the study, or load it and refuse a different configuration."""
    import optuna

    storage = open_storage(p.storage_url)
    stored = p.cfg.stored()
    stored["data_fingerprint"] = p.source.fingerprint()
    if p.study_name in study_names(storage):
        study = optuna.load_study(
            study_name=p.study_name,
            storage=storage,
            sampler=_make_sampler(p.cfg),
            pruner=_make_pruner(p.cfg),
        )
        refuse_changed_config(study, "search", stored)
        return study
    try:
        study = optuna.create_study(
            study_name=p.study_name,
            storage=storage,
            direction="maximize",
            sampler=_make_sampler(p.cfg),
            pruner=_make_pruner(p.cfg),
        )
    except optuna.exceptions.DuplicatedStudyError:  # another worker created it first
        return open_search_study(p)
    study.set_user_attr("kind", "search")
    study.set_user_attr("versions", versions())
    study.set_user_attr("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    ensure_queue(study, p.cfg)
    # Written last: a worker that loads the study meanwhile waits for it, so the queue is
    # filled exactly once.
    study.set_user_attr("config", stored)
    return study


def wait_for_config(study, kind: str, timeout: float = 120.0) -> dict[str, Any] | None:
    """The stored configuration, waiting while another worker is still creating the study.

    None when the study is not a scaler study of ``kind`` (no sign of one within a few seconds).
    """
    start = time.monotonic()
    while True:
        attrs = study.user_attrs  # read from the storage on every access
        if "config" in attrs:
            return attrs["config"]
        waited = time.monotonic() - start
        creating = attrs.get("kind") == kind and waited < timeout
        if not creating and (attrs or waited > 5.0):
            return None
        time.sleep(0.5)


def refuse_changed_config(study, kind: str, stored: dict[str, Any]) -> None:
    """Raise ValueError unless ``study`` is a scaler ``kind`` study stored with ``stored``."""
    old = wait_for_config(study, kind)
    if old is None or study.user_attrs.get("kind") != kind:
        raise ValueError(f"study {study.study_name!r} exists and is not a scaler {kind}")
    diff = config_diff(old, stored)
    if diff:
        raise ValueError(
            f"study {study.study_name!r} was created with a different configuration "
            f"({'; '.join(diff)}): rerun with the original options or pick another --study"
        )


def count_candidates(study) -> int:
    """Candidate trials that used up a slot of the --trials cap."""
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("role") not in CANDIDATE_ROLES:
            continue
        if t.state == TrialState.FAIL and t.user_attrs.get("status") != "failed":
            continue  # lost to a crash: it will run again
        n += 1
    return n


def run_worker(p: Prepared, progress: ProgressFn | None = None, threads: int | None = None):
    """Work on the study until no queued point is left (and the cap is reached)."""
    import optuna
    import torch

    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = open_search_study(p)
    objective = Objective(p.cfg, p.source, progress)
    cap = p.cfg.candidate_cap()

    def sampled_left() -> int:
        return 0 if p.cfg.sampler == "grid" else max(0, cap - count_candidates(study))

    work_queue(study, objective, lambda: ensure_queue(study, p.cfg), sampled_left)
    return study


def work_queue(
    study, objective, refill: Callable[[], Any], sampled_left: Callable[[], int] = lambda: 0
) -> None:
    """Run trials until nothing is queued or left to sample and no other worker is running one.

    ``refill()`` queues again the points that lost their trial (Ctrl-C, a dead worker);
    ``objective.counter`` is set to (finished, total) for progress events.
    """
    import optuna
    from optuna.trial import TrialState

    with warnings_silenced():
        while True:
            refill()
            trials = study.get_trials(deepcopy=False)
            waiting = sum(t.state == TrialState.WAITING for t in trials)
            finished = sum(t.state.is_finished() for t in trials)
            left = sampled_left()
            objective.counter = (finished, finished + waiting + left)
            if waiting == 0 and left == 0:
                if not any(t.state == TrialState.RUNNING for t in trials):
                    return
                # Other workers are busy, or dead: wait for their trials to finish or go
                # stale (then ``refill`` queues them again), so the study completes.
                time.sleep(heartbeat()[0])
                optuna.storages.fail_stale_trials(study)
                continue
            study.optimize(objective, n_trials=1, catch=(Exception,))


def run(
    cfg: SearchConfig,
    study: str | None = None,
    storage: str | None = None,
    progress: ProgressFn | None = None,
    workers: int = 1,
) -> SearchResult:
    """Run (or resume) a search; the Python entry point behind ``scaler search``."""
    return run_prepared(prepare(cfg, study, storage), progress, workers)


def run_prepared(p: Prepared, progress: ProgressFn | None = None, workers: int = 1):
    """Run a search that :func:`prepare` validated (and connected to)."""
    if workers > 1:
        from scaler.workers import run_workers

        run_workers(p, workers)
        st = load_study(p.study_name, p.storage_url)
    else:
        st = run_worker(p, progress)
    return result(st, p.storage_url)


# ----------------------------------------------------------------------------------------------
# reading a study back
# ----------------------------------------------------------------------------------------------

FRAME_COLUMNS = (
    "number",
    "state",
    "role",
    "status",
    "reason",
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
    "nominal_cost",
    "cost_ratio",
    "proxy_cost_ratio",
    "top1_mean",
    "top1_std",
    "top5_mean",
    "seeds",
    "wall_time",
    "images_per_s",
    "reused_from",
    "network_key",
    "value",
)


def trials_frame(study):
    """All trials of a study as a DataFrame, one row each, with state and reason."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        status = a.get("status") or {
            "FAIL": "lost",
            "WAITING": "waiting",
            "RUNNING": "running",
        }.get(t.state.name, t.state.name.lower())
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "role": a.get("role", ""),
                "status": status,
                "reason": a.get("reason", "")
                or ("" if status != "lost" else "interrupted or crashed; requeued on resume"),
                "alpha": t.params.get("alpha", a.get("alpha")),
                "beta": t.params.get("beta", a.get("beta")),
                "gamma": a.get("gamma"),
                "gamma_nominal": a.get("gamma_nominal"),
                "cost_pixels": a.get("cost_pixels"),
                "pixels": a.get("pixels"),
                "layers": a.get("layers"),
                "params": a.get("params"),
                "activations": a.get("activations"),
                "flops": a.get("flops"),
                "nominal_cost": a.get("nominal_cost"),
                "cost_ratio": a.get("cost_ratio"),
                "proxy_cost_ratio": a.get("proxy_cost_ratio"),
                "top1_mean": a.get("top1_mean"),
                "top1_std": a.get("top1_std"),
                "top5_mean": a.get("top5_mean"),
                "seeds": len(a.get("top1_seeds", [])) or None,
                "wall_time": a.get("wall_time"),
                "images_per_s": a.get("images_per_s"),
                "reused_from": a.get("reused_from"),
                "network_key": a.get("network_key"),
                "value": t.value,
                "top1_seeds": a.get("top1_seeds"),
                "series": a.get("series"),
                "label": a.get("label"),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=list(FRAME_COLUMNS) + ["top1_seeds", "series", "label"])
    return frame


@dataclass(frozen=True)
class Noise:
    """The run-to-run spread of top-1 and the rule that calls two candidates tied."""

    sigma: float  # pooled standard deviation of repeated runs (percentage points)
    runs: int  # number of repeated runs it is estimated from
    rule: str = "tied with the best when the gap is within 2 standard errors of the difference"


def noise(frame) -> Noise:
    """Pooled std over every trained group with >= 2 seeds (the base at least)."""
    ss, dof, runs = 0.0, 0, 0
    for seeds in frame.loc[frame["status"] == "trained", "top1_seeds"]:
        if isinstance(seeds, list) and len(seeds) >= 2:
            m = sum(seeds) / len(seeds)
            ss += sum((s - m) ** 2 for s in seeds)
            dof += len(seeds) - 1
            runs += len(seeds)
    return Noise(sigma=math.sqrt(ss / dof) if dof else float("nan"), runs=runs)


def leaderboard(frame, noise_: Noise | None = None):
    """Finished candidates (and the base) ranked by mean top-1, with the tied-with-best mark."""
    noise_ = noise_ or noise(frame)
    done = frame[(frame["state"] == "COMPLETE") & frame["top1_mean"].notna()].copy()
    done = done.sort_values("top1_mean", ascending=False)
    cands = done[done["role"].isin(CANDIDATE_ROLES)]
    done["tied"] = False
    done["best"] = False
    if not cands.empty:
        best = cands.iloc[0]
        done.loc[best.name, "best"] = True
        for idx, row in cands.iterrows():
            se = noise_.sigma * math.sqrt(1 / (best["seeds"] or 1) + 1 / (row["seeds"] or 1))
            gap = best["top1_mean"] - row["top1_mean"]
            done.loc[idx, "tied"] = bool(math.isfinite(se) and gap <= 2 * se)
    return done


@dataclass(frozen=True)
class SearchResult:
    """What a search leaves: where it is stored and its trials."""

    study_name: str
    storage: str  # masked
    config: dict[str, Any]
    frame: Any  # pandas DataFrame, one row per trial
    board: Any  # leaderboard DataFrame
    noise: Noise

    @property
    def best(self):
        """The best candidate's row (a pandas Series), or None."""
        rows = self.board[self.board["best"]]
        return None if rows.empty else rows.iloc[0]


def result(study, storage_url: str) -> SearchResult:
    frame = trials_frame(study)
    nz = noise(frame)
    return SearchResult(
        study_name=study.study_name,
        storage=mask_url(storage_url),
        config=study.user_attrs.get("config", {}),
        frame=frame,
        board=leaderboard(frame, nz),
        noise=nz,
    )


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------


def export(
    study_name: str,
    storage: str | None = None,
    out: Path | None = None,
    fmt: str | None = None,
    phi_max: int = 7,
) -> Path:
    """Write the chosen coefficients with provenance and the family φ = 0..phi_max."""
    from scaler.scaling import Coefficients, family

    url = storage or default_storage(study_name)
    if fmt is not None:
        _choice("--format", fmt, ("json", "yaml"))
    st = load_study(study_name, url)
    res = result(st, url)
    best = res.best
    if best is None:
        raise ValueError(f"study {study_name!r} has no finished candidate to export")
    cfg = res.config
    budget, phi = float(cfg["budget"]), float(cfg["phi"])
    coeffs = Coefficients.from_multipliers(best["alpha"], best["beta"], best["gamma"], phi)
    base_res = int(cfg["cost_resolution"])
    payload = {
        "scaler_export": 1,
        "coefficients": dataclasses.asdict(coeffs),
        "phi_base": 2.0,
        "base_resolution": base_res,
        "at_budget": {
            "budget": budget,
            "phi": phi,
            "alpha": float(best["alpha"]),
            "beta": float(best["beta"]),
            "gamma": float(best["gamma"]),
            "cost_pixels": int(best["cost_pixels"]),
            "measured_cost": float(best["cost_ratio"]),
            "nominal_cost": float(best["nominal_cost"]),
            "top1_mean": float(best["top1_mean"]),
            "top1_std": float(best["top1_std"] or 0.0),
            "seeds": int(best["seeds"] or 1),
            "trial": int(best["number"]),
        },
        "provenance": {
            "study": study_name,
            "storage": mask_url(url),
            "data": cfg.get("data"),
            "proxy": cfg.get("proxy"),
            "seeds": cfg.get("seeds"),
            "base_seeds": cfg.get("base_seeds"),
            "constraint": cfg.get("constraint"),
            "sampler": cfg.get("sampler"),
            "versions": st.user_attrs.get("versions", {}),
            "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "flops_unit": "fvcore: one multiply-add = one flop",
        "family": [dataclasses.asdict(r) for r in family(coeffs, phi_max, base_res)],
    }
    # Plain Python types only (pandas hands out numpy scalars), so JSON and YAML agree.
    payload = json.loads(json.dumps(payload, default=lambda o: o.item()))
    if out is None:
        out = Path(f"{study_name}.coefficients.{fmt or 'json'}")
    fmt = fmt or ("yaml" if out.suffix.lower() in (".yaml", ".yml") else "json")
    if out.exists() and out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a directory: give a file path")
    if not out.parent.exists():
        raise ValueError(
            f"--out {str(out)!r} is invalid: folder {str(out.parent)!r} does not exist"
        )
    if fmt == "yaml":
        import yaml

        text = yaml.safe_dump(payload, sort_keys=False)
    else:
        text = json.dumps(payload, indent=2) + "\n"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)  # never a half-written export
    return out


def list_studies(storage: str | None = None) -> list[dict[str, Any]]:
    """Studies in a storage (or in every studies/*.db) with their state."""
    import optuna
    from optuna.trial import TrialState

    urls = [storage] if storage else [f"sqlite:///{p}" for p in sorted(STUDIES_DIR.glob("*.db"))]
    rows = []
    for url in urls:
        st = open_storage(url, create=False)
        for s in optuna.get_all_study_summaries(st, include_best_trial=False):
            study = optuna.load_study(study_name=s.study_name, storage=st)
            trials = study.get_trials(deepcopy=False)
            states = {
                state.name.lower(): sum(t.state == state for t in trials) for state in TrialState
            }
            frame = trials_frame(study)
            board = leaderboard(frame)
            best = board[board["best"]]
            cfg = study.user_attrs.get("config", {})
            waiting = states["waiting"] + states["running"]
            rows.append(
                {
                    "study": s.study_name,
                    "storage": mask_url(url),
                    "kind": study.user_attrs.get("kind", "?"),
                    "data": cfg.get("data"),
                    "budget": cfg.get("budget"),
                    "trials": len(trials),
                    "states": {k: v for k, v in states.items() if v},
                    "state": "in progress" if waiting else ("finished" if trials else "empty"),
                    "best_top1": None if best.empty else float(best.iloc[0]["top1_mean"]),
                }
            )
    return rows


# ----------------------------------------------------------------------------------------------
# Python API
# ----------------------------------------------------------------------------------------------


def search(
    budget: str | float = "2x",
    data: str = DEFAULT_DATA,
    proxy: str = "standard",
    *,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
    progress: ProgressFn | None = None,
    **options: Any,
) -> SearchResult:
    """Run or resume a search from Python; ``scaler.search(...)`` calls this.

    ``options`` are :class:`SearchConfig` fields (sampler, trials, seeds, constraint, ...) or
    proxy overrides (epochs, images, batch_size, lr, base_pixels, threads, device, ...)::

        import scaler
        res = scaler.search("2x", proxy="quick")
        res.board[["alpha", "beta", "gamma", "top1_mean", "tied"]]
    """
    from scaler.scaling import parse_budget
    from scaler.train import ProxyConfig

    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    proxy_fields = {f.name for f in dataclasses.fields(ProxyConfig)}
    cfg_kwargs = {k: v for k, v in options.items() if k in fields}
    overrides = {k: v for k, v in options.items() if k in proxy_fields and k not in fields}
    unknown = set(options) - set(cfg_kwargs) - set(overrides)
    if unknown:
        raise ValueError(f"unknown search option(s): {', '.join(sorted(unknown))}")
    value = parse_budget(budget) if isinstance(budget, str) else float(budget)
    cfg = SearchConfig(
        budget=value,
        data=data,
        proxy=proxy,
        proxy_overrides=tuple(sorted(overrides.items())),
        **cfg_kwargs,
    )
    return run(cfg, study, storage, progress=progress, workers=workers)


class _CallableModule(type(os)):
    """Lets ``scaler.search(...)`` be called while ``scaler.search`` stays this module."""

    def __call__(self, *args: Any, **kwargs: Any) -> SearchResult:
        return search(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
