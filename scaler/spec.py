"""The rules that scale a base network, and the realized network they make (:class:`Spec`).

A base is a stage table (:mod:`scaler.bases`; EfficientNet-B0, the paper's Table 1, by default).
Scaling a network means three named rounding rules applied to that table:

- ``round_channels``: channels x width to the nearest multiple of the base's divisor (8), at
  least the divisor, bumped by it when the rounded value falls under 90 % of the request (the
  official ``round_filters``, torchvision's ``_make_divisible``); the head follows its base's
  rule (``head_channels``: MobileNetV2's never shrinks);
- ``round_layers``: ceil(depth x layers) (the official ``round_repeats``);
- ``round_pixels``: resolution multiplier × base pixels to the nearest integer, halves up.

A :class:`Spec` holds the multipliers and the *realized* network (per-stage channels and layers,
input pixels). Everything downstream (builder, FLOPs count, search, dedupe) reads the realized
numbers, never the multipliers, because two multipliers that round alike are the same network.

The pixel rule: the official family uses 240/260/300/380/456/528/600, which the nearest-integer
rule reproduces exactly from the presets' (base 224) multipliers. A coarser grid (multiples of 4
or 8) would make the measured-FLOPs budget unreachable at the small proxy resolutions a search
trains at (one step of 4 px at 32 px moves FLOPs by ~25 %), so scaler keeps the nearest integer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# DROP_CONNECT and SE_RATIO live beside the stage tables now; importable from here as before.
from scaler.bases import (  # noqa: F401
    CHANNEL_DIVISOR,
    DROP_CONNECT,
    EFFICIENTNET_B0,
    SE_RATIO,
    Base,
    HeadDef,
    StageDef,
)

MIN_PIXELS = 8
MAX_PIXELS = 2048
MAX_MULTIPLIER = 32.0  # largest depth or width multiplier the builder takes
# --resolution is the multiplier r (it took pixels before 0.2): said where r is out of range.
PIXELS_HINT = "(for pixels use --pixels)"

# EfficientNet-B0 (paper Table 1; strides as in the official code), from scaler.bases.
B0 = EFFICIENTNET_B0
B0_STAGES: tuple[StageDef, ...] = B0.stages
B0_STEM = B0.stem.channels  # conv3x3, stride 2
B0_HEAD = B0.head.channels  # conv1x1 before global pooling
B0_RESOLUTION = B0.pixels


@dataclass(frozen=True)
class Preset:
    """An official EfficientNet member: (width, depth, resolution, dropout) from the TF builder."""

    width: float
    depth: float
    pixels: int
    dropout: float


PRESETS: dict[str, Preset] = {
    "b0": Preset(1.0, 1.0, 224, 0.2),
    "b1": Preset(1.0, 1.1, 240, 0.2),
    "b2": Preset(1.1, 1.2, 260, 0.3),
    "b3": Preset(1.2, 1.4, 300, 0.3),
    "b4": Preset(1.4, 1.8, 380, 0.4),
    "b5": Preset(1.6, 2.2, 456, 0.4),
    "b6": Preset(1.8, 2.6, 528, 0.5),
    "b7": Preset(2.0, 3.1, 600, 0.5),
}


def family_dropout(phi: float) -> float:
    """Classifier dropout of family member φ: the official B_φ's (0.2 at B0 up to 0.5 at B7).

    The official family steps dropout by member, not by cost; a member of another family takes
    the rate of the official member with the same φ, 0.2 below φ = 0 and 0.5 past φ = 7.
    """
    rates = [p.dropout for p in PRESETS.values()]
    index = min(max(int(math.floor(phi + 1e-9)), 0), len(rates) - 1)
    return rates[index]


def member_dropout(base: Base, phi: float) -> float:
    """Classifier dropout of member φ of a family of ``base``: EfficientNet's steps by member
    (:func:`family_dropout`); another base keeps its own rate at every size."""
    return family_dropout(phi) if base.dropout_by_phi else base.dropout


def round_channels(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Channels x width: nearest multiple of ``divisor``, >= divisor, >= 90 % of the request."""
    request = channels * width
    rounded = max(divisor, int(request + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * request:
        rounded += divisor
    return int(rounded)


def round_layers(layers: int, depth: float) -> int:
    """Scale a stage's layer count by ``depth``, rounding up."""
    # The tiny epsilon keeps products like 1.1 * 10 (= 11.000000000000002) from rounding to 12.
    return int(math.ceil(depth * layers - 1e-9))


def round_pixels(resolution: float, base_pixels: int) -> int:
    """Input size in pixels for a resolution multiplier: nearest integer, halves rounding up."""
    return int(math.floor(resolution * base_pixels + 0.5))


def head_channels(head: HeadDef, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """The head's channels at width ``width``: scaled, or only grown (MobileNetV2); 0 stays 0."""
    if not head.channels:
        return 0
    scaled = max(1.0, width) if head.width == "grow" else width
    return round_channels(head.channels, scaled, divisor)


@dataclass(frozen=True)
class Stage:
    """A realized stage: the definition with its scaled channels and layer count."""

    operator: str
    expand: int
    kernel: int
    stride: int
    channels: int
    layers: int


@dataclass(frozen=True)
class Spec:
    """A scaled base network: the multipliers and the realized network they round to.

    Build one with :func:`scale` or :func:`preset`; ``key`` identifies the realized network.
    ``base`` holds what the realized numbers do not (block types, activations, stem, head rule).
    """

    depth: float
    width: float
    resolution: float  # multiplier of base_pixels; pixels is the realized input size
    base_pixels: int
    pixels: int
    stem: int
    stages: tuple[Stage, ...]
    head: int  # 0: no head convolution (ResNet)
    dropout: float = 0.2
    base: Base = field(default=B0)

    @property
    def layers(self) -> int:
        """Total number of blocks."""
        return sum(s.layers for s in self.stages)

    @property
    def key(self) -> tuple:
        """Identity of the realized network and input size (for caches and dedupe)."""
        stages = tuple((s.channels, s.layers) for s in self.stages)
        # B0's key is what it was before bases existed; another base is part of the identity.
        other = () if self.base == B0 else (self.base,)
        return (self.stem, stages, self.head, self.pixels, *other)

    @property
    def key_str(self) -> str:
        """``key`` as a short readable string (stored with optuna trials)."""
        ch = "-".join(str(s.channels) for s in self.stages)
        ly = "-".join(str(s.layers) for s in self.stages)
        name = "" if self.base == B0 else f"{self.base.name}_"
        return f"{name}s{self.stem}_c{ch}_l{ly}_h{self.head}_p{self.pixels}"

    def describe(self) -> str:
        """One-line summary: multipliers and pixels."""
        return f"d={self.depth:.3g} w={self.width:.3g} r={self.resolution:.3g} ({self.pixels}px)"


def _check_multiplier(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} {value!r} is invalid: it must be a finite number > 0")
    if value > MAX_MULTIPLIER:
        hint = f" {PIXELS_HINT}" if name == "resolution" else ""
        raise ValueError(f"{name} {value!r} is invalid: it must be <= {MAX_MULTIPLIER:g}{hint}")


def _refuse_removed(removed: dict[str, Any]) -> None:
    """A TypeError for keywords :func:`scale` does not take, naming what replaced an old one."""
    for name in removed:
        if name == "base_resolution":
            raise TypeError("scale(base_resolution=...) was removed in 0.6: use base_pixels=...")
        raise TypeError(f"scale() got an unexpected keyword argument {name!r}")


def check_pixels(pixels: int, name: str = "--pixels", limit: int = MAX_PIXELS) -> int:
    """Validate an input size in pixels."""
    if not (MIN_PIXELS <= pixels <= limit):
        raise ValueError(
            f"{name} {pixels} px is invalid: it must be between {MIN_PIXELS} and {limit}"
        )
    return int(pixels)


def scale(
    depth: float = 1.0,
    width: float = 1.0,
    resolution: float = 1.0,
    *,
    base_pixels: int = B0_RESOLUTION,
    pixels: int | None = None,
    dropout: float | None = None,
    pixel_limit: int = MAX_PIXELS,
    base: Base = B0,
    **removed: Any,
) -> Spec:
    """Scale a base (B0 by default) by depth, width and resolution multipliers.

    ``pixels`` overrides the resolution rule (the resolution multiplier is then pixels / base).
    ``dropout`` defaults to the base's (0.2 for B0).
    Raises ``ValueError`` with a one-line message for invalid inputs, and ``TypeError`` for
    ``base_resolution``, the name ``base_pixels`` had before 0.2 (removed in 0.6).
    """
    _refuse_removed(removed)
    _check_multiplier("depth", depth)
    _check_multiplier("width", width)
    check_pixels(base_pixels, "base pixels")
    if pixels is None:
        _check_multiplier("resolution", resolution)
        pixels = round_pixels(resolution, base_pixels)
        if not MIN_PIXELS <= pixels <= pixel_limit:
            raise ValueError(
                f"--resolution {resolution:g} is invalid: it gives {pixels} px at a "
                f"{base_pixels} px base, outside {MIN_PIXELS}..{pixel_limit} px {PIXELS_HINT}"
            )
    else:
        resolution = pixels / base_pixels
    check_pixels(pixels, limit=pixel_limit)
    return unchecked_spec(depth, width, resolution, base_pixels, pixels, dropout, base)


def unchecked_spec(
    depth: float,
    width: float,
    resolution: float,
    base_pixels: int,
    pixels: int,
    dropout: float | None = None,
    base: Base = B0,
) -> Spec:
    """The Spec the rounding rules make of these multipliers, with no limit checked: what
    :func:`scale` returns once its checks pass, and what cost tables use past them."""
    divisor = base.divisor
    stages = tuple(
        Stage(
            s.operator,
            s.expand,
            s.kernel,
            s.stride,
            round_channels(s.channels, width, divisor),
            round_layers(s.layers, depth),
        )
        for s in base.stages
    )
    return Spec(
        depth=float(depth),
        width=float(width),
        resolution=float(resolution),
        base_pixels=int(base_pixels),
        pixels=int(pixels),
        stem=round_channels(base.stem.channels, width, divisor),
        stages=stages,
        head=head_channels(base.head, width, divisor),
        dropout=base.dropout if dropout is None else dropout,
        base=base,
    )


def preset(name: str, base_pixels: int = B0_RESOLUTION) -> Spec:
    """An official member b0..b7 (of EfficientNet-B0); its resolution multiplier is applied to
    ``base_pixels``."""
    key = name.lower()
    if key not in PRESETS:
        raise ValueError(f"preset {name!r} is unknown: valid presets are {', '.join(PRESETS)}")
    p = PRESETS[key]
    return scale(
        p.depth,
        p.width,
        p.pixels / B0_RESOLUTION,
        base_pixels=base_pixels,
        dropout=p.dropout,
    )
