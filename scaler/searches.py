"""A search: α, β (and the γ they leave) under a measured-FLOPs budget, as an optuna study.

Step 1 of the paper, made reproducible: fix the budget B (φ = log2 B), search α and β, derive γ
so the candidate costs B × the base, train each candidate on a short proxy run, keep the best.

How a study runs (every decision has its reason here):

- **The constraint removes a degree of freedom.** α and β are sampled; γ follows from the
  budget. In ``measured`` mode (default) γ is the integer input size whose fvcore FLOPs of the
  real, rounded network come closest to B × the base's (:func:`scaler.scaling.solve_pixels`); a
  candidate that misses by more than the tolerance, or would need γ < 1 (γ > 1 under 1×), is
  recorded as *infeasible* (a pruned trial with the reason) and never trained. ``nominal`` mode
  uses the paper's γ = sqrt(B / (α·β²)) and records the measured cost beside it.
- **Cost pixels.** The budget is measured at ``cost_pixels`` (224 px: the network as it
  would be deployed) and the proxy trains the same network at the same γ applied to the proxy's
  smaller base size. Measuring at the proxy size itself (set ``cost_pixels`` to the proxy's
  base pixels) is allowed, but at 32–64 px FLOPs jump 1.7–2.4× whenever the input crosses a
  multiple of 32 px (the last feature map grows from 1×1 to 2×2), so almost no (α, β) can hit
  a budget within 5 % there. Both cost ratios are recorded for every trial.
- **Every point is a queued trial.** The base (1×, trained ``base_seeds`` ≥ 2 times: the noise
  floor), the paper's (α, β) = (1.2, 1.1) and, with the grid sampler, every grid point are
  queued; TPE and random samplers propose the rest. Claiming, dedupe of identical networks,
  heartbeats and resume are the runner's (:mod:`scaler.runner`), shared with sweeps; the
  study's storage and stored configuration are :mod:`scaler.studies`'.

- **The base** (``--base``, :mod:`scaler.bases`) is part of the configuration: every candidate
  scales it, and a base other than EfficientNet-B0 is stored (and named in the study's default
  name); a study that stores none is a search of EfficientNet-B0.

This module holds what is particular to a search: its configuration and grid, how (α, β)
becomes a candidate network, its result, the export and the Python API :func:`search`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaler import bases, confirm
from scaler.bases import EFFICIENTNET_B0, Base
from scaler.data import DEFAULT_DATA
from scaler.findings_confirm import summarize
from scaler.proxy import ProxyConfig, resolve_proxy
from scaler.records import CANDIDATE_ROLES, Status, TrialRecord, point_id, write
from scaler.results import Noise, finished, leaderboard, noise, trials_frame
from scaler.runner import (
    Job,
    ProgressFn,
    QueuedPoint,
    Trainer,
    ensure_queue,
    run_study,
    work_queue,
)
from scaler.spec import B0_RESOLUTION, MIN_PIXELS, check_pixels, round_pixels, scale
from scaler.studies import (
    StudySpec,
    default_name,
    default_storage,
    load_study,
    mask_url,
    open_storage,
    open_study,
    proxy_json,
    resolve_target,
    stored_config,
    study_names,
)

SAMPLERS = ("grid", "tpe", "random")
CONSTRAINTS = ("measured", "nominal")
PRUNERS = ("none", "median", "hyperband")
PAPER_POINT = (1.2, 1.1)
# A quick search is a smoke run: the paper's point and the grid point farthest from it.
QUICK_TRIALS = {"quick": 2}
DEFAULT_PROXY_TOLERANCE = 0.10


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
    cost_pixels: int = B0_RESOLUTION  # input size of the base where the budget is measured
    alpha_range: tuple[float, float] | None = None  # default: [1, 1.4^φ] (or [1.4^φ, 1] under 1×)
    beta_range: tuple[float, float] | None = None  # default: [1, 1.2^φ] (or [1.2^φ, 1] under 1×)
    alpha_step: float | None = None  # default: half of the alpha range (3 grid values)
    beta_step: float | None = None  # default: half of the beta range (3 grid values)
    pruner: str = "none"  # none | median | hyperband, fed by the proxy's per-epoch accuracy
    sampler_seed: int = 0  # seed of the TPE/random sampler
    # Largest relative miss of the budget at the proxy's own input size (measured mode): the
    # candidates of one search train with equal compute, within this. None: 10 %, except for
    # the quick preset, a smoke run at 32 px where no check is made (its costs are recorded).
    proxy_tolerance: float | None = None
    # The confirmation stage (scaler.confirm) after the search; not part of the stored config.
    confirm: bool = True  # off for a search alone (scaler confirm STUDY runs it later)
    confirm_top: int | None = None  # networks confirmed, best first (None: confirm's default)
    confirm_seeds: int | None = None  # paired runs of each (None: confirm's default)
    base: Base = EFFICIENTNET_B0  # the network scaled (--base); stored when not B0

    # -- derived ------------------------------------------------------------------------------
    @property
    def proxy_limit(self) -> float | None:
        """The proxy tolerance in force: ``proxy_tolerance``, its default, or None (quick)."""
        if self.proxy_tolerance is not None:
            return self.proxy_tolerance
        return None if self.proxy in QUICK_TRIALS else DEFAULT_PROXY_TOLERANCE

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

    def proxy_config(self) -> ProxyConfig:
        return resolve_proxy(self.proxy, self.proxy_overrides)

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
        if self.proxy_tolerance is not None and not 0 < self.proxy_tolerance < 1:
            raise ValueError(
                f"--proxy-tolerance {self.proxy_tolerance} is invalid: it must be in (0, 1)"
            )
        check_pixels(self.cost_pixels, "--cost-pixels")
        for name, rng, step in (
            ("--alpha-range", self.alpha_range, self.alpha_step),
            ("--beta-range", self.beta_range, self.beta_step),
        ):
            _check_range(name, rng, step, up=self.budget > 1)
        if self.sampler == "grid" and len(self.grid()) > 400:
            raise ValueError(
                "the grid has more than 400 points: use a larger --alpha-step/--beta-step"
            )
        self._check_proxy()
        self.confirm_config().check()
        return self

    def confirm_config(self):
        from scaler.confirm import ConfirmConfig

        return ConfirmConfig(top=self.confirm_top, seeds=self.confirm_seeds, prefix="--confirm-")

    def _check_proxy(self) -> None:
        """The proxy settings, its device, and a budget the proxy's base can shrink to."""
        from scaler.device import check_device

        proxy = self.proxy_config()  # raises on unknown presets / invalid overrides
        check_device(proxy.device)
        smallest = round_pixels(math.sqrt(self.budget), proxy.base_pixels)
        if self.budget < 1 and smallest < MIN_PIXELS:
            floor = (MIN_PIXELS / proxy.base_pixels) ** 2
            raise ValueError(
                f"--budget {self.budget:g}x is invalid: it shrinks the base to {smallest} px at "
                f"the proxy's {proxy.base_pixels} px base, below the smallest input of "
                f"{MIN_PIXELS} px (smallest budget here: {floor:.3g}x)"
            )

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
            "proxy_tolerance": self.proxy_limit,
            "cost_pixels": self.cost_pixels,
            "base_pixels": proxy["base_pixels"],
            "alpha_range": list(a),
            "beta_range": list(b),
            "alpha_step": sa,
            "beta_step": sb,
            "pruner": self.pruner,
            "sampler_seed": self.sampler_seed,
            **bases.stored(self.base),
        }


def parse_tolerance(text: str | float, option: str = "--tolerance") -> float:
    """A tolerance as a fraction: "5%" → 0.05, "0.05" → 0.05."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is invalid: give a percentage like 5% or a fraction like 0.05"
        ) from None
    if not 0 < value < 1:
        raise ValueError(f"{option} {text!r} is invalid: it must be between 0% and 100%")
    return value


def parse_range(option: str, text: str | None) -> tuple[float, float] | None:
    """``MIN:MAX`` → (min, max); None stays None (the default range)."""
    if text is None:
        return None
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise ValueError(f"{option} {text!r} is invalid: use MIN:MAX, e.g. 1.0:1.4") from None
    return lo, hi


def _check_range(name: str, rng: tuple[float, float] | None, step: float | None, up: bool) -> None:
    """A coefficient's range and step: finite, ordered, >= 1 above 1x, in (0, 1] under it."""
    if rng is not None:
        lo, hi = rng
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{name} {lo}:{hi} is invalid: use finite numbers")
        if lo > hi:
            raise ValueError(f"{name} {lo}:{hi} is invalid: its minimum exceeds its maximum")
        if up and lo < 1:
            raise ValueError(f"{name} {lo}:{hi} is invalid: above 1x the coefficients must be >= 1")
        if not up and (hi > 1 or lo <= 0):
            raise ValueError(
                f"{name} {lo}:{hi} is invalid: under 1x the coefficients must be in (0, 1]"
            )
    if step is not None and not step > 0:
        raise ValueError(f"{name.replace('range', 'step')} {step} is invalid: it must be > 0")


def _values(lo: float, hi: float, step: float) -> list[float]:
    n = int(math.floor((hi - lo) / step + 1e-9))
    return [round(lo + i * step, 6) for i in range(n + 1)]


def _choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{option} {value!r} is invalid: valid values are {', '.join(valid)}")


# ----------------------------------------------------------------------------------------------
# candidates
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A point (α, β) realized under the budget: the network to train and its costs."""

    role: str
    alpha: float
    beta: float
    gamma: float  # effective: cost pixels ÷ the base's
    gamma_nominal: float  # sqrt(budget / (α·β²))
    cost_pixels: int  # input size where the budget is measured
    pixels: int  # input size of the proxy run
    nominal_cost: float  # α·β²·γ_nominal² is the budget by construction; α·β²·γ² here
    cost_ratio: float  # fvcore FLOPs ÷ base FLOPs at the cost pixels
    proxy_cost_ratio: float  # the same at the proxy's resolution
    flops: int  # fvcore FLOPs of the proxy network (its head has the data's classes)
    cost_flops: int  # the same network's fvcore FLOPs at the cost pixels
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
    """Turn (α, β) into the network a trial trains, solving γ under the budget.

    In measured mode the budget holds at the cost pixels (γ, within ``tolerance``) and at the
    proxy's own input size, solved apart (within ``proxy_tolerance``): small inputs make the
    proxy's cost a staircase (maps of side ceil(p / 32)), and candidates train with equal compute.
    """
    from scaler.complexity import count

    base_px = cfg.proxy_config().base_pixels
    res = cfg.cost_pixels
    net = cfg.base
    base_cost = count(scale(base_pixels=res, base=net), num_classes).flops
    base_proxy = count(scale(base_pixels=base_px, base=net), num_classes).flops
    reason, pixels = "", base_px
    if role == "base":
        alpha = beta = gamma = gamma_nominal = 1.0
        cost_pixels = res
    else:
        gamma_nominal = math.sqrt(cfg.budget / (alpha * beta**2))
        targets = (cfg.budget * base_cost, cfg.budget * base_proxy)
        cost_pixels, pixels, reason = _pixels(cfg, alpha, beta, gamma_nominal, targets, num_classes)
        gamma = cost_pixels / res
    cost_spec = scale(alpha, beta, base_pixels=res, pixels=cost_pixels, base=net)
    spec = scale(alpha, beta, base_pixels=base_px, pixels=max(8, pixels), base=net)
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
        cost_ratio=(at_cost := count(cost_spec, num_classes).flops) / base_cost,
        proxy_cost_ratio=cost.flops / base_proxy,
        flops=cost.flops,
        cost_flops=at_cost,
        params=cost.params,
        activations=cost.activations,
        layers=spec.layers,
        channels=tuple(s.channels for s in spec.stages),
        network_key=spec.key_str,
        infeasible=reason,
    )


def _pixels(
    cfg: SearchConfig,
    alpha: float,
    beta: float,
    gamma_nominal: float,
    targets: tuple[float, float],
    num_classes: int,
) -> tuple[int, int, str]:
    """(cost pixels, proxy pixels, why infeasible or "") of a candidate that is not the base.

    ``targets``: the budget's FLOPs at the cost pixels and at the proxy's base pixels.
    """
    base_px, res = cfg.proxy_config().base_pixels, cfg.cost_pixels

    def solve(target: float, px: int, where: str, limit: str) -> tuple[int, str]:
        return _solve(alpha, beta, target, px, num_classes, where, limit, cfg.base)

    if cfg.constraint == "measured":
        cost_pixels, reason = solve(targets[0], res, "", f"--tolerance {cfg.tolerance}")
        pixels, proxy_reason = solve(
            targets[1],
            base_px,
            "at the proxy's input size, ",
            f"--proxy-tolerance {cfg.proxy_limit or math.inf}",
        )
        reason = reason or proxy_reason
    else:
        cost_pixels, reason = round_pixels(gamma_nominal, res), ""
        pixels = round_pixels(cost_pixels / res, base_px)
    gamma = cost_pixels / res
    if (cfg.budget > 1 and gamma < 1) or (cfg.budget < 1 and gamma > 1):
        side = "< 1" if cfg.budget > 1 else "> 1"
        # The more basic reason wins: depth and width alone already spend the budget.
        reason = f"needs γ {side} (γ = {gamma:.3f}): depth and width alone exceed the budget"
    return cost_pixels, pixels, reason


def _solve(
    alpha: float,
    beta: float,
    target: float,
    base_px: int,
    num_classes: int,
    where: str,
    limit: str,
    base: Base = EFFICIENTNET_B0,
) -> tuple[int, str]:
    """The input size whose measured cost is closest to ``target``, and why it misses, if so.

    ``limit`` is "OPTION TOLERANCE", e.g. "--tolerance 0.05"; ``where`` prefixes the reason.
    """
    from scaler.scaling import solve_pixels

    sol = solve_pixels(alpha, beta, target, base_px, num_classes, base=base)
    option, tolerance = limit.split()
    if abs(sol.error) <= float(tolerance):
        return sol.spec.pixels, ""
    return sol.spec.pixels, (
        f"{where}the closest input size, {sol.spec.pixels} px, misses the budget by "
        f"{sol.error:+.1%} ({option} ±{float(tolerance):.0%})"
    )


# ----------------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------------


def queued_points(cfg: SearchConfig) -> list[QueuedPoint]:
    """The queued points of a study: base, the paper's point, and the grid."""
    points: list[tuple[str, float, float]] = [("base", 1.0, 1.0)]
    paper = _paper_at(cfg.budget)
    points.append(("paper", *paper))
    if cfg.sampler == "grid":
        grid = [p for p in cfg.grid() if not _close(p, paper)]
        grid = grid[: max(0, cfg.candidate_cap() - 1)]
        points += [("grid", a, b) for a, b in grid]
    return [
        QueuedPoint(
            id=point_id(role, a, b),
            params={"alpha": a, "beta": b},
            attrs={"role": role, "alpha": a, "beta": b},
        )
        for role, a, b in points
    ]


def _paper_at(budget: float) -> tuple[float, float]:
    """The paper's (α, β) = (1.2, 1.1) per unit φ, at the budget's φ."""
    phi = math.log2(budget)
    return (round(PAPER_POINT[0] ** phi, 6), round(PAPER_POINT[1] ** phi, 6))


def _close(p: tuple[float, float], q: tuple[float, float]) -> bool:
    return abs(p[0] - q[0]) < 1e-6 and abs(p[1] - q[1]) < 1e-6


class Describe:
    """Turns a claimed trial into the candidate it trains: realize (α, β) under the budget."""

    def __init__(self, cfg: SearchConfig, source):
        self.cfg = cfg
        self.source = source
        self.proxy = cfg.proxy_config()

    def __call__(self, trial) -> Job:
        import optuna

        if confirm.is_confirmation(trial):
            return confirm.describe(trial)
        cfg = self.cfg
        role = trial.user_attrs.get("role", "sampled")
        (a0, a1), (b0, b1) = cfg.ranges()
        if role == "sampled":
            write(trial, role=role)
            sa, sb = cfg.steps()
            alpha = trial.suggest_float("alpha", a0, a1, step=sa)
            beta = trial.suggest_float("beta", b0, b1, step=sb)
        else:
            # Queued points (base, paper, grid) may lie off the sampler's range or step.
            alpha, beta = trial.user_attrs["alpha"], trial.user_attrs["beta"]
            trial.suggest_float("alpha", min(a0, alpha), max(a1, alpha))
            trial.suggest_float("beta", min(b0, beta), max(b1, beta))
        cand = realize(cfg, role, alpha, beta, self.source.num_classes, self.source.max_pixels)
        write(trial, **cand.attrs())
        if cand.infeasible:
            write(trial, status=Status.INFEASIBLE, reason=cand.infeasible)
            raise optuna.TrialPruned(f"infeasible: {cand.infeasible}")
        spec = scale(
            alpha, beta, base_pixels=self.proxy.base_pixels, pixels=cand.pixels, base=cfg.base
        )
        base = role == "base"
        return Job(
            spec=spec,
            seeds=cfg.base_seeds if base else cfg.seeds,
            prune=cfg.pruner != "none" and not base,
            info=cand.attrs(),
        )


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
    hashed = f"{fingerprint}|{proxy_json(cfg.proxy_config())}"
    stored = bases.stored(cfg.base)
    if stored:  # B0 keeps the names it had before bases existed
        hashed += "|" + json.dumps(stored, sort_keys=True)
    named = "" if not stored else f"{cfg.base.name}-"
    return default_name("search", cfg.data, f"{named}{cfg.budget:g}x-{cfg.proxy}", hashed)


@dataclass(frozen=True)
class Prepared:
    """A validated search, ready to run: nothing has been written yet."""

    cfg: SearchConfig
    source: Any
    study_name: str
    storage_url: str


def prepare(cfg: SearchConfig, study: str | None = None, storage: str | None = None) -> Prepared:
    """Validate everything a search needs before any study is created or changed."""
    cfg.validate()
    source, name, url = resolve_target(cfg, study, storage, default_study_name)
    prepared = Prepared(cfg, source, name, url)
    # Connect and compare with an existing study now, before any progress display starts.
    if name in study_names(open_storage(url)):
        create(prepared)
    return prepared


def trial_bytes(p: Prepared) -> int:
    """GPU memory one trial of this search may take: the budget's share over the base's run."""
    from scaler.complexity import train_memory

    proxy = p.cfg.proxy_config()
    base = scale(base_pixels=proxy.base_pixels, base=p.cfg.base)
    run = train_memory(base, proxy.batch_size, p.source.num_classes)
    return int(run * max(1.0, p.cfg.budget))


def create(p: Prepared):
    """Create the study (its points queued once), or load it and refuse a changed config."""
    stored = p.cfg.stored()
    stored["data_fingerprint"] = p.source.fingerprint()
    spec = StudySpec(
        name=p.study_name,
        storage_url=p.storage_url,
        kind="search",
        config=stored,
        sampler=lambda: _make_sampler(p.cfg),
        pruner=lambda: _make_pruner(p.cfg),
    )
    return open_study(spec, on_create=lambda st: ensure_queue(st, queued_points(p.cfg)))


def count_candidates(study) -> int:
    """Candidate trials that used up a slot of the --trials cap."""
    n = 0
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if rec.role in CANDIDATE_ROLES and (t.state.name != "FAIL" or rec.status == Status.FAILED):
            n += rec.status != Status.DUPLICATE  # a lost trial runs again: not counted
    return n


def count_finished_candidates(study) -> int:
    """Candidates of ``study`` with a result (trained or reused)."""
    frame = trials_frame(study)
    return int(finished(frame)["role"].isin(CANDIDATE_ROLES).sum()) if len(frame) else 0


def work(p: Prepared, progress: ProgressFn | None = None) -> None:
    """Work on the study until no queued point is left (and the cap is reached), then on its
    confirmation stage."""
    study = create(p)
    trainer = Trainer(Describe(p.cfg, p.source), p.source, p.cfg.proxy_config(), progress)
    cap = p.cfg.candidate_cap()

    def sampled_left() -> int:
        return 0 if p.cfg.sampler == "grid" else max(0, cap - count_candidates(study))

    work_queue(study, lambda: queued_points(p.cfg), trainer, sampled_left)
    if p.cfg.confirm and count_finished_candidates(study):
        # Without a finished candidate there is nothing to confirm; the summary says so.
        plan = confirm.plan(study, p.cfg.confirm_config(), p.source)
        confirm.stage(study, plan, trainer, lambda: queued_points(p.cfg))


def run(
    cfg: SearchConfig,
    study: str | None = None,
    storage: str | None = None,
    progress: ProgressFn | None = None,
    workers: int = 1,
) -> SearchResult:
    """Run (or resume) a search; the Python entry point behind ``scaler search``."""
    return run_study(sys.modules[__name__], prepare(cfg, study, storage), progress, workers)


@dataclass(frozen=True)
class SearchResult:
    """What a search leaves: where it is stored and its trials."""

    study_name: str
    storage: str  # masked
    config: dict[str, Any]
    frame: Any  # pandas DataFrame, one row per trial
    board: Any  # leaderboard DataFrame
    noise: Noise
    confirmation: Any = None  # scaler.findings_confirm.Confirmation

    @property
    def chosen(self):
        """The chosen candidate's search row: the confirmation's when it has one, else best."""
        c = self.confirmation
        if c is not None and c.chosen is not None:
            return self.frame.set_index("number", drop=False).loc[c.chosen.trial]
        return self.best

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
        config=stored_config(study),
        frame=frame,
        board=leaderboard(frame, nz),
        noise=nz,
        confirmation=summarize(frame, study.user_attrs, stored_config(study)),
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
    base: Base | None = None,
) -> Path:
    """Write the chosen coefficients with provenance and the family φ = 0..phi_max
    (:func:`scaler.exports.write_study`: the schema, the file's name and its format)."""
    from scaler import exports

    exports.check_format(fmt)
    st = load_study(study_name, storage)
    res = result(st, storage or default_storage(study_name))
    return exports.write_study(res, st.user_attrs.get("versions", {}), out, fmt, phi_max, base)


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
    """Run or resume a search from Python (``scaler.search(...)``).

    ``options`` are :class:`SearchConfig` fields (sampler, trials, seeds, constraint, ...) or
    proxy overrides (epochs, images, batch_size, lr, base_pixels, threads, device, ...)::

        import scaler
        res = scaler.search("2x", proxy="quick")
        res.board[["alpha", "beta", "gamma", "top1_mean", "possibly_best"]]
    """
    from scaler.scaling import parse_budget

    if "cost_resolution" in options:  # its name in 0.1
        raise TypeError("search(cost_resolution=...) was removed in 0.6: use cost_pixels=...")
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    proxy_fields = {f.name for f in dataclasses.fields(ProxyConfig)}
    cfg_kwargs = {k: v for k, v in options.items() if k in fields}
    overrides = {k: v for k, v in options.items() if k in proxy_fields and k not in fields}
    unknown = set(options) - set(cfg_kwargs) - set(overrides)
    if unknown:
        raise ValueError(f"unknown search option(s): {', '.join(sorted(unknown))}")
    value = parse_budget(budget) if isinstance(budget, str) else float(budget)
    if "base" in cfg_kwargs:  # a name or a stage-table file, as --base takes
        cfg_kwargs["base"] = bases.get_base(cfg_kwargs["base"], "base")
    cfg = SearchConfig(
        budget=value,
        data=data,
        proxy=proxy,
        proxy_overrides=tuple(sorted(overrides.items())),
        **cfg_kwargs,
    )
    return run(cfg, study, storage, progress=progress, workers=workers)
