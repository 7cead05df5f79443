"""A search's candidates: a point (α, β) realized under the budget, γ solved in pixels.

:func:`realize_candidate` turns (α, β) into the network a trial trains and its costs
(:class:`Candidate`): in ``measured`` mode the input size whose fvcore FLOPs come closest to the
budget, at the cost pixels and at the proxy's own pixels (:func:`scaler.scaling.solve_pixels`),
and why it is infeasible when it misses; in ``nominal`` mode the paper's γ; in ``latency`` mode
the input size whose measured latency (:mod:`scaler.latency`) comes closest to the budget × the
base's, the proxy at γ × its base pixels. Whatever the constraint, a candidate's latency at the
cost pixels is measured against the base's and recorded beside its FLOPs (``--latency off``:
not measured).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scaler.bases import EFFICIENTNET_B0, Base
from scaler.records import BASE_ROLE
from scaler.search_config import SearchConfig
from scaler.spec import round_pixels, scale

# Pairs at most when a latency is only recorded, not solved for (a search's other constraints).
RECORD_PAIRS = 20


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
    # Measured latency at the cost pixels against the base's (scaler.latency), None when off.
    latency_ratio: float | None = None
    latency_low: float | None = None  # 95 % interval of the ratio
    latency_high: float | None = None
    latency_ms: float | None = None
    base_latency_ms: float | None = None
    latency_pairs: int | None = None
    latency_processes: int | None = None
    latency_mode: str = ""
    latency_device: str = ""
    latency_machine: str = ""

    def attrs(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d


def realize_candidate(
    cfg: SearchConfig,
    role: str,
    alpha: float,
    beta: float,
    num_classes: int,
    max_pixels: int | None,
    timed: bool = True,
) -> Candidate:
    """Turn (α, β) into the network a trial trains, solving γ under the budget (``timed``:
    measure latency; False for a plan's estimate, where the latency constraint takes the FLOPs
    solve). In measured mode the budget holds at the cost pixels (γ, within ``tolerance``) and
    at the proxy's own input size, solved apart (within ``proxy_tolerance``): small inputs make
    the proxy's cost a staircase (maps of side ceil(p / 32)); candidates train at equal compute.
    """
    from scaler.complexity import count

    base_pixels, res, net = cfg.proxy_config().base_pixels, cfg.cost_pixels, cfg.base
    base_cost = count(scale(base_pixels=res, base=net), num_classes).flops
    base_proxy = count(scale(base_pixels=base_pixels, base=net), num_classes).flops
    reason, pixels, lat = "", base_pixels, None
    if role == BASE_ROLE:
        alpha = beta = gamma = gamma_nominal = 1.0
        cost_pixels = res
    else:
        gamma_nominal = math.sqrt(cfg.budget / (alpha * beta**2))
        targets = (cfg.budget * base_cost, cfg.budget * base_proxy)
        point = (alpha, beta, gamma_nominal)
        cost_pixels, pixels, reason, lat = _pixels(cfg, point, targets, num_classes, timed)
        gamma = cost_pixels / res
    cost_spec = scale(alpha, beta, base_pixels=res, pixels=cost_pixels, base=net)
    spec = scale(alpha, beta, base_pixels=base_pixels, pixels=max(8, pixels), base=net)
    if not reason and max_pixels is not None and spec.pixels > max_pixels:
        reason = (
            f"needs {spec.pixels} px but the data serve at most {max_pixels} px (--upsample off)"
        )
    cost = count(spec, num_classes)
    if timed and lat is None and cfg.latency_mode != "off" and not reason:
        lat = _record_latency(cfg, cost_spec, num_classes)  # a record beside the FLOPs
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
        **latency_fields(lat),
    )


def latency_fields(lat) -> dict[str, Any]:
    """A :class:`scaler.latency.Latency` as a candidate's flat fields ({} when not measured)."""
    if lat is None:
        return {}
    return {
        "latency_ratio": lat.ratio,
        "latency_low": lat.low,
        "latency_high": lat.high,
        "latency_ms": lat.seconds * 1e3,
        "base_latency_ms": lat.base_seconds * 1e3,
        "latency_pairs": lat.pairs,
        "latency_processes": lat.processes,
        "latency_mode": lat.mode,
        "latency_device": lat.device,
        "latency_machine": lat.machine,
    }


def _record_latency(cfg: SearchConfig, cost_spec, num_classes: int):
    """The candidate's latency beside its FLOPs: a shorter measurement, recorded as it settled."""
    from scaler.latency import compare

    settings = cfg.latency_settings(num_classes)
    # One process: a record beside FLOPs, not a budget (a pool would start with every search).
    settings = dataclasses.replace(
        settings, max_pairs=min(settings.max_pairs, RECORD_PAIRS), processes=1
    )
    return compare(cost_spec, scale(base_pixels=cfg.cost_pixels, base=cfg.base), settings)


def check_latency(cfg: SearchConfig, num_classes: int):
    """The base against itself, once: an :class:`~scaler.latency.UnsettledError` (one line) when
    this machine cannot time it within the bound, before a latency search creates anything."""
    from scaler.latency import compare, settled

    settings = cfg.latency_settings(num_classes)
    base_spec = scale(base_pixels=cfg.cost_pixels, base=cfg.base)
    return settled(compare(base_spec, base_spec, settings), settings, cfg.base.name)


def _latency_pixels(cfg: SearchConfig, alpha: float, beta: float, start: int, num_classes: int):
    """(cost pixels, Latency, why infeasible or "") under ``--constraint latency``."""
    from scaler.latency import compare, solve_latency_pixels
    from scaler.spec import MAX_PIXELS, MIN_PIXELS

    settings = cfg.latency_settings(num_classes)
    base_spec = scale(base_pixels=cfg.cost_pixels, base=cfg.base)

    def measure(px: int):
        spec = scale(alpha, beta, base_pixels=cfg.cost_pixels, pixels=px, base=cfg.base)
        return compare(spec, base_spec, settings)

    sol = solve_latency_pixels(measure, start, cfg.budget, cfg.tolerance, (MIN_PIXELS, MAX_PIXELS))
    lat, reason = sol.latency, ""
    if not lat.settled:
        reason = (
            f"its latency did not settle ({lat.why_unsettled(settings)}; --latency {settings.mode})"
        )
    elif abs(sol.error) > cfg.tolerance:
        reason = (
            f"the closest input size, {sol.pixels} px, misses the latency budget by "
            f"{sol.error:+.1%} (--tolerance ±{cfg.tolerance:.0%})"
        )
    return sol.pixels, lat, reason


def _pixels(
    cfg: SearchConfig,
    point: tuple[float, float, float],
    targets: tuple[float, float],
    num_classes: int,
    timed: bool,
) -> tuple[int, int, str, Any]:
    """(cost pixels, proxy pixels, why infeasible or "", Latency or None) of a candidate that is
    not the base, at ``point`` = (α, β, nominal γ).

    ``targets``: the budget's FLOPs at the cost pixels and at the proxy's base pixels.
    """
    alpha, beta, gamma_nominal = point
    base_pixels, res = cfg.proxy_config().base_pixels, cfg.cost_pixels
    lat = None

    def solve(target: float, px: int, where: str, limit: str) -> tuple[int, str]:
        return _solve(alpha, beta, target, px, num_classes, where, limit, cfg.base)

    if cfg.constraint == "measured":
        cost_pixels, reason = solve(targets[0], res, "", f"--tolerance {cfg.tolerance}")
        pixels, proxy_reason = solve(
            targets[1],
            base_pixels,
            "at the proxy's input size, ",
            f"--proxy-tolerance {cfg.proxy_limit or math.inf}",
        )
        reason = reason or proxy_reason
    elif cfg.constraint == "latency":  # from the FLOPs solve, then by time when timed
        from scaler.scaling import solve_pixels

        sol = solve_pixels(alpha, beta, targets[0], res, num_classes, base=cfg.base)
        cost_pixels, reason = sol.spec.pixels, ""
        if timed:
            cost_pixels, lat, reason = _latency_pixels(cfg, alpha, beta, cost_pixels, num_classes)
        pixels = round_pixels(cost_pixels / res, base_pixels)
    else:
        cost_pixels, reason = round_pixels(gamma_nominal, res), ""
        pixels = round_pixels(cost_pixels / res, base_pixels)
    gamma = cost_pixels / res
    if (cfg.budget > 1 and gamma < 1) or (cfg.budget < 1 and gamma > 1):
        side = "< 1" if cfg.budget > 1 else "> 1"
        # The more basic reason wins: depth and width alone already spend the budget.
        reason = f"needs γ {side} (γ = {gamma:.3f}): depth and width alone exceed the budget"
    return cost_pixels, pixels, reason, lat


def _solve(
    alpha: float,
    beta: float,
    target: float,
    base_pixels: int,
    num_classes: int,
    where: str,
    limit: str,
    base: Base = EFFICIENTNET_B0,
) -> tuple[int, str]:
    """The input size whose measured cost is closest to ``target``, and why it misses, if so.

    ``limit`` is "OPTION TOLERANCE", e.g. "--tolerance 0.05"; ``where`` prefixes the reason.
    """
    from scaler.scaling import solve_pixels

    sol = solve_pixels(alpha, beta, target, base_pixels, num_classes, base=base)
    option, tolerance = limit.split()
    if abs(sol.error) <= float(tolerance):
        return sol.spec.pixels, ""
    return sol.spec.pixels, (
        f"{where}the closest input size, {sol.spec.pixels} px, misses the budget by "
        f"{sol.error:+.1%} ({option} ±{float(tolerance):.0%})"
    )
