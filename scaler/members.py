"""A family member as a record another library can build: the export schema and ``scaler build``.

An export (``scaler export``, schema version :data:`~scaler.scaling.EXPORT_VERSION`) holds the
coefficients and, per member φ, one :class:`Member`: the full-precision multipliers, the realized
network (stem, per-stage channels and layers, head, the rounding that made them), pixels,
parameters, MACs, dropout and drop-path, and a ``build`` section with the exact arguments for
timm, torchvision, Keras and the official TensorFlow code. The libraries take the multipliers
and round them themselves, each with the same rule as scaler (channels to the nearest multiple
of 8, +8 under 90 %; layers up), so only what they would get wrong is given explicitly:

- torchvision's head defaults to 4 × round(320·w), which equals round(1280·w) for B0–B7 only
  (w = 1.44: 1856 against 1840 channels), so ``last_channel`` is always given;
- timm keeps the input size only in its ``pretrained_cfg``, hence ``pretrained_cfg_overlay``;
- Keras and the official code take it as ``default_size`` and ``--input_image_size``.

A family of another base (``--base``) states it at the top of the file (``base``, and for a
stage-table file ``base_table``: the whole table), exactly as a study's configuration does, and
its members carry no ``build`` section: the other libraries' EfficientNet builders cannot make
it, and ``scaler build`` (or ``scaler.build_member``) builds it here. An export without ``base``
is a family of EfficientNet-B0.

Files of version 1 (scaler 0.1–0.2) still load: their members are recomputed from the
coefficients and checked against the parameter counts the file states.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaler import bases
from scaler.bases import EFFICIENTNET_B0, Base
from scaler.complexity import cost_model, param_count
from scaler.scaling import (
    EXPORT_VERSION,
    Coefficients,
    export_base,
    family,
    load_coefficients,
    member,
    read_export,
)
from scaler.spec import CHANNEL_DIVISOR, Spec, Stage

BN_EPS = 1e-3  # the official BatchNorm epsilon (Keras and official TF have it by default)

TARGETS = ("timm", "torchvision", "keras", "tf")
MACS_UNIT = "multiply-adds counted by fvcore (which calls them FLOPs); 2 ops each elsewhere"
ROUNDING = {
    "channels": "nearest multiple of divisor to channels*w, at least divisor, "
    "+divisor when under round_limit*channels*w",
    "round_limit": 0.9,
    "layers": "ceil(layers*d)",
    "pixels": "floor(r*base_pixels + 0.5)",
}
DEFAULT_PHI_MAX = 7  # the family a file without one is read as (what `scaler export` writes)


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
    base_pixels: int,
    num_classes: int = 1000,
    base: Base = EFFICIENTNET_B0,
) -> dict[str, Any]:
    """The schema's own part of an export: version, coefficients, units, the members.

    A base other than EfficientNet-B0 is stated as a study's configuration states it.
    """
    members = family_members(coefficients, phi_max, base_pixels, num_classes, base)
    return {
        "scaler_export": EXPORT_VERSION,
        "coefficients": dataclasses.asdict(coefficients),
        "phi_base": 2.0,
        "base_resolution": base_pixels,
        "macs_unit": MACS_UNIT,
        **bases.stored(base),
        "family": [m.to_dict() for m in members],
    }


# ----------------------------------------------------------------------------------------------
# the build section
# ----------------------------------------------------------------------------------------------


def build_arguments(m: Member) -> dict[str, dict[str, Any]]:
    """The call and its exact keyword arguments in timm, torchvision, Keras and official TF."""
    d, w, p = m.depth, m.width, m.pixels
    return {
        "timm": {
            # timm.create_model("efficientnet_b0", channel_multiplier=...) fails: the variant
            # passes its own multipliers. The variant here only names the pretrained config.
            "call": "timm.models.efficientnet._gen_efficientnet",
            "kwargs": {
                "variant": "efficientnet_b0",
                "channel_multiplier": w,
                "depth_multiplier": d,
                "pretrained": False,
                "num_classes": m.num_classes,
                "drop_rate": m.dropout,
                "drop_path_rate": m.drop_path,
                "bn_eps": BN_EPS,
                "pretrained_cfg_overlay": {"input_size": [3, p, p], "test_input_size": [3, p, p]},
            },
        },
        "torchvision": {
            "call": "torchvision.models.efficientnet.EfficientNet",
            "config": {
                "call": "torchvision.models.efficientnet._efficientnet_conf",
                "kwargs": {"arch": "efficientnet_b0", "width_mult": w, "depth_mult": d},
            },
            # last_channel: torchvision's default head is 4 × round(320·w), not round(1280·w).
            "kwargs": {
                "dropout": m.dropout,
                "stochastic_depth_prob": m.drop_path,
                "num_classes": m.num_classes,
                "last_channel": m.network.head,
            },
            # torchvision's B0–B4 keep PyTorch's eps of 1e-5; the official code has 1e-3.
            "norm_layer": {"call": "torch.nn.BatchNorm2d", "kwargs": {"eps": BN_EPS}},
            "input_size": p,
        },
        "keras": {
            "call": "keras.src.applications.efficientnet.EfficientNet",
            "kwargs": {
                "width_coefficient": w,
                "depth_coefficient": d,
                "default_size": p,
                "dropout_rate": m.dropout,
                "drop_connect_rate": m.drop_path,
                "depth_divisor": m.network.divisor,
                "weights": None,
                "classes": m.num_classes,
            },
        },
        "tf": {
            "call": "efficientnet_builder.build_model",
            "source": "github.com/tensorflow/tpu models/official/efficientnet",
            "kwargs": {
                "model_name": "efficientnet-b0",
                "override_params": {
                    "width_coefficient": w,
                    "depth_coefficient": d,
                    "dropout_rate": m.dropout,
                    "survival_prob": 1.0 - m.drop_path,
                    "depth_divisor": m.network.divisor,
                    "num_classes": m.num_classes,
                },
            },
            "flags": {"input_image_size": p},
        },
    }


def _py(value: Any) -> str:
    """A value as Python source: lists as tuples (timm's input sizes are tuples)."""
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}={_py(v)}" for k, v in value.items()) + ")"
    return repr(value)


def _call(name: str, kwargs: dict[str, Any], first: str = "", indent: str = "") -> str:
    """``name(first, k=v, ...)``, one argument a line; long dict arguments one key a line."""
    args = [first] if first else []
    for k, v in kwargs.items():
        flat = f"{k}={_py(v)}"
        if isinstance(v, dict) and len(flat) > 80:
            flat = f"{k}=" + _call("dict", v, indent=indent + "    ")
        args.append(flat)
    inner = "".join(f"{indent}    {a},\n" for a in args)
    return f"{name}(\n{inner}{indent})"


def snippet(m: Member, target: str) -> str:
    """The few lines of Python that build member ``m`` in ``target`` (one of TARGETS)."""
    check_target(target, m.base)
    b = build_arguments(m)[target]
    module, name = b["call"].rsplit(".", 1)
    head = f"# EfficientNet φ = {m.phi}: {m.params:,} parameters, input 3x{m.pixels}x{m.pixels}"
    if target == "timm":
        kwargs = dict(b["kwargs"])
        variant = _py(kwargs.pop("variant"))
        lines = [f"from {module} import {name}", "", "model = " + _call(name, kwargs, variant)]
    elif target == "torchvision":
        conf, norm = b["config"], b["norm_layer"]
        _, cname = conf["call"].rsplit(".", 1)
        ckw = dict(conf["kwargs"])
        arch = _py(ckw.pop("arch"))
        eps = ", ".join(f"{k}={_py(v)}" for k, v in norm["kwargs"].items())
        lines = [
            "from functools import partial",
            "",
            "import torch",
            f"from {module} import {name}, {cname}",
            "",
            f"blocks, _ = {cname}({arch}, "
            + ", ".join(f"{k}={_py(v)}" for k, v in ckw.items())
            + ")",
            "model = "
            + _call(name, {**b["kwargs"], "norm_layer": None}, "blocks").replace(
                "norm_layer=None", f"norm_layer=partial({norm['call']}, {eps})"
            ),
        ]
    elif target == "keras":
        lines = [f"from {module} import {name}", "", "model = " + _call(name, b["kwargs"])]
    else:
        kwargs = {"training": True, **b["kwargs"]}
        lines = [
            f"# {b['source']}; train with main.py --input_image_size={m.pixels}",
            f"import {module}",
            "",
            "logits, endpoints = " + _call(b["call"], kwargs, "images"),
        ]
    return "\n".join([head, *lines]) + "\n"


def check_target(target: str, base: Base = EFFICIENTNET_B0) -> str:
    """``target`` if another library scaler writes arguments for, else a one-line ValueError."""
    if target not in TARGETS:
        raise ValueError(f"--to {target!r} is invalid: valid targets are {', '.join(TARGETS)}")
    if base != EFFICIENTNET_B0:
        raise ValueError(
            f"--to {target} builds EfficientNet families only, and this export scales "
            f"{base.name}: build it here (scaler build without --to, or scaler.build_member)"
        )
    return target


# ----------------------------------------------------------------------------------------------
# reading an export, and building a member from it
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """An export file as read: its coefficients and members (version 1 files are completed)."""

    path: str
    version: int
    coefficients: Coefficients
    base_pixels: int
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


def load_export(path: str | Path) -> Export:
    """Read an export of any schema version this scaler reads (see :func:`read_export`)."""
    data = read_export(path)
    coeffs, pixels = load_coefficients(path)
    base = export_base(path)
    version = int(data.get("scaler_export", 1))
    rows = data.get("family") or []
    if version >= 2:
        try:
            members = tuple(Member.from_dict(r, base) for r in rows)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"coefficients file {str(path)!r} has a malformed member: {e}"
            ) from None
    else:
        members = _complete(path, coeffs, pixels, rows)
    return Export(str(path), version, coeffs, pixels, members, base)


def _complete(path, coeffs: Coefficients, base: int, rows: list) -> tuple[Member, ...]:
    """The members of a version-1 file (or of bare coefficients), recomputed and checked."""
    phi_max = max((int(r["phi"]) for r in rows), default=DEFAULT_PHI_MAX)
    members = tuple(family_members(coeffs, phi_max, base))
    for row in rows:
        m = members[int(row["phi"])]
        if "params" in row and int(row["params"]) != m.params:
            raise ValueError(
                f"coefficients file {str(path)!r} states {int(row['params']):,} parameters at "
                f"φ = {m.phi}, but its coefficients give {m.params:,}: it was not written by "
                "this scaler's rounding rules"
            )
    return members


def check_member(exp: Export, m: Member) -> Spec:
    """Member ``m``'s Spec, refused past the builder's limits or when the file disagrees with
    itself (its network, its counts and its coefficients must all give the same network)."""
    if m.limit:
        raise ValueError(f"--phi {m.phi} gives a network past the builder's limit ({m.limit})")
    spec = m.spec()
    expected, _ = member(exp.coefficients, m.phi, exp.base_pixels, exp.base)
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
