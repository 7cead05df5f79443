"""A search's configuration: its options, their checks and defaults, and the grid of (α, β).

:class:`SearchConfig` is everything that defines a search (stored with the study and compared on
resume); the grid lists its points in training order, farthest first from the paper's point.
How a point becomes a network under the budget is :mod:`scaler.candidates`; running the study is
:mod:`scaler.searches`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scaler import bases
from scaler.base_check import MODES as BASE_CHECKS
from scaler.bases import EFFICIENTNET_B0, Base
from scaler.data import DEFAULT_DATA
from scaler.proxy import ProxyConfig, resolve_proxy
from scaler.records import METRICS
from scaler.spec import B0_RESOLUTION, MIN_PIXELS, check_pixels, round_pixels

SAMPLERS = ("grid", "tpe", "random")
CONSTRAINTS = ("measured", "nominal", "latency")
# Where --latency takes its default: tests and quiet batch jobs turn the record off with it.
LATENCY_ENV = "SCALER_LATENCY"
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
    # --upsample: bilinear | bicubic | off; None: an existing study's own, else bilinear
    upsample: str | None = None
    proxy: str = "standard"  # proxy preset: quick | standard | long
    proxy_overrides: tuple[tuple[str, Any], ...] = ()  # (field, value) pairs on top of the preset
    sampler: str = "grid"  # grid (paper-style), tpe or random
    trials: int | None = (
        None  # cap on candidate trials; None = the whole grid, or 12 for tpe/random
    )
    seeds: int = 1  # proxy runs per candidate; the objective is their mean top-1
    base_seeds: int = 2  # runs of the unscaled base: >= 2, they measure the noise floor
    constraint: str = "measured"  # measured (fvcore, default), nominal (formula) or latency
    # What a latency times (scaler.latency: batch1, batch<N>, train-step) or off (not measured);
    # None: $SCALER_LATENCY, else batch1. Recorded for every candidate; the budget under latency.
    latency: str | None = None
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
    confirm_seeds: int | str | None = None  # paired runs of each, or "auto" (None: auto, raced)
    confirm_max_seeds: int | None = None  # a race's cap of seeds per network (None: 8)
    base: Base = EFFICIENTNET_B0  # the network scaled (--base); stored when not B0
    # What ranks the candidates, picks the confirmed ones and the export: top1, or balanced
    # (mean per-class recall on val) when the classes are imbalanced.
    metric: str = "top1"
    # What a base that has not learned does to the search (scaler.base_check): stop before its
    # candidates train, or off: train them anyway. Resumable: off resumes a stopped one. None:
    # stop, except for the quick preset, a smoke run whose accuracies are no evidence (off).
    base_check: str | None = None

    # -- derived ------------------------------------------------------------------------------
    @property
    def proxy_limit(self) -> float | None:
        """The proxy tolerance in force: ``proxy_tolerance``, its default, or None (quick)."""
        if self.proxy_tolerance is not None:
            return self.proxy_tolerance
        return None if self.proxy in QUICK_TRIALS else DEFAULT_PROXY_TOLERANCE

    @property
    def check(self) -> str:
        """The base check in force: ``base_check``, or its default (off for quick, else stop)."""
        if self.base_check is not None:
            return self.base_check
        return "off" if self.proxy in QUICK_TRIALS else "stop"

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

        paper = paper_at(self.budget)
        taken, rest = [paper], [p for p in points if not same_point(p, paper)]
        while rest:
            nxt = max(rest, key=lambda p: (min(dist(p, q) for q in taken), -p[0], -p[1]))
            taken.append(nxt)
            rest.remove(nxt)
        on_grid = any(same_point(p, paper) for p in points)
        return taken if on_grid else taken[1:]

    @property
    def latency_mode(self) -> str:
        """--latency as given, or its default; normalized (batchN → batch16)."""
        import os

        raw = self.latency or os.environ.get(LATENCY_ENV) or "batch1"
        if raw.strip().lower() == "off":
            # The default turned off only drops a record; a latency budget still needs one.
            given = self.latency is not None
            return "off" if given or self.constraint != "latency" else "batch1"
        from scaler.latency import parse_mode

        return parse_mode(raw)

    def latency_settings(self, num_classes: int):
        """How this search measures latency: its mode on the proxy's device and threads."""
        from scaler.latency import LatencySettings

        p = self.proxy_config()
        return LatencySettings(
            mode=self.latency_mode,
            device=p.device,
            threads=p.threads,
            channels_last=p.channels_last,
            num_classes=num_classes,
        )

    def proxy_config(self) -> ProxyConfig:
        return resolve_proxy(self.proxy, self.proxy_overrides)

    def candidate_cap(self) -> int:
        if self.trials is not None:
            return self.trials
        if self.proxy in QUICK_TRIALS:
            return QUICK_TRIALS[self.proxy]
        if self.sampler == "grid":  # the grid, plus the paper's point when it lies off the grid
            paper = paper_at(self.budget)
            return len(self.grid()) + (not any(same_point(paper, p) for p in self.grid()))
        return 12

    def validate(self) -> SearchConfig:
        """Raise ValueError (one line, naming the option) on any invalid setting."""
        if not (math.isfinite(self.budget) and self.budget > 0 and self.budget != 1):
            raise ValueError(f"--budget {self.budget} is invalid: it must be > 0 and not 1x")
        _choice("--sampler", self.sampler, SAMPLERS)
        _choice("--constraint", self.constraint, CONSTRAINTS)
        _choice("--pruner", self.pruner, PRUNERS)
        if self.latency_mode == "off" and self.constraint == "latency":
            raise ValueError(
                "--latency off is invalid with --constraint latency: it needs what to time "
                "(batch1, batchN, train-step)"
            )
        _choice("--metric", self.metric, METRICS)
        if self.base_check is not None:
            _choice("--base-check", self.base_check, BASE_CHECKS)
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

        return ConfirmConfig(
            top=self.confirm_top,
            seeds=self.confirm_seeds,
            max_seeds=self.confirm_max_seeds,
            prefix="--confirm-",
        )

    def _check_proxy(self) -> None:
        """The proxy settings, its device, and a budget the proxy's base can shrink to."""
        from scaler.device import check_device

        settings = self.proxy_config()  # raises on unknown presets / invalid overrides
        check_device(settings.device)
        smallest = round_pixels(math.sqrt(self.budget), settings.base_pixels)
        if self.budget < 1 and smallest < MIN_PIXELS:
            floor = (MIN_PIXELS / settings.base_pixels) ** 2
            raise ValueError(
                f"--budget {self.budget:g}x is invalid: it shrinks the base to {smallest} px at "
                f"the proxy's {settings.base_pixels} px base, below the smallest input of "
                f"{MIN_PIXELS} px (smallest budget here: {floor:.3g}x)"
            )

    def _latency_budget(self) -> dict[str, str]:
        """What a latency budget is measured with: the mode and the machine (it resumes there)."""
        from scaler.device import select_device
        from scaler.latency import machine_name

        machine = machine_name(select_device(self.proxy_config().device))
        return {"latency": self.latency_mode, "latency_machine": machine}

    def stored(self) -> dict[str, Any]:
        """The configuration as stored in the study (JSON-safe)."""
        settings = dataclasses.asdict(self.proxy_config())
        (a, b), (sa, sb) = self.ranges(), self.steps()
        return {
            "budget": self.budget,
            "phi": self.phi,
            "data": self.data,
            "proxy_preset": self.proxy,
            "proxy": settings,
            "sampler": self.sampler,
            "trials": self.trials,
            "seeds": self.seeds,
            "base_seeds": self.base_seeds,
            "constraint": self.constraint,
            # Under the latency constraint what is timed defines the candidates; otherwise it
            # is only a record, and a study resumes under another (studies.RESUMABLE).
            **(self._latency_budget() if self.constraint == "latency" else {}),
            "latency_record": self.latency_mode,
            "tolerance": self.tolerance,
            "proxy_tolerance": self.proxy_limit,
            "cost_pixels": self.cost_pixels,
            "base_pixels": settings["base_pixels"],
            "alpha_range": list(a),
            "beta_range": list(b),
            "alpha_step": sa,
            "beta_step": sb,
            "pruner": self.pruner,
            "sampler_seed": self.sampler_seed,
            "metric": self.metric,
            "base_check": self.check,
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
        valid = "it must be between 0% and 100%"
        if not raw.endswith("%") and 1 <= value < 100:
            # A bare number is a fraction: "5" reads as 500 %, most likely meant as 5 %.
            valid = f"{raw} means {value * 100:g} %; {valid} (did you mean {raw}%?)"
        raise ValueError(f"{option} {text!r} is invalid: {valid}")
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


def paper_at(budget: float) -> tuple[float, float]:
    """The paper's (α, β) = (1.2, 1.1) per unit φ, at the budget's φ."""
    phi = math.log2(budget)
    return (round(PAPER_POINT[0] ** phi, 6), round(PAPER_POINT[1] ** phi, 6))


def same_point(p: tuple[float, float], q: tuple[float, float]) -> bool:
    return abs(p[0] - q[0]) < 1e-6 and abs(p[1] - q[1]) < 1e-6
