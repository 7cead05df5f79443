"""The compound scaling rule: budgets, coefficients, the measured-FLOPs solve, the family table.

The paper (Tan & Le 2019) scales depth, width and resolution together: d = α^φ, w = β^φ,
r = γ^φ with α·β²·γ² ≈ 2, so that each unit of φ roughly doubles FLOPs. A budget of B× the base
therefore means φ = log2(B). scaler names the multipliers *at the budget* (α, β, γ) with
α·β²·γ² ≈ B, which for the paper's 2× budget are exactly the paper's coefficients, and converts
them to per-unit-φ coefficients (α^(1/φ), ...) when it exports a family.

The formula is only nominal: channels round to multiples of 8 and layers round up, so the real
network costs more or less than α·β²·γ² says. The paper's own (1.2, 1.1, 1.15) at φ = 1 is
nominally 1.92× and measures 2.56× at 224 px, because ceil rounding turns 16 blocks into 23.
:func:`solve_pixels` therefore picks the integer input size whose *measured* FLOPs are closest to
the budget, and every table reports nominal and measured cost side by side.

A family table is arithmetic, never a network to build: its rows come from the exact parameter
count and cost model (``complexity.param_count``, ``complexity.cost_model``), so members past the
builder's limits get a row too, marked by ``FamilyRow.limit``. What bounds a family is a stated
ceiling on parameters and FLOPs (``MAX_FAMILY_PARAMS``, ``MAX_FAMILY_FLOPS``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from scaler.bases import EFFICIENTNET_B0, Base
from scaler.complexity import cost_model, count, param_count
from scaler.spec import (
    B0_RESOLUTION,
    MAX_MULTIPLIER,
    MAX_PIXELS,
    MIN_PIXELS,
    Spec,
    member_dropout,
    round_pixels,
    scale,
    unchecked_spec,
)

PAPER_BASE = 2.0  # α·β²·γ² of the paper: one unit of φ doubles the cost
PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)
MAX_PHI = 12  # largest φ of a family table (every command that takes --phi-max)
MAX_COEFFICIENT = 100.0  # largest α, β or γ a family table takes
MAX_FAMILY_PARAMS = 10**12  # a member past this many parameters ends a family (ValueError)
MAX_FAMILY_FLOPS = 10**15  # ... and one past this many FLOPs (b7 has 3.7e10)
# The largest network any command builds or trains (b7 has 66 M): 2e9 fp32 parameters are
# 8 GB before gradients and optimizer state.
MAX_NETWORK_PARAMS = 2 * 10**9

_BUDGET = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*[xX]?\s*$")


def parse_budget(text: str) -> float:
    """Parse a FLOPs budget such as "2x", "2", "4x" or "0.5x" (a multiple of the base's FLOPs)."""
    match = _BUDGET.match(str(text))
    if not match:
        raise ValueError(
            f"budget {text!r} is invalid: use a positive multiple of the base FLOPs "
            "like 2x, 4x or 0.5x"
        )
    value = float(match.group(1))
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"budget {text!r} is invalid: it must be a finite number > 0, like 2x")
    if abs(value - 1.0) < 1e-9:
        raise ValueError(f"budget {text!r} is the base network itself: use a value other than 1x")
    if value > 1e4:
        raise ValueError(f"budget {text!r} is invalid: it must be at most 10000x")
    return value


def budget_phi(budget: float) -> float:
    """φ for a budget, on the paper's base of 2 (2× → 1, 4× → 2, 0.5× → -1)."""
    return math.log(budget, PAPER_BASE)


@dataclass(frozen=True)
class Coefficients:
    """Per-unit-φ compound coefficients: d = α^φ, w = β^φ, r = γ^φ."""

    alpha: float
    beta: float
    gamma: float

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} {value!r} is invalid: it must be a finite number > 0")

    @property
    def product(self) -> float:
        """α·β²·γ²: the nominal cost of one unit of φ."""
        return self.alpha * self.beta**2 * self.gamma**2

    def nominal_cost(self, phi: float) -> float:
        return self.product**phi

    def spec(
        self,
        phi: float,
        base_pixels: int = B0_RESOLUTION,
        pixel_limit: int = MAX_PIXELS,
        base: Base = EFFICIENTNET_B0,
    ) -> Spec:
        return scale(
            self.alpha**phi,
            self.beta**phi,
            self.gamma**phi,
            base_pixels=base_pixels,
            pixel_limit=pixel_limit,
            dropout=member_dropout(base, phi),
            base=base,
        )

    @classmethod
    def from_multipliers(cls, depth: float, width: float, resolution: float, phi: float):
        """Coefficients that reach (depth, width, resolution) at ``phi``."""
        if phi == 0:
            raise ValueError("phi 0 is invalid: multipliers at φ = 0 do not determine coefficients")
        return cls(depth ** (1 / phi), width ** (1 / phi), resolution ** (1 / phi))


def multipliers(coefficients: Coefficients, phi: float) -> tuple[float, float, float]:
    """(d, w, r) = (α^φ, β^φ, γ^φ); a one-line ValueError naming --phi when they overflow."""
    try:
        return coefficients.alpha**phi, coefficients.beta**phi, coefficients.gamma**phi
    except OverflowError:
        raise ValueError(f"--phi {phi:g} is invalid: α^φ, β^φ or γ^φ overflows") from None


def cost_spec(
    depth: float, width: float, resolution: float, base_pixels: int, base: Base = EFFICIENTNET_B0
) -> Spec:
    """The Spec ``spec.scale`` makes of these multipliers, without its size limits.

    For costs only (the exact cost model and parameter count take it at any size); whether the
    builder may have it is :func:`builder_limit`.
    """
    pixels = round_pixels(resolution, base_pixels)
    return unchecked_spec(depth, width, resolution, base_pixels, pixels, base=base)


def builder_limit(spec: Spec) -> str:
    """Why ``spec.scale`` refuses this network, e.g. "2178 px > 2048 px"; "" when it builds."""
    reasons = []
    if spec.pixels > MAX_PIXELS:
        reasons.append(f"{spec.pixels} px > {MAX_PIXELS} px")
    elif spec.pixels < MIN_PIXELS:
        reasons.append(f"{spec.pixels} px < {MIN_PIXELS} px")
    for name, value in (("depth", spec.depth), ("width", spec.width)):
        if value > MAX_MULTIPLIER:
            reasons.append(f"{name} {value:.4g} > {MAX_MULTIPLIER:g}")
        elif not value > 0:  # α^φ can underflow to 0
            reasons.append(f"{name} {value:.4g} is not > 0")
    return "; ".join(reasons)


def member(
    coefficients: Coefficients, phi: float, base_pixels: int, base: Base = EFFICIENTNET_B0
) -> tuple[Spec, str]:
    """The family member at φ, past the builder's limits too, and :func:`builder_limit`.

    Its classifier dropout is, for EfficientNet, the official member's at the same φ
    (``spec.family_dropout``); another base keeps its own (``spec.member_dropout``).
    """
    spec = cost_spec(*multipliers(coefficients, phi), base_pixels, base)
    spec = dataclasses.replace(spec, dropout=member_dropout(base, phi))
    return spec, builder_limit(spec)


@dataclass(frozen=True)
class FamilyRow:
    """One member of a scaled family, nominal and measured side by side."""

    phi: int
    depth: float
    width: float
    resolution: float
    pixels: int
    layers: int
    params: int  # exact, from the Spec (never built)
    flops: int  # fvcore, one multiply-add = one flop (the exact cost model)
    nominal_cost: float  # (α·β²·γ²)^φ
    measured_cost: float  # flops / base flops
    limit: str = ""  # why the builder refuses this member (builder_limit); "" when it builds

    @property
    def buildable(self) -> bool:
        return not self.limit


def _family_row(phi: int, spec: Spec, nominal: float, base_flops: int, num_classes: int):
    # The exact cost model equals fvcore's count (tested) and the parameter count equals the
    # builder's (tested); neither builds nor traces, so members of any size cost nothing.
    flops = cost_model(spec, num_classes).flops_at(spec.pixels)
    return FamilyRow(
        phi=phi,
        depth=spec.depth,
        width=spec.width,
        resolution=spec.resolution,
        pixels=spec.pixels,
        layers=spec.layers,
        params=param_count(spec, num_classes),
        flops=flops,
        nominal_cost=nominal,
        measured_cost=flops / base_flops,
        limit=builder_limit(spec),
    )


def base_flops(
    base_pixels: int = B0_RESOLUTION, num_classes: int = 1000, base: Base = EFFICIENTNET_B0
) -> int:
    """fvcore FLOPs of the unscaled network at ``base_pixels`` (from the exact cost model)."""
    unscaled = scale(base_pixels=base_pixels, base=base)  # validates base_pixels
    return cost_model(unscaled, num_classes).flops_at(unscaled.pixels)


def _sci(value: float) -> str:
    return f"{value:.2g}".replace("e+", "e")


def _check_ceiling(row: FamilyRow, coefficients: Coefficients, phi_max: int) -> None:
    """A one-line ValueError naming --phi-max when ``row`` is past a family ceiling."""
    for what, value, ceiling in (
        ("parameters", row.params, MAX_FAMILY_PARAMS),
        ("FLOPs", row.flops, MAX_FAMILY_FLOPS),
    ):
        if value > ceiling:
            c = coefficients
            raise ValueError(
                f"--phi-max {phi_max} is invalid for α={c.alpha:g}, β={c.beta:g}, γ={c.gamma:g}: "
                f"φ = {row.phi} already has {_sci(value)} {what}, past the ceiling of "
                f"{_sci(ceiling)}; use --phi-max {row.phi - 1} or less"
            )


def family(
    coefficients: Coefficients,
    phi_max: int = 7,
    base_pixels: int = B0_RESOLUTION,
    num_classes: int = 1000,
    base: Base = EFFICIENTNET_B0,
) -> list[FamilyRow]:
    """The family φ = 0..phi_max with realized sizes and both costs, built by nothing.

    Members past the builder's limits get a row, marked by ``limit``. Members are computed in
    order; the first past ``MAX_FAMILY_PARAMS`` or ``MAX_FAMILY_FLOPS`` ends the table with a
    one-line ValueError naming --phi-max and the largest φ under the ceilings.
    """
    check_phi_max(phi_max)
    unscaled = base_flops(base_pixels, num_classes, base)
    rows = []
    for phi in range(phi_max + 1):
        spec, _ = member(coefficients, phi, base_pixels, base)
        row = _family_row(phi, spec, coefficients.nominal_cost(phi), unscaled, num_classes)
        _check_ceiling(row, coefficients, phi_max)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Solution:
    """The input size whose measured FLOPs come closest to a target."""

    spec: Spec
    flops: int
    target: int

    @property
    def error(self) -> float:
        """Relative miss: measured / target - 1."""
        return self.flops / self.target - 1.0


def solve_pixels(
    depth: float,
    width: float,
    target_flops: float,
    base_pixels: int,
    num_classes: int = 1000,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
    base: Base = EFFICIENTNET_B0,
) -> Solution:
    """Integer input size in [min_pixels, max_pixels] whose fvcore FLOPs are closest to target.

    Every size is scanned with the network's exact cost model; the chosen one is then counted by
    fvcore, which is what gets recorded (and must agree with the model).
    """
    import numpy as np

    probe = scale(depth, width, base_pixels=base_pixels, pixels=min_pixels, base=base)
    sizes = np.arange(min_pixels, max_pixels + 1)
    misses = np.abs(cost_model(probe, num_classes).flops(sizes) / target_flops - 1.0)
    # Sizes with equal feature maps cost the same; ties go to the larger input (more detail).
    pixels = int(sizes[len(sizes) - 1 - int(np.argmin(misses[::-1]))])
    spec = scale(depth, width, base_pixels=base_pixels, pixels=pixels, base=base)
    flops = count(spec, num_classes).flops
    if flops != int(cost_model(spec, num_classes).flops(pixels)):
        raise RuntimeError(f"cost model disagrees with fvcore for {spec.key_str}")
    return Solution(spec=spec, flops=flops, target=int(round(target_flops)))


WIDTH_STEP = 0.005  # the grid a width-only solve scans (channels move in steps of the divisor)


def solve_dimension(
    dim: str,
    target_flops: float,
    base_pixels: int,
    num_classes: int = 1000,
    base: Base = EFFICIENTNET_B0,
) -> tuple[float, int]:
    """(multiplier, fvcore FLOPs) of ``dim`` scaled alone, the other two at 1, whose measured
    FLOPs at r × ``base_pixels`` come closest to ``target_flops``: the single-dimension rows of
    the paper's Tables 3 and 7, at the compound network's measured cost instead of nominal.

    Depth takes the smallest d of each distinct network (k / layers of a stage); width scans a
    grid of WIDTH_STEP; resolution is :func:`solve_pixels` at d = w = 1 (r = pixels / base).
    """
    import numpy as np

    if dim == "resolution":
        sol = solve_pixels(1.0, 1.0, target_flops, base_pixels, num_classes, base=base)
        return sol.spec.pixels / base_pixels, sol.flops
    if dim == "depth":
        counts = {s.layers for s in base.stages}
        values = sorted({k / n for n in counts for k in range(1, int(MAX_MULTIPLIER * n) + 1)})
    elif dim == "width":
        root = math.sqrt(target_flops / base_flops(base_pixels, num_classes, base))
        lo, hi = max(WIDTH_STEP, root / 4), min(MAX_MULTIPLIER, root * 4)
        values = [round(float(w), 6) for w in np.arange(lo, hi + WIDTH_STEP, WIDTH_STEP)]
    else:
        raise ValueError(f"dimension {dim!r} is unknown: valid are depth, width, resolution")
    d_or_w = {"depth": lambda v: (v, 1.0), "width": lambda v: (1.0, v)}[dim]
    flops = [
        cost_model(cost_spec(*d_or_w(v), 1.0, base_pixels, base), num_classes).flops_at(base_pixels)
        for v in values
    ]
    misses = [abs(f / target_flops - 1.0) for f in flops]
    best = misses.index(min(misses))  # ties: the first, the smallest multiplier
    return values[best], flops[best]


def official_family(base_pixels: int = B0_RESOLUTION, num_classes: int = 1000) -> dict:
    """The official B0..B7 (TF builder tuples) measured like a family."""
    from scaler.spec import PRESETS, preset

    unscaled = base_flops(base_pixels, num_classes)
    rows = {}
    for phi, name in enumerate(PRESETS):
        spec = preset(name, base_pixels)
        nominal = spec.depth * spec.width**2 * spec.resolution**2
        rows[name] = _family_row(phi, spec, nominal, unscaled, num_classes)
    return rows


def check_phi_max(phi_max: int, option: str = "--phi-max") -> int:
    """``phi_max`` if it is an integer in 0..MAX_PHI, else a one-line ValueError."""
    if isinstance(phi_max, bool) or not isinstance(phi_max, int) or not 0 <= phi_max <= MAX_PHI:
        raise ValueError(f"{option} {phi_max} is invalid: it must be an integer in 0..{MAX_PHI}")
    return phi_max


def check_buildable(spec: Spec, num_classes: int = 1000) -> Spec:
    """``spec`` if its network stays under MAX_NETWORK_PARAMS (counted without building it)."""
    params = param_count(spec, num_classes)
    if params > MAX_NETWORK_PARAMS:
        raise ValueError(
            f"network {spec.describe()} has {params:.3g} parameters, past the ceiling of "
            f"{MAX_NETWORK_PARAMS:.0e} for a network scaler builds: use smaller multipliers"
        )
    return spec


def network_spec(
    preset: str | None = None,
    depth: float | None = None,
    width: float | None = None,
    pixels: int | None = None,
    base_pixels: int | None = None,
    *,
    resolution: float | None = None,
    base: Base | None = None,
) -> Spec:
    """The network named by a preset, or by multipliers (``resolution`` × the base pixels) or
    pixels; refused past the builder's limits and MAX_NETWORK_PARAMS.

    ``base`` is the network scaled (default EfficientNet-B0); presets are EfficientNet's. An
    export's member at φ is :func:`scaler.exports.member_spec`.
    """
    return check_buildable(
        _named_spec(preset, depth, width, pixels, base_pixels, resolution, base or EFFICIENTNET_B0)
    )


def _named_spec(preset, depth, width, pixels, base_pixels, resolution, base):
    from scaler.spec import preset as preset_spec

    if resolution is not None and pixels is not None:
        raise ValueError("--resolution cannot be combined with --pixels: give one of them")
    given = any(x is not None for x in (depth, width, pixels, resolution))
    if preset is not None:
        if given:
            raise ValueError(
                "--preset cannot be combined with --depth/--width/--resolution/--pixels"
            )
        if base != EFFICIENTNET_B0:
            raise ValueError(
                f"--preset {preset} is an EfficientNet member: it cannot scale --base {base.name} "
                "(give --depth/--width/--resolution instead)"
            )
        return preset_spec(preset, base_pixels or B0_RESOLUTION)
    return scale(
        1.0 if depth is None else depth,
        1.0 if width is None else width,
        1.0 if resolution is None else resolution,
        base_pixels=base.pixels if base_pixels is None else base_pixels,
        pixels=pixels,
        base=base,
    )
