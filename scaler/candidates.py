"""A search's candidates: a point (α, β) realized under the budget, γ solved in pixels.

:func:`realize_candidate` turns (α, β) into the network a trial trains and its costs
(:class:`Candidate`): in ``measured`` mode the input size whose fvcore FLOPs come closest to the
budget, at the cost pixels and at the proxy's own pixels (:func:`scaler.scaling.solve_pixels`),
and why it is infeasible when it misses; in ``nominal`` mode the paper's γ.
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


def realize_candidate(
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

    base_pixels = cfg.proxy_config().base_pixels
    res = cfg.cost_pixels
    net = cfg.base
    base_cost = count(scale(base_pixels=res, base=net), num_classes).flops
    base_proxy = count(scale(base_pixels=base_pixels, base=net), num_classes).flops
    reason, pixels = "", base_pixels
    if role == BASE_ROLE:
        alpha = beta = gamma = gamma_nominal = 1.0
        cost_pixels = res
    else:
        gamma_nominal = math.sqrt(cfg.budget / (alpha * beta**2))
        targets = (cfg.budget * base_cost, cfg.budget * base_proxy)
        cost_pixels, pixels, reason = _pixels(cfg, alpha, beta, gamma_nominal, targets, num_classes)
        gamma = cost_pixels / res
    cost_spec = scale(alpha, beta, base_pixels=res, pixels=cost_pixels, base=net)
    spec = scale(alpha, beta, base_pixels=base_pixels, pixels=max(8, pixels), base=net)
    if not reason and max_pixels is not None and spec.pixels > max_pixels:
        reason = (
            f"needs {spec.pixels} px but the data serve at most {max_pixels} px (--upsample off)"
        )
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
    base_pixels, res = cfg.proxy_config().base_pixels, cfg.cost_pixels

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
    else:
        cost_pixels, reason = round_pixels(gamma_nominal, res), ""
        pixels = round_pixels(cost_pixels / res, base_pixels)
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
