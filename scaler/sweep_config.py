"""A sweep's configuration: its kinds, the paper's values, the options' parsing and checks.

:class:`SweepConfig` is everything that defines a sweep (stored with the study and compared on
resume); the parsers turn the CLI's strings into its values, every error one line naming the
option. Which networks a configuration makes is :mod:`scaler.sweep_points`; running the study is
:mod:`scaler.sweeps`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaler import bases
from scaler.bases import EFFICIENTNET_B0, Base
from scaler.data import DEFAULT_DATA
from scaler.proxy import ProxyConfig, resolve_proxy
from scaler.scaling import check_phi_max
from scaler.spec import MAX_MULTIPLIER

SWEEP_KINDS = ("width-by-baseline", "single", "compound", "compare")
PAPER_PER_PHI = (1.2, 1.1)  # the paper's (α, β): a compare sweep's default compound is (α, β)^φ
DIMENSIONS = ("width", "depth", "resolution")
# The paper's Figure 4 (our Figure 1) and Figure 3 values.
FIG1_WIDTHS = (1.0, 1.4, 1.8, 2.2, 2.6)
FIG1_BASELINES = ((1.0, 1.0), (1.0, 1.3), (2.0, 1.0), (2.0, 1.3))
FIG3_WIDTHS = (1.0, 1.4, 1.8, 2.6, 3.8, 5.0)
FIG3_DEPTHS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
FIG3_RESOLUTIONS = (1.0, 1.3, 1.5, 1.7, 1.9, 2.2, 2.5)


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
    # --upsample: bilinear | bicubic | off; None: an existing study's own, else bilinear
    upsample: str | None = None
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
        settings = dataclasses.asdict(self.proxy_config())
        out: dict[str, Any] = {
            "sweep": self.kind,
            "data": self.data,
            "proxy_preset": self.proxy,
            "proxy": settings,
            "base_pixels": settings["base_pixels"],
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
