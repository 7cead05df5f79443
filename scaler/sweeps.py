"""Scaling curves: sweeps of fixed (d, w, r) points, each sweep an optuna study.

The paper's curves (Tan & Le 2019) are reproduced as *sweeps*: a fixed list of networks, each
trained on the same short proxy run as the search, so that their top-1 can be drawn against
measured FLOPs and compared with the search's compound point.

- ``width-by-baseline`` (the paper's Figure 4, our "Figure 1"): widths w for each baseline
  (d, r); one series per baseline, labelled "d=2.0, r=1.3".
- ``single`` (the paper's Figure 3): one series per scaled dimension (width, depth and/or
  resolution), the other two multipliers at 1. Several dimensions can share one study, and then
  the (1, 1, 1) point they all start from is trained once.
- ``compound``: the family φ = 0..K of exported coefficients, d = α^φ, w = β^φ, r = γ^φ.
- ``compare`` (the paper's Table 3, and Table 7 for B0): at one budget B, the compound network
  (d, w given, γ solved) against depth-only, width-only and resolution-only networks, each
  solved to the same *measured* FLOPs (B × the base's at its cost pixels), with the base; every
  point trained with the same seeds, so compound and each single dimension pair seed by seed
  (:func:`scaler.findings_sweeps.compare_verdicts`: a paired t-test per dimension, its df, and
  a verdict). As in a
  search, the networks that scale resolution train at the proxy input size solved to B × the
  base's proxy FLOPs (not round(r × proxy pixels)); the report states the proxy costs.

Every kind scales the configuration's base network (``--base``, :mod:`scaler.bases`); a base
other than EfficientNet-B0 is stored and named in the default study name.

How a sweep runs (the reasons):

- **Resolution is a multiplier of the proxy's base pixels** (``round_pixels(r, base_pixels)``),
  exactly as the search trains its candidates, so sweep and search points share one FLOPs axis:
  fvcore FLOPs of the proxy network at the proxy resolution.
- **Every point is a queued trial**, enqueued once (idempotent on resume); the runner
  (:mod:`scaler.runner`) hands each to exactly one worker, and identical realized networks
  (same ``network_key``) are trained once and reused.
- **Caps.** ``max_flops`` lets CPU users run a reduced sweep: points above it, or needing more
  pixels than the data serve, are recorded as *skipped* (a pruned trial with the reason) and
  never trained. The cap is not part of the configuration: rerunning with a higher cap resumes
  the same study and trains the points it now allows. The skip decision uses the exact cost
  model of :mod:`scaler.complexity` (pinned to fvcore by tests) so that no point is traced, let
  alone built, only to be skipped; trained points record fvcore's own count.
- **Resume and refusal** work as in the search: the configuration is stored with the study and
  a different one is refused with what differs. Failed trials are recorded with their reason and
  never stop the sweep.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaler import bases
from scaler.bases import EFFICIENTNET_B0, Base
from scaler.data import DEFAULT_DATA
from scaler.findings_sweeps import COMPARE_ORDER, fmt_flops
from scaler.proxy import ProxyConfig, resolve_proxy
from scaler.records import SWEEP_ROLE, Status, write
from scaler.results import Noise, finished, noise, sweep_frame
from scaler.runner import (
    Job,
    ProgressFn,
    QueuedPoint,
    Trainer,
    ensure_queue,
    run_study,
    work_queue,
)
from scaler.scaling import MAX_NETWORK_PARAMS, check_phi_max
from scaler.spec import MAX_MULTIPLIER, MAX_PIXELS, MIN_PIXELS, round_pixels, scale
from scaler.studies import (
    StudySpec,
    default_name,
    default_storage,
    load_study,
    mask_url,
    open_study,
    proxy_json,
    resolve_target,
    stored_config,
)

SWEEP_KINDS = ("width-by-baseline", "single", "compound", "compare")
PAPER_PER_PHI = (1.2, 1.1)  # the paper's (α, β): a compare sweep's default compound is (α, β)^φ
DIMENSIONS = ("width", "depth", "resolution")
# The paper's Figure 4 (our Figure 1) and Figure 3 values.
FIG1_WIDTHS = (1.0, 1.4, 1.8, 2.2, 2.6)
FIG1_BASELINES = ((1.0, 1.0), (1.0, 1.3), (2.0, 1.0), (2.0, 1.3))
FIG3_WIDTHS = (1.0, 1.4, 1.8, 2.6, 3.8, 5.0)
FIG3_DEPTHS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
FIG3_RESOLUTIONS = (1.0, 1.3, 1.5, 1.7, 1.9, 2.2, 2.5)
ROLE = SWEEP_ROLE  # the ``role`` of sweep trials (never a search candidate role)
# Proxy fields that change speed, not results: left out of the default name's hash.
_SPEED_ONLY = ("threads", "device")
_SYMBOL = {"width": "w", "depth": "d", "resolution": "r"}
_SINGLE_LABEL = {
    "width": "width w (d = r = 1)",
    "depth": "depth d (w = r = 1)",
    "resolution": "resolution r (d = w = 1)",
}


# ----------------------------------------------------------------------------------------------
# parsing user input (the CLI's strings; every error is one line naming the option)
# ----------------------------------------------------------------------------------------------


def parse_values(option: str, text: str | None) -> tuple[float, ...] | None:
    """Comma-separated numbers: 1,1.4,1.8 → (1.0, 1.4, 1.8); None stays None (the defaults)."""
    if text is None:
        return None
    items = [x.strip() for x in str(text).split(",")]
    if not any(items):
        raise ValueError(
            f"{option} {text!r} is invalid: give comma-separated numbers, e.g. 1,1.4,1.8"
        )
    values = []
    for item in items:
        try:
            values.append(float(item))
        except ValueError:
            raise ValueError(
                f"{option} {text!r} is invalid: {item!r} is not a number "
                "(give comma-separated numbers, e.g. 1,1.4,1.8)"
            ) from None
    return _check_values(option, tuple(values))


def parse_baselines(text: str | None) -> tuple[tuple[float, float], ...] | None:
    """Baselines (d, r): 1.0:1.0,2.0:1.3 → ((1.0, 1.0), (2.0, 1.3))."""
    if text is None:
        return None
    items = [x.strip() for x in str(text).split(",")]
    hint = "give comma-separated D:R pairs, e.g. 1.0:1.0,2.0:1.3"
    if not any(items):
        raise ValueError(f"--baselines {text!r} is invalid: {hint}")
    pairs = []
    for item in items:
        parts = item.split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            pairs.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ValueError(
                f"--baselines {text!r} is invalid: {item!r} is not D:R; {hint}"
            ) from None
    return _check_baselines(tuple(pairs))


def parse_compound(text: str | None) -> tuple[float, float] | None:
    """A compare sweep's compound network: "1.4:1.2" → (d, w) = (1.4, 1.2)."""
    if text is None:
        return None
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        pair = (float(parts[0]), float(parts[1]))
    except ValueError:
        raise ValueError(
            f"--compound {text!r} is invalid: give D:W, e.g. 1.4:1.2 (γ is solved)"
        ) from None
    _check_values("--compound", pair)
    return pair


_FLOPS = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgGtT]?)\s*(?i:flops?)?\s*"
    r"(?:@\s*(proxy|cost))?\s*$"
)
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_flops(text: str | None) -> tuple[float | None, str]:
    """A FLOPs cap and where it is measured: 50M → (5e7, "proxy"), 1.2G@cost → (1.2e9,
    "cost"); fvcore counts, one multiply-add = one flop. "proxy": at the proxy's pixels (the
    default); "cost": at the pixels the budget is measured at (r × 224)."""
    if text is None:
        return None, "proxy"
    match = _FLOPS.match(str(text))
    if not match:
        raise ValueError(
            f"--max-flops {text!r} is invalid: use a number of FLOPs like 50M, 1.2G or 5e7, "
            "optionally @proxy (the default) or @cost"
        )
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"--max-flops {text!r} is invalid: it must be > 0")
    return value, match.group(3) or "proxy"


def parse_dims(text: str) -> tuple[str, ...]:
    """Dimensions: width, width,depth or all → a tuple, in the order given."""
    items = [x.strip().lower() for x in str(text).split(",") if x.strip()]
    if items == ["all"]:
        return DIMENSIONS
    valid = f"valid dimensions are {', '.join(DIMENSIONS)} (comma-separated) or all"
    if not items:
        raise ValueError(f"--dim {text!r} is invalid: {valid}")
    for item in items:
        if item not in DIMENSIONS:
            raise ValueError(f"--dim {item!r} is unknown: {valid}")
    return tuple(dict.fromkeys(items))  # duplicates dropped, order kept


def _check_values(option: str, values: tuple[float, ...]) -> tuple[float, ...]:
    if not values:
        raise ValueError(f"{option} is invalid: it needs at least one value")
    for v in values:
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{option} value {v!r} is invalid: every value must be a number > 0")
        if v > MAX_MULTIPLIER:
            raise ValueError(f"{option} value {v!r} is invalid: multipliers must be <= 32")
    return tuple(float(v) for v in values)


def _check_baselines(pairs: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    if not pairs:
        raise ValueError("--baselines is invalid: it needs at least one D:R pair")
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"--baselines value {pair!r} is invalid: each baseline is (d, r)")
        _check_values("--baselines", tuple(pair))
    return tuple((float(d), float(r)) for d, r in pairs)


# ----------------------------------------------------------------------------------------------
# configuration and points
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep; stored with the study and compared on resume.

    Value lists left as None take the paper's values for the sweep kind. ``max_flops`` is a cap,
    not part of the stored configuration (a higher cap resumes the same study).
    """

    kind: str = "width-by-baseline"  # width-by-baseline | single | compound
    dims: tuple[str, ...] = ("width",)  # single: the dimensions to scale, one series each
    widths: tuple[float, ...] | None = None  # width-by-baseline and single width
    depths: tuple[float, ...] | None = None  # single depth
    resolutions: tuple[float, ...] | None = None  # single resolution
    baselines: tuple[tuple[float, float], ...] | None = None  # width-by-baseline: (d, r) pairs
    coefficients: str | None = None  # compound: a file written by `scaler export`
    phi_max: int = 3  # compound: φ = 0..phi_max
    data: str = DEFAULT_DATA
    proxy: str = "standard"
    proxy_overrides: tuple[tuple[str, Any], ...] = ()
    seeds: int = 1  # proxy runs per point; >= 2 gives error bars and a noise floor
    max_flops: float | None = None  # skip points above this many fvcore FLOPs ...
    max_flops_at: str = "proxy"  # ... at the proxy's pixels, or at the "cost" pixels (r × 224)
    base: Base = EFFICIENTNET_B0  # the network scaled (--base); stored when not B0
    budget: float | None = None  # compare: measured FLOPs budget, a multiple of the base's
    compound: tuple[float, float] | None = None  # compare: (d, w); None: the paper's (1.2, 1.1)^φ

    def proxy_config(self) -> ProxyConfig:
        return resolve_proxy(self.proxy, self.proxy_overrides)

    def values(self, dim: str) -> tuple[float, ...]:
        """The multipliers of one scaled dimension, defaults filled in."""
        if dim == "width":
            default = FIG1_WIDTHS if self.kind == "width-by-baseline" else FIG3_WIDTHS
            return self.widths or default
        if dim == "depth":
            return self.depths or FIG3_DEPTHS
        return self.resolutions or FIG3_RESOLUTIONS

    def validate(self) -> SweepConfig:
        """Raise ValueError (one line, naming the option) on any invalid setting."""
        if self.kind not in SWEEP_KINDS:
            raise ValueError(
                f"sweep {self.kind!r} is unknown: valid sweeps are {', '.join(SWEEP_KINDS)}"
            )
        self._check_values_given()
        if self.kind == "compare":
            self._check_compare()
        elif self.budget is not None or self.compound is not None:
            raise ValueError(f"--budget and --compound apply to the compare sweep, not {self.kind}")
        if self.kind == "compound":
            if self.coefficients is None:
                raise ValueError("--coefficients is missing: give a file written by scaler export")
            path = Path(self.coefficients)
            if not path.is_file():
                raise ValueError(f"--coefficients {str(path)!r} is invalid: no such file")
            check_phi_max(self.phi_max)
        if not 1 <= self.seeds <= 100:
            raise ValueError(f"--seeds {self.seeds} is invalid: it must be in 1..100")
        if self.max_flops is not None and not (
            math.isfinite(self.max_flops) and self.max_flops > 0
        ):
            raise ValueError(f"--max-flops {self.max_flops} is invalid: it must be > 0")
        if self.max_flops_at not in ("proxy", "cost"):
            raise ValueError(f"--max-flops @{self.max_flops_at} is invalid: use @proxy or @cost")
        from scaler.device import check_device

        check_device(self.proxy_config().device)  # unknown presets and overrides raise too
        return self

    def _check_values_given(self) -> None:
        """The value lists given apply to this kind of sweep and hold valid multipliers."""
        given = {
            "--widths": self.widths,
            "--depths": self.depths,
            "--resolutions": self.resolutions,
            "--baselines": self.baselines,
        }
        allowed = {"--widths", "--baselines"} if self.kind == "width-by-baseline" else set()
        if self.kind == "single":
            if not self.dims:
                raise ValueError("--dim is missing: give width, depth, resolution or all")
            for d in self.dims:
                if d not in DIMENSIONS:
                    raise ValueError(
                        f"--dim {d!r} is unknown: valid dimensions are {', '.join(DIMENSIONS)}"
                    )
            allowed = {f"--{d}s" for d in self.dims}
        for option, value in given.items():
            if value is None:
                continue
            if option not in allowed:
                where = f"--dim {','.join(self.dims)}" if self.kind == "single" else self.kind
                raise ValueError(f"{option} does not apply to {where}")
            if option == "--baselines":
                _check_baselines(tuple(value))
            else:
                _check_values(option, tuple(value))

    def _check_compare(self) -> None:
        if self.budget is None:
            raise ValueError("--budget is missing: give the FLOPs budget to compare at, e.g. 4x")
        if not (math.isfinite(self.budget) and 0 < self.budget <= 1e4 and self.budget != 1):
            raise ValueError(f"--budget {self.budget:g} is invalid: it must be > 0 and not 1x")
        if self.compound is not None:
            _check_values("--compound", tuple(self.compound))

    def compound_point(self) -> tuple[float, float]:
        """A compare sweep's compound (d, w): given, or the paper's (α, β) at the budget's φ."""
        if self.compound is not None:
            return float(self.compound[0]), float(self.compound[1])
        phi = math.log2(self.budget or 2.0)
        return tuple(round(x**phi, 6) for x in PAPER_PER_PHI)  # type: ignore[return-value]

    def compound_coefficients(self):
        """The Coefficients of a compound sweep (ValueError naming --coefficients if unreadable)."""
        from scaler.exports import load_coefficients

        try:
            coeffs, _ = load_coefficients(self.coefficients)
        except ValueError as e:
            raise ValueError(f"--coefficients: {e}") from None
        return coeffs

    def stored(self) -> dict[str, Any]:
        """The configuration as stored in the study (JSON-safe; max_flops left out on purpose)."""
        proxy = dataclasses.asdict(self.proxy_config())
        out: dict[str, Any] = {
            "sweep": self.kind,
            "data": self.data,
            "proxy_preset": self.proxy,
            "proxy": proxy,
            "base_pixels": proxy["base_pixels"],
            "seeds": self.seeds,
        }
        if self.kind == "width-by-baseline":
            out["widths"] = list(self.values("width"))
            out["baselines"] = [list(b) for b in (self.baselines or FIG1_BASELINES)]
        elif self.kind == "single":
            out["dims"] = list(self.dims)
            for d in self.dims:
                out[f"{d}s"] = list(self.values(d))
        elif self.kind == "compare":
            out["budget"] = self.budget
            out["compound"] = list(self.compound_point())
            out["cost_pixels"] = self.base.pixels
        else:
            out["coefficients"] = dataclasses.asdict(self.compound_coefficients())
            out["phi_max"] = self.phi_max
        return {**out, **bases.stored(self.base)}


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
        ("base", "base (d = w = r = 1)", 1.0, 1.0, 1.0, "φ", 0.0, None),
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


def _compare_proxy_pixels(cfg: SweepConfig, d: float, w: float, base_px: int, classes: int) -> int:
    """The proxy's input size of a compare network that scales resolution: solved to B × the
    base's FLOPs at the proxy's own pixels, as a search solves its candidates', because
    round(r × base_px) misses the budget by up to ~30 % at 32–64 px (maps of side ceil(p / 32))."""
    from scaler.scaling import base_flops, solve_pixels

    target = float(cfg.budget or 2.0) * base_flops(base_px, classes, cfg.base)
    return solve_pixels(d, w, target, base_px, classes, base=cfg.base).spec.pixels


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


def plan(cfg: SweepConfig, num_classes: int, max_pixels: int | None) -> list[Point]:
    """Every point of a sweep realized at the proxy resolution, with skip reasons (no training).

    Points repeated within one series (the same multipliers twice) are listed once.
    """
    from scaler.complexity import cost_model, param_count

    base_px = cfg.proxy_config().base_pixels
    points: dict[str, Point] = {}
    net = cfg.base
    for series, label, d, w, r, name, value, phi in _raw_points(cfg, num_classes):
        pixels = round_pixels(r, base_px)
        if cfg.kind == "compare" and series in ("compound", "resolution"):
            pixels = _compare_proxy_pixels(cfg, d, w, base_px, num_classes)
        reason = ""
        if pixels < MIN_PIXELS or pixels > MAX_PIXELS:
            reason = f"needs {pixels} px, outside {MIN_PIXELS}..{MAX_PIXELS} px"
        elif max_pixels is not None and pixels > max_pixels:
            reason = f"needs {pixels} px but the data serve at most {max_pixels} px"
        px = min(max(pixels, MIN_PIXELS), MAX_PIXELS)
        spec = scale(d, w, base_pixels=base_px, pixels=px, base=net)
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


# ----------------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A validated sweep, ready to run: nothing has been written yet."""

    cfg: SweepConfig
    source: Any
    study_name: str
    storage_url: str
    points: tuple[Point, ...]
    stored: dict[str, Any]


def default_study_name(cfg: SweepConfig, fingerprint: str) -> str:
    """sweep-<kind>[-<dims>]-<data>-<proxy>-<hash6 of data, proxy (and coefficients)>."""
    kind = cfg.kind + ("-" + "-".join(cfg.dims) if cfg.kind == "single" else "")
    extra = ""
    if cfg.kind == "compound":
        extra = json.dumps(dataclasses.asdict(cfg.compound_coefficients()), sort_keys=True)
    stored = bases.stored(cfg.base)
    if cfg.kind == "compare":
        kind += f"-{cfg.base.name}-{cfg.budget:g}x"
        extra += json.dumps([cfg.budget, cfg.compound_point()])
    elif stored:  # B0 keeps the names it had before bases existed
        kind += f"-{cfg.base.name}"
    if stored:
        extra += json.dumps(stored, sort_keys=True)
    hashed = f"{fingerprint}|{proxy_json(cfg.proxy_config(), drop=_SPEED_ONLY)}|{extra}"
    return default_name(f"sweep-{kind}", cfg.data, cfg.proxy, hashed)


def trial_bytes(p: Prepared) -> int:
    """GPU memory the largest trained point of this sweep may take (for placement)."""
    from scaler.complexity import train_memory
    from scaler.scaling import realize

    proxy = p.cfg.proxy_config()
    trained = [q for q in p.points if not q.skip] or list(p.points)
    if not trained:
        return 0
    big = max(trained, key=lambda q: q.flops)
    spec = realize(big.depth, big.width, big.resolution, proxy.base_pixels, p.cfg.base)
    return train_memory(spec, proxy.batch_size, p.source.num_classes)


def prepare(cfg: SweepConfig, study: str | None = None, storage: str | None = None) -> Prepared:
    """Validate everything a sweep needs before any study is created or changed."""
    cfg.validate()
    source, name, url = resolve_target(cfg, study, storage, default_study_name)
    stored = cfg.stored()
    stored["data_fingerprint"] = source.fingerprint()
    points = tuple(plan(cfg, source.num_classes, source.max_pixels))
    return Prepared(cfg, source, name, url, points, stored)


def create(p: Prepared):
    """Create the study, or load it and refuse a different configuration."""
    attrs: tuple[tuple[str, Any], ...] = (("sweep", p.cfg.kind),)
    if p.cfg.kind == "compound":
        attrs += (("coefficients_file", str(p.cfg.coefficients)),)
    spec = StudySpec(p.study_name, p.storage_url, "sweep", p.stored, attrs)
    return open_study(spec, on_create=lambda st: ensure_queue(st, queued_points(p)))


def queued_points(p: Prepared) -> list[QueuedPoint]:
    """The sweep's points as the runner queues them (skipped ones with their reason)."""
    return [
        QueuedPoint(
            id=pt.id,
            params={"depth": pt.depth, "width": pt.width, "resolution": pt.resolution},
            attrs=pt.attrs(p.cfg.kind),
            skip=pt.skip,
        )
        for pt in p.points
    ]


class Describe:
    """Turns a claimed trial into the sweep point it trains (counted with fvcore)."""

    def __init__(self, p: Prepared):
        self.p = p
        self.points = {pt.id: pt for pt in p.points}
        self.proxy = p.cfg.proxy_config()

    def __call__(self, trial) -> Job:
        import optuna

        from scaler.complexity import count

        point = self.points.get(trial.user_attrs.get("point", ""))
        if point is None or point.skip:
            # A point the current settings do not train (queued by a run with a higher cap).
            reason = point.skip if point is not None else "not a queued point of this sweep"
            write(trial, status=Status.SKIPPED, reason=reason)
            raise optuna.TrialPruned(reason)
        for name in ("depth", "width", "resolution"):
            v = getattr(point, name)
            trial.suggest_float(name, min(v, 0.01), max(v, MAX_MULTIPLIER))
        spec = scale(
            point.depth,
            point.width,
            base_pixels=self.proxy.base_pixels,
            pixels=point.pixels,
            base=self.p.cfg.base,
        )
        cost = count(spec, self.p.source.num_classes)
        write(
            trial,
            flops=cost.flops,
            params=cost.params,
            activations=cost.activations,
            channels=[s.channels for s in spec.stages],
        )
        info = {**point.attrs(self.p.cfg.kind), "params": cost.params}
        return Job(spec=spec, seeds=self.p.cfg.seeds, prune=False, info=info)


# ----------------------------------------------------------------------------------------------
# running and reading a sweep back
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """What a sweep leaves: where it is stored, its trials and the points it skipped."""

    study_name: str
    storage: str  # masked
    config: dict[str, Any]
    frame: Any  # pandas DataFrame, one row per trial (sweep_frame)
    noise: Noise

    @property
    def points(self):
        """Finished points (trained or reused), in trial order."""
        return finished(self.frame)

    @property
    def skipped(self):
        """Points not trained, with the reason."""
        return self.frame[self.frame["status"] == "skipped"]


def result(study, storage_url: str) -> SweepResult:
    """A sweep's trials, points and noise floor, read back from its study."""
    frame = sweep_frame(study)
    return SweepResult(
        study_name=study.study_name,
        storage=mask_url(storage_url),
        config=stored_config(study),
        frame=frame,
        noise=noise(frame),
    )


def work(p: Prepared, progress: ProgressFn | None = None) -> None:
    """Work on the sweep until no queued point is left."""
    study = create(p)
    study.set_user_attr("max_flops", p.cfg.max_flops)  # the latest run's cap, for reports
    study.set_user_attr("max_flops_at", p.cfg.max_flops_at)
    trainer = Trainer(Describe(p), p.source, p.cfg.proxy_config(), progress)
    work_queue(study, lambda: queued_points(p), trainer)


def run(
    config: SweepConfig,
    study: str | None = None,
    storage: str | None = None,
    progress: ProgressFn | None = None,
    workers: int = 1,
) -> SweepResult:
    """Run (or resume) a sweep; the Python entry point behind ``scaler sweep``."""
    return run_study(sys.modules[__name__], prepare(config, study, storage), progress, workers)


run_sweep = run  # its name until 0.5 (``scaler.run_sweep``)


def load_sweep(name: str, storage: str | None = None) -> SweepResult:
    """A stored sweep's result (ValueError when missing or not a sweep)."""
    st = load_study(name, storage)
    if st.user_attrs.get("kind") != "sweep":
        raise ValueError(f"study {name!r} is not a scaler sweep")
    return result(st, storage or default_storage(name))
