"""The export: coefficients with provenance and the scaled family, its schema, writing it from a
study's result, reading it back (the file is read and parsed once), and building a member.

An export (``scaler export``, schema version :data:`EXPORT_VERSION`) holds the coefficients
and per member φ one :class:`Member`: multipliers, the realized network (stem, per-stage channels
and layers, head, its rounding), pixels, parameters, MACs, dropout and drop-path, a ``build``
section with the exact arguments for timm, torchvision, Keras and the official TensorFlow code
(:mod:`scaler.interop`), and with ``--measure-latency`` its measured latency
(:mod:`scaler.latency_runs`).

A family of another base (``--base``) states it at the top of the file (``base``, and for a
stage-table file ``base_table``: the whole table), exactly as a study's configuration does, and
its members carry no ``build`` section: the other libraries' EfficientNet builders cannot make
it, and ``scaler build`` (or ``scaler.build_member``) builds it here. An export without ``base``
is a family of EfficientNet-B0.

Files of version 1 (scaler 0.1–0.2), and hand-written files holding only ``coefficients``,
still load: their members are recomputed from the coefficients and checked against the
parameter counts the file states. The network math is :mod:`scaler.scaling`'s.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scaler import bases
from scaler.bases import EFFICIENTNET_B0, Base
from scaler.complexity import cost_model, param_count
from scaler.files import check_out_file, write_atomic
from scaler.interop import build_arguments
from scaler.records import CANDIDATE_ROLES
from scaler.scaling import (
    MAX_COEFFICIENT,
    MAX_PHI,
    Coefficients,
    check_buildable,
    family,
    member,
)
from scaler.spec import B0_RESOLUTION, CHANNEL_DIVISOR, Spec, Stage

# The schema `scaler export` writes; 1 is what scaler 0.1–0.2 wrote, still read. A file
# without the key holds hand-written coefficients (read as version 1).
EXPORT_VERSION = 2
EXPORT_VERSIONS = (1, EXPORT_VERSION)
FORMATS = ("json", "yaml")
MACS_UNIT = "multiply-adds counted by fvcore (which calls them FLOPs); 2 ops each elsewhere"
ROUNDING = {
    "channels": "nearest multiple of divisor to channels*w, at least divisor, "
    "+divisor when under round_limit*channels*w",
    "round_limit": 0.9,
    "layers": "ceil(layers*d)",
    "pixels": "floor(r*base_pixels + 0.5)",
}
DEFAULT_PHI_MAX = 7  # the family a file without one is read as (what `scaler export` writes)


# -- the schema: a member and its network ------------------------------------------------------


@dataclass(frozen=True)
class Network:
    """The realized network: what the multipliers round to."""

    stem: int
    stages: tuple[Stage, ...]
    head: int
    divisor: int = CHANNEL_DIVISOR

    head_rule: str = "scale"  # the base's head rule (MobileNetV2's grows only)

    @classmethod
    def of(cls, spec: Spec) -> Network:
        base = spec.base
        return cls(spec.stem, spec.stages, spec.head, base.divisor, base.head.width)

    def to_dict(self) -> dict[str, Any]:
        rounding = dict(ROUNDING)
        if self.head_rule == "grow":
            rounding["head"] = "channels rule applied to head*max(1, w): never under the base's"
        return {
            "stem": self.stem,
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "head": self.head,
            "divisor": self.divisor,
            "rounding": rounding,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Network:
        stages = tuple(Stage(**s) for s in data["stages"])
        return cls(int(data["stem"]), stages, int(data["head"]), int(data["divisor"]))


@dataclass(frozen=True)
class Member:
    """One member φ of an exported family, as the export stores it."""

    phi: int
    depth: float
    width: float
    resolution: float  # multiplier of base_pixels
    base_pixels: int
    pixels: int
    layers: int
    params: int
    macs: int  # fvcore's "FLOPs": one multiply-add each
    nominal_cost: float  # (α·β²·γ²)^φ
    measured_cost: float  # macs ÷ the base's
    dropout: float  # before the classifier
    drop_path: float  # stochastic depth rate: block i of N drops with drop_path·i/N
    network: Network
    num_classes: int = 1000
    limit: str = ""  # why scaler's builder refuses this member; "" when it builds
    base: Base = EFFICIENTNET_B0  # stored once, at the top of the export, not per member

    def spec(self) -> Spec:
        """The Spec this member realizes (multipliers, pixels and rounded sizes as stored)."""
        n = self.network
        return Spec(
            self.depth,
            self.width,
            self.resolution,
            self.base_pixels,
            self.pixels,
            n.stem,
            n.stages,
            n.head,
            self.dropout,
            self.base,
        )

    @property
    def build(self) -> dict[str, dict[str, Any]]:
        """Per library, the call and exact arguments that build this member there."""
        return build_arguments(self)

    def to_dict(self) -> dict[str, Any]:
        """The member as stored in an export (plain JSON/YAML types)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "base"}
        data["network"] = self.network.to_dict()
        if self.base == EFFICIENTNET_B0:  # the other libraries build EfficientNet only
            data["build"] = self.build
        if not self.limit:
            del data["limit"]  # named only where there is one, as in version 1
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Base = EFFICIENTNET_B0) -> Member:
        fields = {f.name for f in dataclasses.fields(cls)} - {"network", "base"}
        kwargs = {k: v for k, v in data.items() if k in fields}
        network = Network.from_dict(data["network"])
        network = dataclasses.replace(network, head_rule=base.head.width)
        return cls(network=network, base=base, **kwargs)


def family_members(
    coefficients: Coefficients,
    phi_max: int,
    base_pixels: int,
    num_classes: int = 1000,
    base: Base = EFFICIENTNET_B0,
) -> list[Member]:
    """The members φ = 0..phi_max of these coefficients (exact counts; nothing is built)."""
    members = []
    for row in family(coefficients, phi_max, base_pixels, num_classes, base):
        spec, _ = member(coefficients, row.phi, base_pixels, base)
        members.append(
            Member(
                phi=row.phi,
                depth=row.depth,
                width=row.width,
                resolution=row.resolution,
                base_pixels=base_pixels,
                pixels=row.pixels,
                layers=row.layers,
                params=row.params,
                macs=row.flops,
                nominal_cost=row.nominal_cost,
                measured_cost=row.measured_cost,
                dropout=spec.dropout,
                drop_path=base.drop_connect,
                network=Network.of(spec),
                num_classes=num_classes,
                limit=row.limit,
                base=base,
            )
        )
    return members


def family_payload(
    coefficients: Coefficients,
    phi_max: int,
    cost_pixels: int,
    num_classes: int = 1000,
    base: Base = EFFICIENTNET_B0,
) -> dict[str, Any]:
    """The schema's own part of an export: version, coefficients, units, the members.

    A base other than EfficientNet-B0 is stated as a study's configuration states it.
    """
    members = family_members(coefficients, phi_max, cost_pixels, num_classes, base)
    return {
        "scaler_export": EXPORT_VERSION,
        "coefficients": dataclasses.asdict(coefficients),
        "phi_base": 2.0,
        "base_resolution": cost_pixels,  # the cost pixels (its name in schema 1 and 2: kept)
        "macs_unit": MACS_UNIT,
        **bases.stored(base),
        "family": [m.to_dict() for m in members],
    }


# -- writing: a study's chosen candidate with provenance ---------------------------------------


def study_payload(res, versions: dict, phi_max: int = 7, base: Base | None = None) -> dict:
    """The export of a search's chosen candidate (``res``: a
    :class:`scaler.searches.SearchResult`): coefficients, provenance (the proxy regime that
    chose it), the search's statistics and the family φ = 0..phi_max."""
    best, cfg = res.chosen, res.config
    if best is None:
        raise ValueError(f"study {res.study_name!r} has no finished candidate to export")
    phi = float(cfg["phi"])
    coeffs = Coefficients.from_multipliers(best["alpha"], best["beta"], best["gamma"], phi)
    net = bases.from_config(cfg)
    if base is not None and base != net:
        raise ValueError(
            f"--base {base.name} does not match study {res.study_name!r}, a search of "
            f"{net.name}: leave --base out or give --base {net.name}"
        )
    schema = family_payload(coeffs, phi_max, int(cfg["cost_pixels"]), base=net)
    family_rows = schema.pop("family")
    payload = {
        **schema,
        "at_budget": _at_budget(best, float(cfg["budget"]), phi),
        "provenance": {
            "study": res.study_name,
            "storage": res.storage,
            **{k: cfg.get(k) for k in ("data", "proxy", "seeds", "base_seeds", "constraint")},
            # --upsample since 0.7; a study stored before it has none (scaler.studies says
            # what it ran with: off, or bicubic for an imagefolder).
            **({"upsample": cfg["upsample"]} if "upsample" in cfg else {}),
            "sampler": cfg.get("sampler"),
            "versions": versions,
            "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "statistics": _statistics(res),
        "family": family_rows,
    }
    # Plain Python types only (pandas hands out numpy scalars), so JSON and YAML agree.
    return json.loads(json.dumps(payload, default=lambda o: o.item()))


def _at_budget(best, budget: float, phi: float) -> dict[str, Any]:
    """The chosen candidate at the search's budget, as its trial recorded it."""
    seeds = int(best["seeds"] or 1)
    return {
        "budget": budget,
        "phi": phi,
        "alpha": float(best["alpha"]),
        "beta": float(best["beta"]),
        "gamma": float(best["gamma"]),
        "cost_pixels": int(best["cost_pixels"]),
        "measured_cost": float(best["cost_ratio"]),
        "nominal_cost": float(best["nominal_cost"]),
        "top1_mean": float(best["top1_mean"]),
        "top1_std": None if seeds < 2 else float(best["top1_std"]),
        "balanced_mean": _optional(best.get("balanced_mean")),
        "seeds": seeds,
        "trial": int(best["number"]),
    }


def _optional(value) -> float | None:
    return None if value is None or value != value else float(value)  # NaN: not stored


def _statistics(res) -> dict:
    """The search's noise and possibly-best set and its confirmation, for the export."""
    board = res.board[res.board["role"].isin(CANDIDATE_ROLES)]
    rates = getattr(res, "rates", None) or {}
    out = {
        "chosen_by": "confirmation" if res.confirmation.chosen is not None else "search",
        "metric": getattr(res, "metric", "top1"),  # what ranked and chose: top1 or balanced
        # The floor top-1 is read against (None: unknown for this study).
        "class_rates": {split: r.to_dict() for split, r in rates.items()} or None,
        "search_noise": {
            "sigma": res.noise.sigma if res.noise.dof else None,
            "dof": res.noise.dof,
            "runs": res.noise.runs,
            "usable": res.noise.usable,
            "rule": res.noise.rule,
        },
        "possibly_best_trials": (
            [int(n) for n in board.loc[board["possibly_best"], "number"]]
            if res.noise.usable
            else None
        ),
        "confirmation": res.confirmation.to_dict(),
    }
    if getattr(res, "surface", None) is not None:  # the fitted optimum beside the chosen one
        out["response_surface"] = res.surface.export_dict(out["chosen_by"])
    return out


def check_format(fmt: str | None) -> str | None:
    """``fmt`` if None or one of FORMATS, else a one-line ValueError naming --format."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is invalid: valid values are {', '.join(FORMATS)}")
    return fmt


def write_study(
    res,
    versions: dict,
    out: Path | None = None,
    fmt: str | None = None,
    phi_max: int = 7,
    base: Base | None = None,
    extra=None,
) -> Path:
    """Write :func:`study_payload` (then ``extra(payload)``, when given) to ``out``, by default
    ``<study>.coefficients.json`` (or ``.yaml``); its format follows ``fmt``, else the suffix."""
    check_format(fmt)
    payload = study_payload(res, versions, phi_max, base)
    payload = extra(payload) if extra else payload
    out = check_out_file(out or Path(f"{res.study_name}.coefficients.{fmt or 'json'}"))
    fmt = fmt or ("yaml" if _is_yaml(out) else "json")
    if fmt == "yaml":
        import yaml

        text = yaml.safe_dump(payload, sort_keys=False)
    else:
        text = json.dumps(payload, indent=2) + "\n"
    return write_atomic(out, text)


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


# -- reading: the file once, then everything from the parsed mapping ---------------------------


def read(path: str | Path, option: str | None = None) -> dict:
    """The mapping in a file written by ``scaler export`` (JSON, or YAML by suffix), read and
    parsed once. Refused with one line (prefixed by ``option`` when given) when it is
    missing, unparsable, or of a schema version this scaler does not read (EXPORT_VERSIONS)."""
    p = Path(path)
    try:
        if not p.is_file():
            raise ValueError(f"coefficients file {str(p)!r} does not exist or is not a file")
        data = _parse(p)
        _check_version(data, p)
    except ValueError as e:
        raise ValueError(f"{option}: {e}" if option else str(e)) from None
    return data


def _parse(p: Path) -> dict:
    try:
        text = p.read_text()
        if _is_yaml(p):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # json, yaml and decoding errors alike
        raise ValueError(f"coefficients file {str(p)!r} cannot be parsed: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"coefficients file {str(p)!r} is not a scaler export (not a mapping)")
    return data


def _check_version(data: dict, p: Path) -> None:
    version = data.get("scaler_export", 1)
    if isinstance(version, bool) or version not in EXPORT_VERSIONS:
        valid = ", ".join(str(v) for v in EXPORT_VERSIONS)
        raise ValueError(
            f"coefficients file {str(p)!r} has export schema version {version!r} "
            f"(scaler_export): this scaler reads versions {valid}"
        )


@dataclass(frozen=True)
class Header:
    """What an export states above its members: coefficients, cost pixels and base."""

    path: str
    version: int
    coefficients: Coefficients
    cost_pixels: int  # the file's "base_resolution"
    base: Base = EFFICIENTNET_B0


def header(data: dict, path: str | Path) -> Header:
    """The :class:`Header` of a mapping :func:`read` returned (one-line ValueErrors)."""
    try:
        c = data["coefficients"]
        coeffs = Coefficients(float(c["alpha"]), float(c["beta"]), float(c["gamma"]))
        cost_pixels = int(data.get("base_resolution", B0_RESOLUTION))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(
            f"coefficients file {str(path)!r} is not a scaler export "
            f"(needs coefficients.alpha/beta/gamma): {e}"
        ) from None
    try:
        base = bases.from_config(data)
    except ValueError as e:
        raise ValueError(f"--coefficients {str(path)!r}: {e}") from None
    return Header(str(path), int(data.get("scaler_export", 1)), coeffs, cost_pixels, base)


def read_header(path: str | Path, option: str | None = None) -> Header:
    """An export's :class:`Header`, the file read once (``option`` prefixes read errors)."""
    return header(read(path, option), path)


def load_coefficients(path: str | Path) -> tuple[Coefficients, int]:
    """(coefficients, the base's cost pixels) of a file written by ``scaler export``."""
    h = read_header(path)
    return h.coefficients, h.cost_pixels


@dataclass(frozen=True)
class Export:
    """An export file as read: its coefficients and members (version 1 files are completed)."""

    path: str
    version: int
    coefficients: Coefficients
    cost_pixels: int  # the file's "base_resolution"
    members: tuple[Member, ...]
    base: Base = EFFICIENTNET_B0

    def member(self, phi: float) -> Member:
        """Member φ; a one-line ValueError naming --phi and the exported φ otherwise."""
        for m in self.members:
            if m.phi == phi:
                return m
        phis = [m.phi for m in self.members]
        valid = f"{phis[0]}..{phis[-1]}" if phis == list(range(phis[0], phis[-1] + 1)) else phis
        raise ValueError(
            f"--phi {phi:g} is outside the family exported in {self.path!r}: valid φ are {valid}"
        )


def load_export(path: str | Path, option: str | None = None) -> Export:
    """Read an export of any schema version this scaler reads: the file once (:func:`read`;
    ``option`` prefixes its errors), then everything from its mapping (:func:`from_data`)."""
    return from_data(read(path, option), path)


def from_data(data: dict, path: str | Path) -> Export:
    """The :class:`Export` of a mapping :func:`read` returned from ``path``."""
    h = header(data, path)
    rows = data.get("family") or []
    if h.version >= 2:
        try:
            members = tuple(Member.from_dict(r, h.base) for r in rows)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"coefficients file {str(path)!r} has a malformed member: {e}"
            ) from None
    else:
        members = _complete(h, rows)
    return Export(h.path, h.version, h.coefficients, h.cost_pixels, members, h.base)


def _complete(h: Header, rows: list) -> tuple[Member, ...]:
    """The members of a version-1 file (or of bare coefficients), recomputed and checked."""
    phi_max = max((int(r["phi"]) for r in rows), default=DEFAULT_PHI_MAX)
    members = tuple(family_members(h.coefficients, phi_max, h.cost_pixels, base=h.base))
    for row in rows:
        m = members[int(row["phi"])]
        if "params" in row and int(row["params"]) != m.params:
            raise ValueError(
                f"coefficients file {h.path!r} states {int(row['params']):,} parameters at "
                f"φ = {m.phi}, but its coefficients give {m.params:,}: it was not written by "
                "this scaler's rounding rules"
            )
    return members


# -- an export on the command line: its base, its coefficients, a member's network -------------


def choose_base(base: Base | None, coefficients: str | Path | Header | None = None) -> Base:
    """``--base`` (default EfficientNet-B0), or the base of ``--coefficients`` (a file, or its
    :class:`Header` already read); both must agree."""
    if coefficients is None:
        return base or EFFICIENTNET_B0
    h = _as_header(coefficients)
    if base is not None and base != h.base:
        raise ValueError(
            f"--base {base.name} does not match --coefficients {h.path!r}, "
            f"a family of {h.base.name}: leave --base out or give --base {h.base.name}"
        )
    return h.base


def _as_header(coefficients: str | Path | Header | Export) -> Header | Export:
    if isinstance(coefficients, Header | Export):
        return coefficients
    return read_header(coefficients, "--coefficients")


def family_coefficients(
    alpha: float | None,
    beta: float | None,
    gamma: float | None,
    coefficients: str | Path | Header | None = None,
) -> tuple[Coefficients, int]:
    """(coefficients, cost pixels) from ``--alpha/--beta/--gamma`` or an export."""
    if coefficients is not None:
        if any(v is not None for v in (alpha, beta, gamma)):
            raise ValueError("--coefficients cannot be combined with --alpha/--beta/--gamma")
        h = _as_header(coefficients)
        return h.coefficients, h.cost_pixels
    given = (("alpha", alpha), ("beta", beta), ("gamma", gamma))
    missing = [n for n, v in given if v is None]
    if missing:
        raise ValueError(
            f"--{missing[0]} is missing: give --alpha, --beta and --gamma, or --coefficients FILE"
        )
    for name, value in given:
        if not (0 < value < MAX_COEFFICIENT):
            raise ValueError(
                f"--{name} {value} is invalid: it must be a number in (0, {MAX_COEFFICIENT:g})"
            )
    return Coefficients(alpha, beta, gamma), B0_RESOLUTION


def member_spec(
    coefficients: str | Path | Header,
    phi: float = 1.0,
    base_pixels: int | None = None,
    base: Base | None = None,
) -> Spec:
    """The network at any real φ of an export's coefficients (``scaler info --coefficients``),
    at ``base_pixels`` (default: the file's); refused past the builder's limits, pointing at
    the family row that shows its cost, and past MAX_NETWORK_PARAMS."""
    h = _as_header(coefficients)
    net = choose_base(base, h)
    spec, limit = member(h.coefficients, phi, base_pixels or h.cost_pixels, net)
    if limit:
        message = f"--phi {phi:g} gives a network past the builder's limit ({limit})"
        if float(phi).is_integer() and 0 <= phi <= MAX_PHI:
            hint = f"scaler family --coefficients {h.path} --phi-max {int(phi)}"
            message += f": `{hint}` shows its cost"
        raise ValueError(message)
    return check_buildable(spec)


# -- building an exported member here ----------------------------------------------------------


def check_member(exp: Export, m: Member) -> Spec:
    """Member ``m``'s Spec, refused past the builder's limits or when the file disagrees with
    itself (its network, its counts and its coefficients must all give the same network)."""
    if m.limit:
        raise ValueError(f"--phi {m.phi} gives a network past the builder's limit ({m.limit})")
    spec = m.spec()
    expected, _ = member(exp.coefficients, m.phi, exp.cost_pixels, exp.base)
    counted = (param_count(spec, m.num_classes), cost_model(spec, m.num_classes).flops_at(m.pixels))
    if expected.key != spec.key or counted != (m.params, m.macs):
        raise ValueError(
            f"coefficients file {exp.path!r} does not agree with itself at φ = {m.phi}: its "
            f"network {spec.key_str} ({m.params:,} parameters, {m.macs:,} MACs stated) against "
            f"{expected.key_str} from its coefficients; export it again"
        )
    return spec


def build_member(export: str | Path | Export, phi: int, num_classes: int | None = None):
    """Member φ of an exported family as a PyTorch module (``scaler.build_member``).

    ``num_classes`` defaults to the export's (1000), whose parameter count the module has.
    """
    from scaler.model import build

    exp = export if isinstance(export, Export) else load_export(export)
    m = exp.member(phi)
    spec = check_member(exp, m)
    return build(spec, m.num_classes if num_classes is None else num_classes)
