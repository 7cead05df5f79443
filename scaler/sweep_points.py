"""A sweep's points: the series each kind of sweep draws, realized as networks with their costs.

:func:`sweep_points` lists every network of a sweep at the proxy's resolution with its exact
cost (:mod:`scaler.complexity`) and the reason it is skipped, if so (past ``--max-flops``, the
data's pixels or the parameter ceiling), without training or tracing anything. A compare sweep's
networks are solved to the budget's measured FLOPs (:func:`compare_points`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scaler.findings_sweeps import BASE_SERIES, COMPARE_ORDER, fmt_flops
from scaler.records import SWEEP_ROLE
from scaler.scaling import MAX_NETWORK_PARAMS
from scaler.spec import MAX_PIXELS, MIN_PIXELS, round_pixels, scale
from scaler.sweep_config import FIG1_BASELINES, SweepConfig

ROLE = SWEEP_ROLE  # the ``role`` of sweep trials (never a search candidate role)
_SYMBOL = {"width": "w", "depth": "d", "resolution": "r"}
_SINGLE_LABEL = {
    "width": "width w (d = r = 1)",
    "depth": "depth d (w = r = 1)",
    "resolution": "resolution r (d = w = 1)",
}


@dataclass(frozen=True)
class Point:
    """One network of a sweep: its multipliers, realized size, cost and why it is skipped."""

    series: str  # the series key ("d=2.0, r=1.3", "width", "compound")
    label: str  # the legend label of its series
    depth: float
    width: float
    resolution: float  # multiplier of the proxy's base pixels
    value_name: str  # the varied quantity drawn beside the point: "w", "d", "r" or "φ"
    value: float
    pixels: int
    layers: int
    flops: int  # at the proxy resolution, with the data's classes (exact cost model)
    cost_flops: int  # at r × 224 px, where the budget of a search is measured
    network_key: str
    phi: int | None = None
    skip: str = ""  # the reason it is not trained; "" when it is

    @property
    def id(self) -> str:
        """Identity of the point within its sweep (what makes enqueueing idempotent)."""
        return f"{self.series}|{self.depth:.6f}|{self.width:.6f}|{self.resolution:.6f}"

    def attrs(self, kind: str) -> dict[str, Any]:
        return {
            "role": ROLE,
            "sweep": kind,
            "point": self.id,
            "series": self.series,
            "label": self.label,
            "depth": self.depth,
            "width": self.width,
            "resolution": self.resolution,
            "value_name": self.value_name,
            "point_value": self.value,
            "phi": self.phi,
            "pixels": self.pixels,
            "layers": self.layers,
            "flops": self.flops,
            "cost_flops": self.cost_flops,
            "network_key": self.network_key,
        }


def num(x: float) -> str:
    """A multiplier as in labels: 1 → "1.0", 1.25 → "1.25"."""
    s = f"{x:g}"
    return s if any(c in s for c in ".e") else s + ".0"


def _raw_points(
    cfg: SweepConfig, num_classes: int = 1000
) -> list[tuple[str, str, float, float, float, str, float, Any]]:
    """(series, label, d, w, r, value_name, value, phi) for every point, in sweep order."""
    rows: list[tuple[str, str, float, float, float, str, float, Any]] = []
    if cfg.kind == "compare":
        return compare_points(cfg, num_classes)
    if cfg.kind == "width-by-baseline":
        for d, r in cfg.baselines or FIG1_BASELINES:
            series = f"d={num(d)}, r={num(r)}"
            rows += [(series, series, d, w, r, "w", w, None) for w in cfg.values("width")]
    elif cfg.kind == "single":
        for dim in cfg.dims:
            for v in cfg.values(dim):
                m = {"depth": 1.0, "width": 1.0, "resolution": 1.0, dim: v}
                rows.append(
                    (dim, _SINGLE_LABEL[dim], m["depth"], m["width"], m["resolution"],
                     _SYMBOL[dim], v, None)
                )  # fmt: skip
    else:
        c = cfg.compound_coefficients()
        label = f"compound α={c.alpha:.3g}, β={c.beta:.3g}, γ={c.gamma:.3g}"
        for phi in range(cfg.phi_max + 1):
            d, w, r = (round(x**phi, 6) for x in (c.alpha, c.beta, c.gamma))
            rows.append(("compound", label, d, w, r, "φ", float(phi), phi))
    return rows


def compare_points(cfg: SweepConfig, num_classes: int) -> list[tuple]:
    """A compare sweep's points: the base, the compound network and one network per dimension
    alone, each solved to B × the base's measured FLOPs at the base's cost pixels."""
    from scaler.scaling import base_flops, solve_dimension, solve_pixels

    net, px = cfg.base, cfg.base.pixels
    target = float(cfg.budget or 2.0) * base_flops(px, num_classes, net)
    d, w = cfg.compound_point()
    r = solve_pixels(d, w, target, px, num_classes, base=net).spec.pixels / px
    phi = round(math.log2(cfg.budget or 2.0), 6)
    rows: list[tuple] = [
        (BASE_SERIES, "base (d = w = r = 1)", 1.0, 1.0, 1.0, "φ", 0.0, None),
        ("compound", f"compound d={num(d)}, w={num(w)}, r={r:.3g}", d, w, r, "φ", phi, None),
    ]
    for dim in COMPARE_ORDER:
        value, _ = solve_dimension(dim, target, px, num_classes, net)
        m = {"depth": 1.0, "width": 1.0, "resolution": 1.0, dim: value}
        label = f"{dim} only ({_SYMBOL[dim]}={value:.4g})"
        rows.append(
            (dim, label, m["depth"], m["width"], m["resolution"], _SYMBOL[dim], value, None)
        )
    return rows


def _compare_proxy_pixels(
    cfg: SweepConfig, d: float, w: float, base_pixels: int, classes: int
) -> int:
    """The proxy's input size of a compare network that scales resolution: solved to B × the
    base's FLOPs at the proxy's own pixels, as a search solves its candidates', because
    round(r × base_pixels) misses the budget by up to ~30 % at 32–64 px (maps of side
    ceil(p / 32))."""
    from scaler.scaling import base_flops, solve_pixels

    target = float(cfg.budget or 2.0) * base_flops(base_pixels, classes, cfg.base)
    return solve_pixels(d, w, target, base_pixels, classes, base=cfg.base).spec.pixels


def _over_cap(cfg: SweepConfig, proxy_flops: int, cost_flops: int) -> str:
    """Why a point exceeds ``--max-flops`` where the cap is measured, or ""."""
    flops, where = (
        (cost_flops, f"at r × {cfg.base.pixels} px")
        if cfg.max_flops_at == "cost"
        else (proxy_flops, "at the proxy's pixels")
    )
    if flops > cfg.max_flops:
        return f"{fmt_flops(flops)} {where} exceed --max-flops {fmt_flops(cfg.max_flops)}"
    return ""


def sweep_points(cfg: SweepConfig, num_classes: int, max_pixels: int | None) -> list[Point]:
    """Every point of a sweep realized at the proxy resolution, with skip reasons (no training).

    Points repeated within one series (the same multipliers twice) are listed once.
    """
    from scaler.complexity import cost_model, param_count

    base_pixels = cfg.proxy_config().base_pixels
    points: dict[str, Point] = {}
    net = cfg.base
    for series, label, d, w, r, name, value, phi in _raw_points(cfg, num_classes):
        pixels = round_pixels(r, base_pixels)
        if cfg.kind == "compare" and series in ("compound", "resolution"):
            pixels = _compare_proxy_pixels(cfg, d, w, base_pixels, num_classes)
        reason = ""
        if pixels < MIN_PIXELS or pixels > MAX_PIXELS:
            reason = f"needs {pixels} px, outside {MIN_PIXELS}..{MAX_PIXELS} px"
        elif max_pixels is not None and pixels > max_pixels:
            reason = (
                f"needs {pixels} px but the data serve at most {max_pixels} px (--upsample off)"
            )
        px = min(max(pixels, MIN_PIXELS), MAX_PIXELS)
        spec = scale(d, w, base_pixels=base_pixels, pixels=px, base=net)
        model = cost_model(spec, num_classes)
        flops = int(model.flops(spec.pixels))
        cost_flops = int(model.flops(round_pixels(r, net.pixels)))
        if not reason and cfg.max_flops is not None:
            reason = _over_cap(cfg, flops, cost_flops)
        if not reason and (params := param_count(spec, num_classes)) > MAX_NETWORK_PARAMS:
            reason = f"{params:.3g} parameters, past the ceiling of {MAX_NETWORK_PARAMS:.0e}"
        p = Point(
            series=series,
            label=label,
            depth=float(d),
            width=float(w),
            resolution=float(r),
            value_name=name,
            value=float(value),
            pixels=int(pixels),
            layers=spec.layers,
            flops=flops,
            cost_flops=cost_flops,
            network_key=spec.key_str,
            phi=phi,
            skip=reason,
        )
        points.setdefault(p.id, p)
    return list(points.values())
