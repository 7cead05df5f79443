"""The base networks compound scaling starts from, each one stage table, and the YAML that adds one.

A base is data: a stem, a table of stages (block type, repeats, kernel, stride, expansion,
channels, SE ratio, activation) and a head, plus the conventions that scale it. Every command
that takes a network takes ``--base`` (:func:`get_base`): a built-in name or a stage-table file.

Built-in bases, each at multiplier 1 the published reference implementation (parameter counts
pinned in tests/test_bases.py against torchvision's):

- ``efficientnet-b0`` (the default): the paper's Table 1. MBConv with SE 0.25 of the block's
  input channels, SiLU, BatchNorm eps 1e-3, classifier dropout by family member (0.2 at B0 to
  0.5 at B7), stochastic depth 0.2.
- ``mobilenetv2``: torchvision's ``mobilenet_v2`` (Sandler et al. 2018): inverted residuals
  (MBConv without SE) with ReLU6, a 3×3 depthwise kernel everywhere, BatchNorm eps 1e-5,
  dropout 0.2, no stochastic depth. Its own width convention: the head is
  round(1280 × max(1, w)), never narrower than 1280 (torchvision's ``last_channel``).
- ``resnet50`` / ``resnet18``: torchvision's (He et al. 2016; ResNet v1.5, the stride on the 3×3
  convolution). A 7×7/2 stem with a 3×3/2 max pool, bottleneck (expansion 4) or basic blocks,
  ReLU, no head convolution (the classifier reads the last stage), no dropout.

Scaling conventions shared by every base (and named in :mod:`scaler.spec`): channels × w round
to the nearest multiple of the base's ``divisor`` (8 for all built-ins), at least the divisor,
+divisor when under 90 % of the request (torchvision's ``_make_divisible``, the official
``round_filters``); a stage's repeats × d round up; pixels × r round to the nearest integer.
Width scales the stem and every stage (a bottleneck's ``channels`` is its inner width,
torchvision's ``planes``; it outputs ``channels × expansion``); the head scales with w
(``width: scale``) or only upwards (``width: grow``). torchvision's ResNets have no width
multiplier of their own; scaler scales every convolution, like pycls's AnyNet scaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

CHANNEL_DIVISOR = 8
SE_RATIO = 0.25  # of the block's input channels, as in the official implementation
# Stochastic depth: block i of N drops its residual branch with probability DROP_CONNECT·i/N, as
# the official code, timm, torchvision and Keras do (the last block stays under the rate).
DROP_CONNECT = 0.2
BLOCKS = ("mbconv", "basic", "bottleneck")
ACTIVATIONS = ("silu", "relu", "relu6")
HEAD_WIDTH = ("scale", "grow")  # the head scales with w, or only when w > 1 (MobileNetV2)
DEFAULT_BASE = "efficientnet-b0"


@dataclass(frozen=True)
class StageDef:
    """One row of a stage table: a stage of identical blocks (the paper's Table 1 for B0)."""

    operator: str  # "MBConv6", "Bottleneck", ...: the name tables print
    expand: int  # MBConv: inner = input × expand; bottleneck: output = channels × expand
    kernel: int
    stride: int  # stride of the stage's first block; the others use 1
    channels: int  # MBConv and basic: output channels; bottleneck: inner width
    layers: int  # repeats
    block: str = "mbconv"  # mbconv | basic | bottleneck
    se: float = SE_RATIO  # squeeze-and-excitation ratio of the input channels; 0: none
    activation: str = "silu"

    def outputs(self, channels: int) -> int:
        """The channels a block of this stage puts out, given its (scaled) ``channels``."""
        return channels * self.expand if self.block == "bottleneck" else channels


@dataclass(frozen=True)
class StemDef:
    """The stem: one convolution with BatchNorm and activation, and ResNet's max pool."""

    channels: int
    kernel: int = 3
    stride: int = 2
    pool: bool = False  # a 3×3/2 max pool after it (ResNet)
    activation: str = "silu"

    @property
    def strides(self) -> int:
        """How many times the stem halves the input."""
        return (self.stride == 2) + self.pool


@dataclass(frozen=True)
class HeadDef:
    """The 1×1 head convolution before global pooling (0 channels: none, as in ResNet)."""

    channels: int
    activation: str = "silu"
    width: str = "scale"  # scale: round(channels × w); grow: round(channels × max(1, w))


@dataclass(frozen=True)
class Base:
    """A base network: its stage table and the conventions that scale and build it."""

    name: str
    stages: tuple[StageDef, ...]
    stem: StemDef
    head: HeadDef
    pixels: int = 224  # the input size the base is defined at (cost pixels)
    divisor: int = CHANNEL_DIVISOR  # channels round to multiples of it
    bn_eps: float = 1e-3
    dropout: float = 0.2  # before the classifier
    drop_connect: float = DROP_CONNECT  # stochastic depth rate (0: none)
    dropout_by_phi: bool = False  # EfficientNet: member φ takes the official B_φ's dropout
    title: str = ""  # how tables name it ("EfficientNet"); the name when empty

    @property
    def label(self) -> str:
        return self.title or self.name

    @property
    def builtin(self) -> bool:
        return BASES.get(self.name) == self

    @property
    def activations(self) -> tuple[str, ...]:
        """The activations it uses, in order of appearance (for the FLOPs footnote)."""
        names = [self.stem.activation, *(s.activation for s in self.stages)]
        if self.head.channels:
            names.append(self.head.activation)
        return tuple(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        """The base as its stage-table YAML says it (what :func:`from_dict` reads)."""
        return {
            "name": self.name,
            "pixels": self.pixels,
            "divisor": self.divisor,
            "bn_eps": self.bn_eps,
            "dropout": self.dropout,
            "drop_connect": self.drop_connect,
            "stem": {f.name: getattr(self.stem, f.name) for f in fields(StemDef)},
            "stages": [
                {
                    "block": s.block,
                    "repeats": s.layers,
                    "kernel": s.kernel,
                    "stride": s.stride,
                    "expansion": s.expand,
                    "channels": s.channels,
                    "se": s.se,
                    "activation": s.activation,
                }
                for s in self.stages
            ],
            "head": {f.name: getattr(self.head, f.name) for f in fields(HeadDef)},
        }


def _mbconv(expand: int, kernel: int, stride: int, channels: int, layers: int) -> StageDef:
    return StageDef(f"MBConv{expand}", expand, kernel, stride, channels, layers)


def _inverted(expand: int, channels: int, layers: int, stride: int) -> StageDef:
    # torchvision's inverted_residual_setting order: t, c, n, s.
    return StageDef(f"MBConv{expand}", expand, 3, stride, channels, layers, "mbconv", 0.0, "relu6")


def _resnet(block: str, channels: int, layers: int, stride: int) -> StageDef:
    expand, operator = (4, "Bottleneck") if block == "bottleneck" else (1, "BasicBlock")
    return StageDef(operator, expand, 3, stride, channels, layers, block, 0.0, "relu")


EFFICIENTNET_B0 = Base(
    name="efficientnet-b0",
    # The paper's Table 1, strides as in the official code. The one source of truth.
    stages=(
        _mbconv(1, 3, 1, 16, 1),
        _mbconv(6, 3, 2, 24, 2),
        _mbconv(6, 5, 2, 40, 2),
        _mbconv(6, 3, 2, 80, 3),
        _mbconv(6, 5, 1, 112, 3),
        _mbconv(6, 5, 2, 192, 4),
        _mbconv(6, 3, 1, 320, 1),
    ),
    stem=StemDef(32),
    head=HeadDef(1280),
    dropout_by_phi=True,
    title="EfficientNet",
)
MOBILENETV2 = Base(
    name="mobilenetv2",
    stages=(
        _inverted(1, 16, 1, 1),
        _inverted(6, 24, 2, 2),
        _inverted(6, 32, 3, 2),
        _inverted(6, 64, 4, 2),
        _inverted(6, 96, 3, 1),
        _inverted(6, 160, 3, 2),
        _inverted(6, 320, 1, 1),
    ),
    stem=StemDef(32, activation="relu6"),
    head=HeadDef(1280, "relu6", "grow"),
    bn_eps=1e-5,
    drop_connect=0.0,
    title="MobileNetV2",
)
_RESNET_STEM = StemDef(64, kernel=7, stride=2, pool=True, activation="relu")
RESNET50 = Base(
    name="resnet50",
    stages=tuple(
        _resnet("bottleneck", c, n, s)
        for c, n, s in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
    ),
    stem=_RESNET_STEM,
    head=HeadDef(0, "relu"),
    bn_eps=1e-5,
    dropout=0.0,
    drop_connect=0.0,
    title="ResNet-50",
)
RESNET18 = Base(
    name="resnet18",
    stages=tuple(
        _resnet("basic", c, n, s) for c, n, s in ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))
    ),
    stem=_RESNET_STEM,
    head=HeadDef(0, "relu"),
    bn_eps=1e-5,
    dropout=0.0,
    drop_connect=0.0,
    title="ResNet-18",
)
BASES: dict[str, Base] = {b.name: b for b in (EFFICIENTNET_B0, MOBILENETV2, RESNET50, RESNET18)}


# ----------------------------------------------------------------------------------------------
# choosing a base, and reading a stage table
# ----------------------------------------------------------------------------------------------


def get_base(text: str | Base | None, option: str = "--base") -> Base:
    """A built-in base by name, or the stage table of a YAML file; one-line ValueError else."""
    if text is None:
        return EFFICIENTNET_B0
    if isinstance(text, Base):
        return text
    key = str(text).strip()
    if key.lower() in BASES:
        return BASES[key.lower()]
    if key.lower().endswith((".yaml", ".yml")) or Path(key).is_file():
        return load_base(key, option)
    raise ValueError(
        f"{option} {key!r} is unknown: valid bases are {', '.join(BASES)}, or a stage table "
        "FILE.yaml"
    )


def load_base(path: str | Path, option: str = "--base") -> Base:
    """The base a stage-table YAML file describes (see docs/bases.md)."""
    p = Path(path)
    where = f"{option} {str(p)!r}"
    if not p.is_file():
        raise ValueError(f"{where} does not exist or is not a file")
    import yaml

    try:
        data = yaml.safe_load(p.read_text())
    except Exception as e:  # yaml and decoding errors alike
        raise ValueError(f"{where} cannot be parsed: {' '.join(str(e).split())}") from None
    if isinstance(data, dict):
        data.setdefault("name", p.stem)
    return from_dict(data, where)


# name → (kind, required, check) of the fields of a stage-table file's sections.
_TOP = ("name", "pixels", "divisor", "bn_eps", "dropout", "drop_connect", "stem", "stages", "head")
_STAGE = ("block", "repeats", "kernel", "stride", "expansion", "channels", "se", "activation")
_STEM = ("channels", "kernel", "stride", "pool", "activation")
_HEAD = ("channels", "activation", "width")


def from_dict(data: Any, where: str = "base") -> Base:
    """Validate a stage table (as :meth:`Base.to_dict` writes it) into a :class:`Base`.

    Every error is one line naming the field (``stages[2].stride``) and what is valid.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a stage table: it must be a mapping with {_keys(_TOP)}")
    _unknown(data, _TOP, where, "")
    for key in ("stem", "stages", "head"):
        if key not in data:
            raise ValueError(f"{where}: {key} is missing: a stage table needs {_keys(_TOP[6:])}")
    stages = data["stages"]
    if not isinstance(stages, list) or not stages:
        raise ValueError(f"{where}: stages is invalid: it must be a non-empty list of stages")
    base = Base(
        name=_name(data.get("name"), where),
        stages=tuple(_stage(s, f"stages[{i}]", where) for i, s in enumerate(stages)),
        stem=_stem(data["stem"], where),
        head=_head(data["head"], where),
        pixels=_int(data, "pixels", where, "", 224, low=8, high=2048),
        divisor=_int(data, "divisor", where, "", CHANNEL_DIVISOR, low=1, high=1024),
        bn_eps=_number(data, "bn_eps", where, "", 1e-5, low=0.0, open_low=True, high=1.0),
        dropout=_number(data, "dropout", where, "", 0.0, low=0.0, high=1.0, open_high=True),
        drop_connect=_number(
            data, "drop_connect", where, "", 0.0, low=0.0, high=1.0, open_high=True
        ),
    )
    return base


def _stage(raw: Any, at: str, where: str) -> StageDef:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: {at} is invalid: each stage is a mapping with {_keys(_STAGE)}")
    _unknown(raw, _STAGE, where, f"{at}.")
    block = _choice(raw, "block", where, f"{at}.", BLOCKS, None)
    expand_default = {"mbconv": None, "basic": 1, "bottleneck": 4}[block]
    expand = _int(raw, "expansion", where, f"{at}.", expand_default, low=1, high=64)
    if block == "basic" and expand != 1:
        raise ValueError(f"{where}: {at}.expansion {expand} is invalid: a basic block takes 1")
    se = _number(raw, "se", where, f"{at}.", 0.0, low=0.0, high=1.0)
    if se and block != "mbconv":
        raise ValueError(
            f"{where}: {at}.se {se:g} is invalid: squeeze-and-excitation is an mbconv option "
            f"(give 0 for a {block} block)"
        )
    operator = {"mbconv": f"MBConv{expand}", "basic": "BasicBlock", "bottleneck": "Bottleneck"}
    return StageDef(
        operator=operator[block],
        expand=expand,
        kernel=_kernel(raw, where, f"{at}.", 3),
        stride=_stride(raw, where, f"{at}.", None),
        channels=_int(raw, "channels", where, f"{at}.", None, low=1, high=100_000),
        layers=_int(raw, "repeats", where, f"{at}.", None, low=1, high=1000),
        block=block,
        se=se,
        activation=_choice(raw, "activation", where, f"{at}.", ACTIVATIONS, "relu"),
    )


def _stem(raw: Any, where: str) -> StemDef:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: stem is invalid: it is a mapping with {_keys(_STEM)}")
    _unknown(raw, _STEM, where, "stem.")
    pool = raw.get("pool", False)
    if not isinstance(pool, bool):
        raise ValueError(f"{where}: stem.pool {pool!r} is invalid: it must be true or false")
    return StemDef(
        channels=_int(raw, "channels", where, "stem.", None, low=1, high=100_000),
        kernel=_kernel(raw, where, "stem.", 3),
        stride=_stride(raw, where, "stem.", 2),
        pool=pool,
        activation=_choice(raw, "activation", where, "stem.", ACTIVATIONS, "relu"),
    )


def _head(raw: Any, where: str) -> HeadDef:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: head is invalid: it is a mapping with {_keys(_HEAD)}")
    _unknown(raw, _HEAD, where, "head.")
    return HeadDef(
        channels=_int(raw, "channels", where, "head.", None, low=0, high=100_000),
        activation=_choice(raw, "activation", where, "head.", ACTIVATIONS, "relu"),
        width=_choice(raw, "width", where, "head.", HEAD_WIDTH, "scale"),
    )


def _keys(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def _unknown(raw: dict, valid: tuple[str, ...], where: str, at: str) -> None:
    for key in raw:
        if key not in valid:
            raise ValueError(f"{where}: {at}{key} is unknown: valid fields are {_keys(valid)}")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: name {value!r} is invalid: it must be a non-empty string")
    return value.strip()


def _get(raw: dict, key: str, where: str, at: str, default: Any) -> Any:
    if key not in raw or raw[key] is None:
        if default is None:
            raise ValueError(f"{where}: {at}{key} is missing")
        return default
    return raw[key]


def _int(raw, key, where, at, default, *, low: int, high: int) -> int:
    value = _get(raw, key, where, at, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(
            f"{where}: {at}{key} {value!r} is invalid: it must be an integer in {low}..{high}"
        )
    return value


def _number(raw, key, where, at, default, *, low, high, open_low=False, open_high=False) -> float:
    value = _get(raw, key, where, at, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low)
    ok = ok and (value < high if open_high else value <= high)
    if not ok:
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise ValueError(
            f"{where}: {at}{key} {value!r} is invalid: "
            f"it must be a number in {lo}{low:g}, {high:g}{hi}"
        )
    return float(value)


def _kernel(raw, where, at, default) -> int:
    value = _int(raw, "kernel", where, at, default, low=1, high=31)
    if value % 2 == 0:
        # "same" padding of an even kernel shifts the map; the cost model assumes ceil(p / 2).
        raise ValueError(f"{where}: {at}kernel {value} is invalid: it must be odd (1, 3, 5, ...)")
    return value


def _stride(raw, where, at, default) -> int:
    value = _get(raw, "stride", where, at, default)
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError(f"{where}: {at}stride {value!r} is invalid: it must be 1 or 2")
    return int(value)


def _choice(raw, key, where, at, valid: tuple[str, ...], default) -> str:
    value = _get(raw, key, where, at, default)
    if not isinstance(value, str) or value.lower() not in valid:
        raise ValueError(f"{where}: {at}{key} {value!r} is unknown: valid are {_keys(valid)}")
    return value.lower()


# ----------------------------------------------------------------------------------------------
# the base in a study's configuration
# ----------------------------------------------------------------------------------------------


def stored(base: Base) -> dict[str, Any]:
    """The keys a study's configuration stores for ``base``.

    Nothing for EfficientNet-B0, so that its studies (and those written before bases existed)
    store, name and compare exactly as before; a built-in's name; a file's name and whole table,
    so the study holds what it trained and a changed file is refused on resume.
    """
    if base == EFFICIENTNET_B0:
        return {}
    if base.builtin:
        return {"base": base.name}
    return {"base": base.name, "base_table": base.to_dict()}


def from_config(config: dict[str, Any]) -> Base:
    """The base a stored configuration (or export) names; none stored: EfficientNet-B0."""
    if config.get("base_table") is not None:
        return from_dict(config["base_table"], "stored base_table")
    return get_base(config.get("base") or DEFAULT_BASE, "stored base")
