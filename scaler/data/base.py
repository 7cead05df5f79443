"""What every data source shares: the split tensors, the source base class, the disk cache
of resized tensors, fingerprint digests and resizing.

Nothing here knows a particular source; :mod:`scaler.data` lists them.
"""

from __future__ import annotations

import abc
import hashlib
import json
import operator
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
import torch.nn.functional as F

from scaler.files import write_atomic

__all__ = [
    "DEFAULT_UPSAMPLE",
    "FORMAT_VERSION",
    "SPLITS",
    "UPSAMPLE_MODES",
    "DataError",
    "DataSource",
    "Split",
    "check_upsample",
    "default_cache_dir",
    "digest",
    "downsample",
    "file_sha256",
    "legacy_upsample",
    "read_cache",
    "stratified_holdout",
    "upsample",
    "write_cache",
]

SPLITS: Final = ("train", "val", "test")

# Bumped whenever the bytes a source produces for the same input change, so
# old disk caches and fingerprints stop matching.
FORMAT_VERSION: Final = 1

# Resizing goes through float32, a chunk at a time: chunks this small bound the temporary
# memory and keep it in cache (1.5-2x faster than chunks of 2048 on one core).
_RESIZE_CHUNK: Final = 64

# How a source serves a size above its images' own (--upsample). The paper's transfer runs
# and the usual EfficientNet-on-CIFAR recipe enlarge small images to the network's input with
# a bilinear resize, and a 48 px proxy base is larger than CIFAR's 32 px: bilinear is what a
# user of small images expects (bicubic is sharper but rings; off refuses, as scaler <= 0.6).
UPSAMPLE_MODES: Final = ("bilinear", "bicubic", "off")
DEFAULT_UPSAMPLE: Final = "bilinear"


class DataError(ValueError):
    """A data spec or data folder is unusable; the message is one line for the user."""


def check_upsample(mode: object) -> str:
    """``mode`` when it is a valid ``--upsample`` policy, else a one-line DataError."""
    if mode not in UPSAMPLE_MODES:
        raise DataError(f"--upsample {mode!r} is invalid: valid: {' | '.join(UPSAMPLE_MODES)}")
    return str(mode)


def legacy_upsample(data: str) -> str:
    """The policy of a study stored before ``--upsample`` existed: what its source did then
    (an imagefolder resized every image with Pillow's bicubic filter, the others refused)."""
    return "bicubic" if str(data).startswith("imagefolder:") else "off"


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a data source at one size.

    The tensors are shared with the source's in-memory cache: treat them as read-only.
    """

    images: torch.Tensor  # uint8, N x 3 x P x P, contiguous, RGB
    labels: torch.Tensor  # int64, N

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"Split.images must be uint8 N x 3 x P x P, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if images.shape[2] != images.shape[3]:
            raise ValueError(f"Split.images must be square, got {tuple(images.shape)}")
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise ValueError(
                f"Split.labels must be int64 of shape ({images.shape[0]},), got "
                f"{labels.dtype} {tuple(labels.shape)}"
            )
        # Frozen, so fix contiguity in place of failing: callers rely on it for fast batching.
        if not images.is_contiguous():
            object.__setattr__(self, "images", images.contiguous())

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def pixels(self) -> int:
        return int(self.images.shape[-1])


class DataSource(abc.ABC):
    """Base class of the data sources; subclasses implement ``_load`` and ``fingerprint``.

    ``upsample`` (``--upsample``) says how a size above the images' own is served: enlarged
    from the native split with that filter, or refused (``off``); set it before loading.
    """

    name: str
    classes: tuple[str, ...]
    upsample: str
    # A source that decodes files at any size (imagefolder) enlarges them itself, per image.
    decodes_any_size: bool = False

    def __init__(self, name: str, classes: Sequence[str], native_pixels: int | None) -> None:
        self.name = name
        self.classes = tuple(classes)
        self._native = native_pixels
        self.upsample = "off"
        self._memory: dict[tuple[str, int], Split] = {}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def native_pixels(self) -> int | None:
        """Side of the smallest image served without enlarging it (None: any size)."""
        return self._native

    @property
    def grayscale(self) -> bool:
        """True when every image has one channel (served replicated to 3)."""
        return False

    @property
    def max_pixels(self) -> int | None:
        """The largest size served under the ``upsample`` policy (None: any)."""
        return self.native_pixels if self.upsample == "off" else None

    @property
    def kind(self) -> str:
        """The source's scheme (``cifar10``, ``imagefolder``, ...), for messages."""
        return self.name.split(":", 1)[0]

    def with_upsample(self, mode: str) -> DataSource:
        """This source with the ``--upsample`` policy ``mode`` (checked); returns itself."""
        self.upsample = check_upsample(mode)
        self._memory.clear()  # sizes served before were served under the old policy
        return self

    def describe_images(self, smallest: int, largest: int) -> str | None:
        """The line a run prints first when it enlarges or converts the images to train at
        ``smallest``..``largest`` px; None when it does neither."""
        native = self.native_pixels
        enlarged = native is not None and largest > native and self.upsample != "off"
        if not enlarged and not self.grayscale:
            return None
        text = f"data: {self.kind} images are" + (f" {native} px" if enlarged else "")
        if self.grayscale:
            text += " grayscale (one channel, replicated to 3)"
        if not enlarged:
            return text
        span = f"{smallest}–{largest}" if smallest != largest else f"{largest}"
        return (
            f"{text}; upsampled ({self.upsample}) to {span} px for the proxy "
            "(--upsample off refuses)"
        )

    def load(self, split: str, pixels: int) -> Split:
        """Return ``split`` ("train", "val" or "test") as square ``pixels`` x ``pixels`` images."""
        if split not in SPLITS:
            raise DataError(f"{self.name}: unknown split {split!r}; valid: {', '.join(SPLITS)}")
        try:
            pixels = operator.index(pixels)
        except TypeError:
            raise DataError(f"{self.name}: pixels must be an integer, got {pixels!r}") from None
        if pixels < 1:
            raise DataError(f"{self.name}: pixels must be >= 1, got {pixels}")
        native = self.native_pixels
        if self.upsample == "off" and native is not None and pixels > native:
            raise DataError(
                f"{self.name}: {pixels} px requested but the images are {native} px and "
                "--upsample off refuses to enlarge them; use --upsample bilinear"
            )
        key = (split, pixels)
        cached = self._memory.get(key)
        if cached is None:
            if native is None or pixels <= native or self.decodes_any_size:
                cached = self._load(split, pixels)
            else:  # enlarged from the native split, which stays cached for smaller sizes
                small = self.load(split, native)
                cached = Split(upsample(small.images, pixels, self.upsample), small.labels)
            self._memory[key] = cached
        return cached

    @abc.abstractmethod
    def _load(self, split: str, pixels: int) -> Split: ...

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Short stable hex id of the content and configuration this source serves."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.num_classes} classes)>"


# --------------------------------------------------------------------------- helpers


def digest(payload: Any, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``payload`` as canonical JSON."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read a megabyte at a time."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def downsample(images: torch.Tensor, pixels: int) -> torch.Tensor:
    """Shrink uint8 N x 3 x S x S images to ``pixels`` (never enlarges)."""
    src = images.shape[-1]
    if pixels == src:
        return images.contiguous()
    if pixels > src:
        raise AssertionError(f"refusing to upsample {src} px to {pixels} px")
    out = torch.empty((images.shape[0], 3, pixels, pixels), dtype=torch.uint8)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK].float()
        if src % pixels == 0:
            # An exact box filter: every output pixel averages a whole block of inputs.
            small = F.interpolate(chunk, size=(pixels, pixels), mode="area")
        else:
            # Triangle filter widened by the scale factor, so no input pixel is skipped.
            small = F.interpolate(
                chunk,
                size=(pixels, pixels),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        out[start : start + _RESIZE_CHUNK] = small.round_().clamp_(0, 255).to(torch.uint8)
    return out


def upsample(images: torch.Tensor, pixels: int, mode: str) -> torch.Tensor:
    """Enlarge uint8 N x 3 x S x S images to ``pixels`` with ``mode`` (bilinear | bicubic)."""
    src = images.shape[-1]
    if pixels <= src or mode not in ("bilinear", "bicubic"):
        raise AssertionError(f"upsample {src} px to {pixels} px with {mode!r}")
    out = torch.empty((images.shape[0], 3, pixels, pixels), dtype=torch.uint8)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK].float()
        # Half-pixel centers (align_corners=False), as Pillow and torchvision resize; bicubic
        # overshoots at edges, hence the clamp.
        big = F.interpolate(chunk, size=(pixels, pixels), mode=mode, align_corners=False)
        out[start : start + _RESIZE_CHUNK] = big.round_().clamp_(0, 255).to(torch.uint8)
    return out


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a seeded per-class holdout of about ``fraction`` of each class.

    Each class's draw depends only on (seed, class), so one class's membership does
    not move when another class changes. A class with two or more samples always
    gives at least one, so every class appears in both parts.
    """
    held = np.zeros(labels.shape[0], dtype=bool)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        n_held = round(idx.size * fraction)
        if idx.size >= 2:
            n_held = min(max(n_held, 1), idx.size - 1)
        rng = np.random.default_rng([seed, int(cls)])
        held[rng.permutation(idx)[:n_held]] = True
    return held


# --------------------------------------------------------------------------- disk cache


def default_cache_dir() -> Path:
    """Where sources keep tensors on disk: ``$SCALER_CACHE`` or ``~/.cache/scaler``."""
    env = os.environ.get("SCALER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scaler"


def read_cache(path: Path, keys: frozenset[str]) -> dict[str, Any] | None:
    """A cached dict of tensors holding ``keys``, or None if missing or unreadable."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a broken cache file is rebuilt, never fatal
        return None
    if isinstance(payload, dict) and keys <= payload.keys():
        return payload
    return None


def write_cache(path: Path, payload: dict[str, Any]) -> None:
    """Save ``payload`` atomically to ``path``; a failure is a warning, never fatal."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent writers of the same key just replace each other.
        write_atomic(path, lambda f: torch.save(payload, f))
    except OSError as exc:
        warnings.warn(f"could not write data cache {path}: {exc}", stacklevel=4)
