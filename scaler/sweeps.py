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

How a sweep runs (the reasons):

- **Resolution is a multiplier of the proxy's base pixels** (``round_pixels(r, base_pixels)``),
  exactly as the search trains its candidates, so sweep and search points share one FLOPs axis:
  fvcore FLOPs of the proxy network at the proxy resolution.
- **Every point is a queued trial**, enqueued once (idempotent on resume); optuna hands each
  queued trial to exactly one worker. Identical realized networks (same ``network_key``) are
  trained once and reused (:func:`scaler.search.reuse_twin`).
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
import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaler import search as S
from scaler.data import DEFAULT_DATA
from scaler.spec import MAX_PIXELS, MIN_PIXELS, round_pixels, scale

SWEEP_KINDS = ("width-by-baseline", "single", "compound")
DIMENSIONS = ("width", "depth", "resolution")
# The paper's Figure 4 (our Figure 1) and Figure 3 values.
FIG1_WIDTHS = (1.0, 1.4, 1.8, 2.2, 2.6)
FIG1_BASELINES = ((1.0, 1.0), (1.0, 1.3), (2.0, 1.0), (2.0, 1.3))
FIG3_WIDTHS = (1.0, 1.4, 1.8, 2.6, 3.8, 5.0)
FIG3_DEPTHS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
FIG3_RESOLUTIONS = (1.0, 1.3, 1.5, 1.7, 1.9, 2.2, 2.5)
MAX_MULTIPLIER = 32.0  # the spec's own limit for depth and width
MAX_PHI = 12
ROLE = "sweep"  # the ``role`` user attr of sweep trials (never a search candidate role)
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


_FLOPS = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgGtT]?)\s*(?i:flops?)?\s*$")
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_flops(text: str | None) -> float | None:
    """A FLOPs count: 50M → 5e7, 1.2G → 1.2e9, 3e7 → 3e7 (fvcore: 1 multiply-add = 1 flop)."""
    if text is None:
        return None
    match = _FLOPS.match(str(text))
    if not match:
        raise ValueError(
            f"--max-flops {text!r} is invalid: use a number of FLOPs like 50M, 1.2G or 5e7"
        )
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"--max-flops {text!r} is invalid: it must be > 0")
    return value


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
    max_flops: float | None = None  # skip points above this many fvcore FLOPs (proxy size)

    def proxy_config(self):
        from scaler.train import proxy_config

        return proxy_config(self.proxy, **dict(self.proxy_overrides))

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
        given = {
            "--widths": self.widths,
            "--depths": self.depths,
            "--resolutions": self.resolutions,
            "--baselines": self.baselines,
        }
        if self.kind == "width-by-baseline":
            allowed = {"--widths", "--baselines"}
        elif self.kind == "single":
            if not self.dims:
                raise ValueError("--dim is missing: give width, depth, resolution or all")
            for d in self.dims:
                if d not in DIMENSIONS:
                    raise ValueError(
                        f"--dim {d!r} is unknown: valid dimensions are {', '.join(DIMENSIONS)}"
                    )
            allowed = {f"--{d}s" for d in self.dims}
        else:
            allowed = set()
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
        if self.kind == "compound":
            if self.coefficients is None:
                raise ValueError("--coefficients is missing: give a file written by scaler export")
            path = Path(self.coefficients)
            if not path.is_file():
                raise ValueError(f"--coefficients {str(path)!r} is invalid: no such file")
            if not isinstance(self.phi_max, int) or not 0 <= self.phi_max <= MAX_PHI:
                raise ValueError(
                    f"--phi-max {self.phi_max} is invalid: it must be an integer in 0..{MAX_PHI}"
                )
        if not 1 <= self.seeds <= 100:
            raise ValueError(f"--seeds {self.seeds} is invalid: it must be in 1..100")
        if self.max_flops is not None and not (
            math.isfinite(self.max_flops) and self.max_flops > 0
        ):
            raise ValueError(f"--max-flops {self.max_flops} is invalid: it must be > 0")
        self.proxy_config()  # raises on unknown presets / invalid overrides
        return self

    def compound_coefficients(self):
        """The Coefficients of a compound sweep (ValueError naming --coefficients if unreadable)."""
        from scaler.scaling import load_coefficients

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
        else:
            out["coefficients"] = dataclasses.asdict(self.compound_coefficients())
            out["phi_max"] = self.phi_max
        return out


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
            "network_key": self.network_key,
        }


def fmt_flops(x: float) -> str:
    """4633536 → "4.63 MFLOPs" (3 significant digits, the largest fitting unit)."""
    for unit, scale_ in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale_:
            return f"{x / scale_:.3g} {unit}FLOPs"
    return f"{x:.3g} FLOPs"


def num(x: float) -> str:
    """A multiplier as in labels: 1 → "1.0", 1.25 → "1.25"."""
    s = f"{x:g}"
    return s if any(c in s for c in ".e") else s + ".0"


def _raw_points(cfg: SweepConfig) -> list[tuple[str, str, float, float, float, str, float, Any]]:
    """(series, label, d, w, r, value_name, value, phi) for every point, in sweep order."""
    rows: list[tuple[str, str, float, float, float, str, float, Any]] = []
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


def plan(cfg: SweepConfig, num_classes: int, max_pixels: int | None) -> list[Point]:
    """Every point of a sweep realized at the proxy resolution, with skip reasons (no training).

    Points repeated within one series (the same multipliers twice) are listed once.
    """
    from scaler.complexity import cost_model

    base_px = cfg.proxy_config().base_pixels
    points: dict[str, Point] = {}
    for series, label, d, w, r, name, value, phi in _raw_points(cfg):
        pixels = round_pixels(r, base_px)
        reason = ""
        if pixels < MIN_PIXELS or pixels > MAX_PIXELS:
            reason = f"needs {pixels} px, outside {MIN_PIXELS}..{MAX_PIXELS} px"
        elif max_pixels is not None and pixels > max_pixels:
            reason = f"needs {pixels} px but the data serve at most {max_pixels} px"
        spec = scale(d, w, base_resolution=base_px, pixels=min(max(pixels, MIN_PIXELS), MAX_PIXELS))
        flops = int(cost_model(spec, num_classes).flops(spec.pixels))
        if not reason and cfg.max_flops is not None and flops > cfg.max_flops:
            reason = f"{fmt_flops(flops)} exceed --max-flops {fmt_flops(cfg.max_flops)}"
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
class PreparedSweep:
    """A validated sweep, ready to run: nothing has been written yet."""

    cfg: SweepConfig
    source: Any
    study_name: str
    storage_url: str
    points: tuple[Point, ...]
    stored: dict[str, Any]


def default_study_name(cfg: SweepConfig, fingerprint: str) -> str:
    """sweep-<kind>[-<dims>]-<data>-<proxy>-<hash6 of data, proxy (and coefficients)>."""
    data = re.sub(r"[^A-Za-z0-9]+", "-", cfg.data.split(":", 1)[0]).strip("-")
    if ":" in cfg.data:
        data += "-" + re.sub(r"[^A-Za-z0-9]+", "-", Path(cfg.data.split(":", 1)[1]).name)[:24]
    proxy = dataclasses.asdict(cfg.proxy_config())
    for key in _SPEED_ONLY:
        proxy.pop(key, None)
    extra = ""
    kind = cfg.kind
    if cfg.kind == "single":
        kind += "-" + "-".join(cfg.dims)
    if cfg.kind == "compound":
        extra = json.dumps(dataclasses.asdict(cfg.compound_coefficients()), sort_keys=True)
    digest = hashlib.sha1(
        f"{fingerprint}|{json.dumps(proxy, sort_keys=True)}|{extra}".encode()
    ).hexdigest()[:6]
    return f"sweep-{kind}-{data}-{cfg.proxy}-{digest}"


def prepare(
    cfg: SweepConfig, study: str | None = None, storage: str | None = None
) -> PreparedSweep:
    """Validate everything a sweep needs before any study is created or changed."""
    cfg.validate()
    source, name, url = S.resolve_target(cfg, study, storage, default_study_name)
    stored = cfg.stored()
    stored["data_fingerprint"] = source.fingerprint()
    points = tuple(plan(cfg, source.num_classes, source.max_pixels))
    return PreparedSweep(cfg, source, name, url, points, stored)


def open_sweep_study(p: PreparedSweep):
    """Create the study, or load it and refuse a different configuration."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the CLI prints what matters itself
    storage = S.open_storage(p.storage_url)
    if p.study_name in S.study_names(storage):
        study = optuna.load_study(study_name=p.study_name, storage=storage)
        S.refuse_changed_config(study, "sweep", p.stored)
        return study
    try:
        study = optuna.create_study(
            study_name=p.study_name,
            storage=storage,
            direction="maximize",
            # Every trial is a queued point; the sampler never proposes one.
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
    except optuna.exceptions.DuplicatedStudyError:  # another worker created it first
        return open_sweep_study(p)
    study.set_user_attr("kind", "sweep")
    study.set_user_attr("sweep", p.cfg.kind)
    study.set_user_attr("versions", S.versions())
    study.set_user_attr("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    if p.cfg.kind == "compound":
        study.set_user_attr("coefficients_file", str(p.cfg.coefficients))
    # Written last: a second process opening the study meanwhile waits for it.
    study.set_user_attr("config", p.stored)
    return study


def ensure_sweep_queue(study, points: tuple[Point, ...] | list[Point]) -> int:
    """Enqueue every trainable point no trial covers, record skipped ones; returns enqueued.

    A point is covered by a waiting, running, complete or pruned trial, or by a failure with a
    recorded reason; a trial lost to Ctrl-C or a crash leaves it uncovered. A skipped point is
    recorded once per reason, and does not cover its point (a higher cap trains it later).
    """
    import optuna
    from optuna.trial import TrialState

    covered: set[str] = set()
    skipped: set[tuple[str, str]] = set()
    for t in study.get_trials(deepcopy=False):
        pid = t.user_attrs.get("point")
        if pid is None:
            continue
        if t.user_attrs.get("status") == "skipped":
            skipped.add((pid, t.user_attrs.get("reason", "")))
        elif t.state != TrialState.FAIL or t.user_attrs.get("status") == "failed":
            covered.add(pid)
    kind = study.user_attrs.get("sweep", "")
    added = 0
    for p in points:
        if p.id in covered:
            continue
        if p.skip:
            if (p.id, p.skip) not in skipped:
                attrs = {**p.attrs(kind), "status": "skipped", "reason": p.skip}
                study.add_trial(
                    optuna.trial.create_trial(
                        state=TrialState.PRUNED, params={}, distributions={}, user_attrs=attrs
                    )
                )
            continue
        study.enqueue_trial(
            {"depth": p.depth, "width": p.width, "resolution": p.resolution},
            user_attrs=p.attrs(kind),
        )
        added += 1
    return added


class SweepObjective:
    """The optuna objective of a sweep: count, dedupe, train with seeds, record."""

    def __init__(self, p: PreparedSweep, progress: S.ProgressFn | None = None):
        self.p = p
        self.points = {pt.id: pt for pt in p.points}
        self.proxy = p.cfg.proxy_config()
        self.progress = progress
        self.counter = (0, 0)  # (done, total) for progress events

    def __call__(self, trial) -> float:
        import optuna

        from scaler.complexity import count

        point = self.points.get(trial.user_attrs.get("point", ""))
        if point is None or point.skip:
            # A point the current settings do not train (queued under a higher cap, or a trial
            # the sampler made up when another worker took the last queued point).
            trial.set_user_attr("status", "skipped")
            reason = point.skip if point is not None else "not a queued point of this sweep"
            trial.set_user_attr("reason", reason)
            raise optuna.TrialPruned(reason)
        for name in ("depth", "width", "resolution"):
            v = getattr(point, name)
            trial.suggest_float(name, min(v, 0.01), max(v, MAX_MULTIPLIER))
        spec = scale(
            point.depth,
            point.width,
            base_resolution=self.proxy.base_pixels,
            pixels=point.pixels,
        )
        cost = count(spec, self.p.source.num_classes)
        for key, value in (
            ("flops", cost.flops),
            ("params", cost.params),
            ("activations", cost.activations),
            ("channels", [s.channels for s in spec.stages]),
        ):
            trial.set_user_attr(key, value)
        reused = S.reuse_twin(trial, point.network_key, self.p.cfg.seeds)
        if reused is not None:
            return reused
        info = {**point.attrs(self.p.cfg.kind), "params": cost.params}
        self._emit("trial_start", trial.number, info)
        with S.recorded_outcome(trial):
            return S.train_point(
                trial, spec, self.p.source, self.proxy, self.p.cfg.seeds, False, self._emit
            )

    def _emit(self, kind: str, number: int, info: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(S.Event(kind, number, *self.counter, info))


# ----------------------------------------------------------------------------------------------
# reading a sweep back
# ----------------------------------------------------------------------------------------------

SWEEP_COLUMNS = (
    "sweep",
    "point",
    "depth",
    "width",
    "resolution",
    "value_name",
    "point_value",
    "phi",
    "channels",
)


def sweep_frame(study):
    """All trials of a sweep, one row each (the search's columns plus the sweep's).

    A skipped record whose point was trained later (under a higher cap) is left out: the
    point has its result now; of several skipped records of one point (runs with different
    caps) only the latest is kept.
    """
    frame = S.trials_frame(study)
    attrs = {t.number: t.user_attrs for t in study.get_trials(deepcopy=False)}
    for col in SWEEP_COLUMNS:
        frame[col] = [attrs[n].get(col) for n in frame["number"]] if len(frame) else []
    if frame.empty:
        return frame
    done = set(frame.loc[~frame["status"].isin(["skipped", "lost"]), "point"])
    skipped = frame["status"] == "skipped"
    older = skipped & frame[skipped].duplicated("point", keep="last").reindex(
        frame.index, fill_value=False
    )
    stale = (skipped & frame["point"].isin(done)) | older
    return frame[~stale].reset_index(drop=True)


@dataclass(frozen=True)
class SweepResult:
    """What a sweep leaves: where it is stored, its trials and the points it skipped."""

    study_name: str
    storage: str  # masked
    config: dict[str, Any]
    frame: Any  # pandas DataFrame, one row per trial (sweep_frame)
    noise: S.Noise

    @property
    def points(self):
        """Finished points (trained or reused), in trial order."""
        f = self.frame
        return f[(f["state"] == "COMPLETE") & f["top1_mean"].notna()]

    @property
    def skipped(self):
        """Points not trained, with the reason."""
        return self.frame[self.frame["status"] == "skipped"]


def sweep_result(study, storage_url: str) -> SweepResult:
    frame = sweep_frame(study)
    return SweepResult(
        study_name=study.study_name,
        storage=S.mask_url(storage_url),
        config=study.user_attrs.get("config", {}),
        frame=frame,
        noise=S.noise(frame),
    )


def run_worker(p: PreparedSweep, progress: S.ProgressFn | None = None):
    """Work on the sweep until no queued point is left; returns the study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = open_sweep_study(p)
    study.set_user_attr("max_flops", p.cfg.max_flops)  # the latest run's cap, for reports
    objective = SweepObjective(p, progress)
    # The search's loop: lost points are queued again and stale trials of dead workers retried.
    S.work_queue(study, objective, lambda: ensure_sweep_queue(study, p.points))
    return study


def run_sweep(
    config: SweepConfig,
    study: str | None = None,
    storage: str | None = None,
    progress: S.ProgressFn | None = None,
) -> SweepResult:
    """Run (or resume) a sweep; the Python entry point behind ``scaler sweep``."""
    p = prepare(config, study, storage)
    return sweep_result(run_worker(p, progress), p.storage_url)


def load_sweep(name: str, storage: str | None = None) -> SweepResult:
    """A stored sweep's result (ValueError when missing or not a sweep)."""
    url = storage or S.default_storage(name)
    st = S.load_study(name, url)
    if st.user_attrs.get("kind") != "sweep":
        raise ValueError(f"study {name!r} is not a scaler sweep")
    return sweep_result(st, url)
