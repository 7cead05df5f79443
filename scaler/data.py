"""Data sources for proxy training.

A data source is named by a spec string (the ``--data`` option) and parsed by
:func:`parse_data`:

``embedded`` (default) / ``embedded:KEY=VALUE,...``
    A small classification set cut at run time from the public-domain / CC0
    photographs bundled inside the scikit-image wheel: one class per photo,
    square crops drawn from disjoint regions of each photo (a train band; val
    and test share two held-out bands as a checkerboard of pieces), so no pixel
    is shared between splits. Nothing is downloaded. The options override
    :class:`EmbeddedConfig` fields (``embedded:tiles=1`` is scaler 0.4's set).
``imagefolder:PATH``
    One sub-folder per class (the ImageFolder convention), optionally with
    ``train/``, ``val/`` (and ``test/``) above the class folders. Decoded
    images are cached on disk per (folder state, split, size).
``cifar10:PATH`` / ``cifar100:PATH``
    The official *binary* CIFAR distributions in a local folder.
``fractal`` / ``fractal:KEY=VALUE,...``
    Fractals of random iterated function systems, one system per class (FractalDB
    style, see :mod:`scaler.fractal`), generated from a seed; the options override
    :class:`~scaler.fractal.FractalConfig` fields (``fractal:classes=64,train=500``).
    Generated splits are cached on disk like imagefolder's.

Every source serves uint8 RGB tensors of shape ``N x 3 x P x P`` through
:meth:`DataSource.load`; resized splits are kept in memory per (split, size).
Invalid specs raise :class:`DataError` with a one-line message meant for the
user.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import importlib.util
import json
import operator
import os
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from scaler import fractal
from scaler.files import write_atomic
from scaler.fractal import FractalConfig

__all__ = [
    "DEFAULT_DATA",
    "SPLITS",
    "CifarSource",
    "DataError",
    "DataSource",
    "EmbeddedConfig",
    "EmbeddedSource",
    "FractalSource",
    "ImageFolderSource",
    "Split",
    "embedded_info",
    "parse_data",
    "split_regions",
    "split_tiles",
]

DEFAULT_DATA: Final = "embedded"
SPLITS: Final = ("train", "val", "test")
VALID_SPECS: Final = (
    "embedded, embedded:KEY=VALUE,..., fractal, fractal:KEY=VALUE,..., imagefolder:PATH, "
    "cifar10:PATH, cifar100:PATH"
)
IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".webp"})

# Bumped whenever the bytes a source produces for the same input change, so
# old disk caches and fingerprints stop matching.
_FORMAT_VERSION: Final = 1

# Resizing goes through float32, a chunk at a time: chunks this small bound the temporary
# memory and keep it in cache (1.5-2x faster than chunks of 2048 on one core).
_RESIZE_CHUNK: Final = 64


class DataError(ValueError):
    """A data spec or data folder is unusable; the message is one line for the user."""


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
    """Base class of the data sources; subclasses implement ``_load`` and ``fingerprint``."""

    name: str
    classes: tuple[str, ...]
    max_pixels: int | None

    def __init__(self, name: str, classes: Sequence[str], max_pixels: int | None) -> None:
        self.name = name
        self.classes = tuple(classes)
        self.max_pixels = max_pixels
        self._memory: dict[tuple[str, int], Split] = {}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

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
        if self.max_pixels is not None and pixels > self.max_pixels:
            raise DataError(
                f"{self.name}: {pixels} px requested but the maximum is {self.max_pixels} px "
                "(images are never upsampled)"
            )
        key = (split, pixels)
        cached = self._memory.get(key)
        if cached is None:
            cached = self._load(split, pixels)
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


def _digest(payload: Any, length: int = 16) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _downsample(images: torch.Tensor, pixels: int) -> torch.Tensor:
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


def _stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
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


# --------------------------------------------------------------------------- embedded


@dataclass(frozen=True)
class _Photo:
    file: str  # file name inside site-packages/skimage/data/
    license: str  # as stated in the skimage.data function's docstring


# Only real photographs/scans whose skimage.data docstring states public domain or CC0.
# Left out on purpose: coins and immunohistochemistry ("No known copyright restrictions"
# is not a public-domain or CC0 statement), moon, page and stereo_motorcycle (no licence
# stated), horse (CC0 but a clip-art silhouette), checkerboard/colorwheel/logo/
# shepp_logan_phantom/binary_blobs (synthetic), lfw_subset (faces, no licence stated).
_PHOTOS: Final[dict[str, _Photo]] = {
    "astronaut": _Photo(
        "astronaut.png",
        "No known copyright restrictions, released into the public domain.",
    ),
    "brick": _Photo("brick.png", "Creative Commons CC0 License (from CC0Textures)."),
    "camera": _Photo(
        "camera.png",
        "No copyright restrictions. CC0 by the photographer (Lav Varshney).",
    ),
    "cell": _Photo("cell.png", "CC0, dedicated to the public domain."),
    "chelsea": _Photo(
        "chelsea.png",
        "No copyright restrictions. CC0 by the photographer (Stefan van der Walt).",
    ),
    "clock": _Photo(
        "clock_motion.png",
        "Released into the public domain by the photographer (Stefan van der Walt).",
    ),
    "coffee": _Photo(
        "coffee.png",
        "No copyright restrictions. CC0 by the photographer (Rachel Michetti).",
    ),
    "grass": _Photo("grass.png", "Creative Commons CC0 License (from DeviantArt)."),
    "gravel": _Photo("gravel.png", "Creative Commons CC0 License (from CC0Textures)."),
    "hubble_deep_field": _Photo(
        "hubble_deep_field.jpg",
        "Captured by NASA; may be freely used in the public domain.",
    ),
    "microaneurysms": _Photo(
        "microaneurysms.png",
        "No copyright restrictions. CC0 given by owner (Andreas Maier).",
    ),
    "retina": _Photo("retina.jpg", "Creative Commons CC0 1.0 Universal Public Domain Dedication."),
    "rocket": _Photo("rocket.jpg", "Captured by SpaceX and released in the public domain."),
    "text": _Photo("text.png", "No known copyright restrictions, released into the public domain."),
}


@dataclass(frozen=True)
class EmbeddedConfig:
    """Knobs of the embedded set; change them to make the task easier or harder."""

    # skimage.data function names, one class each, in label order. microaneurysms is
    # registered but left out: at 102 x 102 px its val/test bands are narrower than a crop.
    photos: tuple[str, ...] = (
        "astronaut",
        "brick",
        "camera",
        "cell",
        "chelsea",
        "clock",
        "coffee",
        "grass",
        "gravel",
        "hubble_deep_field",
        "retina",
        "rocket",
        "text",
    )
    # Side of every crop at native resolution; also the largest size served (max_pixels).
    # Larger crops see more of the photo (easier); smaller ones see only texture (harder).
    # 96 lets resolution sweeps reach 2.5-3x a 32 px proxy base without upsampling, and
    # divides evenly into the common proxy sizes 24, 32 and 48 (exact box filters).
    crop: int = 96
    # Crops per class and split. Crops may overlap within a split, never across splits.
    train: int = 200
    val: int = 50
    test: int = 50
    # Share of each photo's longer side given to the train, val and test bands. Wider
    # val/test bands than 0.2 so that a 96 px crop fits every photo's (clock, the
    # narrowest at 400 px, gets exactly 96 px bands).
    fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)
    # Pixels left unused between neighbouring bands, so crops on either side of a
    # boundary are not near-copies of each other.
    gap: int = 8
    # Crops whose pixel standard deviation (0-255 scale) is below this are redrawn:
    # flat crops (retina's black frame, blank sky) carry no trace of their class.
    min_std: float = 2.0
    # Serve every class in gray (as 3 equal channels) so colour alone cannot tell the
    # colour photos from the gray ones: a harder task.
    grayscale: bool = False
    # Seed of the crop positions; the build is deterministic for a given config.
    seed: int = 0
    # Pieces each held-out band is cut into across the photo's shorter side; the pieces go
    # to val and test in a checkerboard, so each split sees both bands' content instead of
    # one band each. With one band each (tiles=1, scaler 0.1-0.4's set), a run's val score
    # depended on which part of a photo it happened to learn and the proxy could not order
    # B0-B3 (README, "Calibration"). Photos whose shorter side cannot hold that many crops
    # (text, 172 px) keep one band per split.
    tiles: int = 2

    def __post_init__(self) -> None:
        unknown = [p for p in self.photos if p not in _PHOTOS]
        if unknown:
            raise DataError(
                f"embedded: unknown photo {unknown[0]!r}; valid: {', '.join(sorted(_PHOTOS))}"
            )
        if len(set(self.photos)) != len(self.photos) or len(self.photos) < 2:
            raise DataError("embedded: photos must name at least 2 distinct photos")
        if self.crop < 8:
            raise DataError(f"embedded: crop must be >= 8 px, got {self.crop}")
        if min(self.train, self.val, self.test) < 1:
            raise DataError("embedded: train, val and test counts must be >= 1")
        if len(self.fractions) != 3 or min(self.fractions) <= 0:
            raise DataError("embedded: fractions must be three positive numbers")
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise DataError(f"embedded: fractions must sum to 1, got {sum(self.fractions)}")
        if self.gap < 0 or self.min_std < 0:
            raise DataError("embedded: gap and min_std must be >= 0")
        if not isinstance(self.tiles, int) or not 1 <= self.tiles <= 8:
            raise DataError(f"embedded: tiles must be an integer from 1 to 8, got {self.tiles!r}")

    def count(self, split: str) -> int:
        return {"train": self.train, "val": self.val, "test": self.test}[split]


Box = tuple[int, int, int, int]  # top, left, bottom, right; bottom/right exclusive


def split_regions(
    height: int, width: int, fractions: Sequence[float] = (0.6, 0.2, 0.2), gap: int = 0
) -> dict[str, Box]:
    """Cut an image into three disjoint bands across its longer side, one per split.

    Bands follow the longer side so that the thin val/test bands stay as wide as
    possible across the shorter one. ``gap`` pixels are left out between bands.
    """
    along_width = width >= height
    length = width if along_width else height
    usable = length - 2 * gap
    n_train = int(usable * fractions[0])
    n_val = int(usable * fractions[1])
    starts = (0, n_train + gap, n_train + n_val + 2 * gap)
    ends = (n_train, n_train + gap + n_val, length)
    boxes: dict[str, Box] = {}
    for split, start, end in zip(SPLITS, starts, ends, strict=True):
        boxes[split] = (0, start, height, end) if along_width else (start, 0, end, width)
    return boxes


def split_tiles(height: int, width: int, config: EmbeddedConfig) -> dict[str, tuple[Box, ...]]:
    """The boxes of each split: :func:`split_regions`, then ``config.tiles`` pieces per
    held-out band across the shorter side, dealt to val and test as a checkerboard.

    The train band never changes, so neither do the train crops (nor any network trained on
    them). A photo too narrow for ``tiles`` crops side by side keeps one band per split.
    """
    bands = split_regions(height, width, config.fractions, config.gap)
    along_width = width >= height
    short = height if along_width else width
    n = config.tiles
    piece = (short - (n - 1) * config.gap) // n
    if n == 1 or piece < config.crop:
        return {split: (box,) for split, box in bands.items()}
    tiles: dict[str, list[Box]] = {"train": [bands["train"]], "val": [], "test": []}
    for band_index, band in enumerate(("val", "test")):
        top, left, bottom, right = bands[band]
        for i in range(n):
            start = i * (piece + config.gap)
            end = short if i == n - 1 else start + piece
            box = (start, left, end, right) if along_width else (top, start, bottom, end)
            tiles[("val", "test")[(i + band_index) % 2]].append(box)
    return {split: tuple(boxes) for split, boxes in tiles.items()}


def _skimage_data_dir() -> Path:
    # find_spec locates the package without importing it: importing skimage is slow,
    # and nothing here must go near its download machinery (pooch).
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("embedded: needs scikit-image installed (pip install scikit-image)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_photo(name: str, grayscale: bool) -> np.ndarray:
    path = _skimage_data_dir() / _PHOTOS[name].file
    if not path.is_file():
        raise DataError(f"embedded: {path} is missing from the scikit-image install")
    with Image.open(path) as img:
        img = img.convert("L") if grayscale else img.convert("RGB")
        arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return arr


@dataclass(frozen=True, eq=False)
class _EmbeddedSet:
    classes: tuple[str, ...]
    splits: dict[str, Split]  # at native crop size
    boxes: dict[str, np.ndarray]  # split -> (N, 4) int boxes, row-aligned with the labels
    info: tuple[dict[str, Any], ...]


def _sample_crops(
    photo: np.ndarray,
    regions: tuple[Box, ...],
    count: int,
    config: EmbeddedConfig,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[Box]] | str:
    """Draw ``count`` crops, each inside one of ``regions`` (picked in proportion to its
    crop positions); return a reason string when impossible."""
    size = config.crop
    for top, left, bottom, right in regions:
        if bottom - top < size or right - left < size:
            return f"its {bottom - top}x{right - left} px band is smaller than the {size} px crop"
    spans = np.array([(b - t - size + 1, r - x - size + 1) for t, x, b, r in regions])
    weights = spans.prod(axis=1) / spans.prod(axis=1).sum()
    corners = np.array([(t, x) for t, x, _, _ in regions])
    crops: list[np.ndarray] = []
    boxes: list[Box] = []
    # Bounded redraws: a photo that is mostly flat in one band is reported, not looped on.
    attempts = 50 * count
    while len(crops) < count and attempts > 0:
        batch = min(attempts, 2 * (count - len(crops)))
        attempts -= batch
        if len(regions) == 1:  # the one-band stream, unchanged since 0.1
            top, left, bottom, right = regions[0]
            ys = rng.integers(top, bottom - size + 1, size=batch)
            xs = rng.integers(left, right - size + 1, size=batch)
        else:
            which = rng.choice(len(regions), size=batch, p=weights)
            ys = corners[which, 0] + (rng.random(batch) * spans[which, 0]).astype(np.int64)
            xs = corners[which, 1] + (rng.random(batch) * spans[which, 1]).astype(np.int64)
        for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
            crop = photo[y : y + size, x : x + size]
            if config.min_std > 0 and float(crop.std()) < config.min_std:
                continue
            crops.append(crop)
            boxes.append((y, x, y + size, x + size))
            if len(crops) == count:
                break
    if len(crops) < count:
        return f"too few crops with std >= {config.min_std} in a band (found {len(crops)})"
    return crops, boxes


def _build_embedded(config: EmbeddedConfig) -> _EmbeddedSet:
    """Cut the crops for ``config``; deterministic, no caching (see _embedded_set)."""
    per_split: dict[str, tuple[list[np.ndarray], list[Box], list[int]]] = {
        s: ([], [], []) for s in SPLITS
    }
    classes: list[str] = []
    info: list[dict[str, Any]] = []
    for name in config.photos:
        photo = _read_photo(name, config.grayscale)
        height, width = photo.shape[:2]
        regions = split_tiles(height, width, config)
        drawn: dict[str, tuple[list[np.ndarray], list[Box]]] = {}
        reason = None
        for index, split in enumerate(SPLITS):
            # One stream per (photo, split): changing one count or photo leaves others alone.
            rng = np.random.default_rng([config.seed, zlib.crc32(name.encode()), index])
            result = _sample_crops(photo, regions[split], config.count(split), config, rng)
            if isinstance(result, str):
                reason = f"{split}: {result}"
                break
            drawn[split] = result
        if reason is not None:
            warnings.warn(f"embedded: skipped photo {name!r} ({reason})", stacklevel=3)
            continue
        label = len(classes)
        classes.append(name)
        for split, (crops, boxes) in drawn.items():
            per_split[split][0].extend(crops)
            per_split[split][1].extend(boxes)
            per_split[split][2].extend([label] * len(crops))
        info.append(
            {
                "class": name,
                "function": f"skimage.data.{name}",
                "file": _PHOTOS[name].file,
                "size": (height, width),
                "license": _PHOTOS[name].license,
            }
        )
    if len(classes) < 2:
        raise DataError(
            f"embedded: only {len(classes)} usable photos with crop={config.crop}; "
            "lower the crop size or the counts"
        )
    splits: dict[str, Split] = {}
    boxes: dict[str, np.ndarray] = {}
    for split, (crops, split_boxes, labels) in per_split.items():
        images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
        splits[split] = Split(images, torch.tensor(labels, dtype=torch.int64))
        boxes[split] = np.asarray(split_boxes, dtype=np.int64)
    return _EmbeddedSet(tuple(classes), splits, boxes, tuple(info))


_EMBEDDED_CACHE: dict[EmbeddedConfig, _EmbeddedSet] = {}


def _embedded_set(config: EmbeddedConfig) -> _EmbeddedSet:
    built = _EMBEDDED_CACHE.get(config)
    if built is None:
        built = _EMBEDDED_CACHE[config] = _build_embedded(config)
    return built


def embedded_info(config: EmbeddedConfig | None = None) -> list[dict[str, Any]]:
    """One dict per embedded class: class, function, file, size (h, w) and license."""
    return [dict(entry) for entry in _embedded_set(config or EmbeddedConfig()).info]


def _config_fields(config: EmbeddedConfig) -> dict[str, Any]:
    # tiles=1 is left out so that the set of scaler 0.1-0.4 (embedded:tiles=1 now) keeps
    # its fingerprint, and the studies made on it keep resuming under it.
    fields = dataclasses.asdict(config)
    if fields["tiles"] == 1:
        del fields["tiles"]
    return fields


class EmbeddedSource(DataSource):
    """The default source: crops of the photographs bundled with scikit-image."""

    def __init__(self, config: EmbeddedConfig | None = None) -> None:
        self.config = config or EmbeddedConfig()
        self._set = _embedded_set(self.config)
        super().__init__("embedded", self._set.classes, self.config.crop)
        self._fingerprint: str | None = None

    def _load(self, split: str, pixels: int) -> Split:
        native = self._set.splits[split]
        return Split(_downsample(native.images, pixels), native.labels)

    def crop_boxes(self, split: str) -> np.ndarray:
        """The (top, left, bottom, right) box of every crop of ``split``, row-aligned with
        its labels, in the coordinates of the source photo of that label."""
        return self._set.boxes[split].copy()

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            data_dir = _skimage_data_dir()
            files = {name: _file_sha256(data_dir / _PHOTOS[name].file) for name in self.classes}
            self._fingerprint = _digest(
                {
                    "kind": "embedded",
                    "v": _FORMAT_VERSION,
                    "config": _config_fields(self.config),
                    "files": files,
                }
            )
        return self._fingerprint


# --------------------------------------------------------------------------- imagefolder


def _default_cache_dir() -> Path:
    env = os.environ.get("SCALER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scaler"


def _read_cache(path: Path, keys: frozenset[str]) -> dict[str, Any] | None:
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


def _write_cache(path: Path, payload: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent writers of the same key just replace each other.
        write_atomic(path, lambda f: torch.save(payload, f))
    except OSError as exc:
        warnings.warn(f"could not write data cache {path}: {exc}", stacklevel=4)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _list_images(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden files and folders (.DS_Store, .ipynb_checkpoints, ...)
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


# Errors Pillow raises for unreadable, truncated or hostile files.
_DECODE_ERRORS: Final = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _decode_image(path: Path, pixels: int) -> np.ndarray:
    """Decode one file to a pixels x pixels x 3 uint8 array (shorter side, center crop)."""
    with Image.open(path) as opened:
        img = ImageOps.exif_transpose(opened)
        if img.mode.startswith("I;16"):
            # convert("RGB") would clip 16-bit values to white; keep the high byte instead.
            img = Image.fromarray((np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8))
        elif img.mode in ("P", "PA", "LA", "RGBA"):
            img = img.convert("RGBA")  # palette transparency needs RGBA before RGB
        img = img.convert("RGB")
        width, height = img.size
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
        # Resizing the centered square box equals "shorter side to pixels, then center
        # crop", in one filtering pass; reducing_gap pre-shrinks big photos cheaply.
        img = img.resize(
            (pixels, pixels),
            Image.Resampling.BICUBIC,
            box=(left, top, left + side, top + side),
            reducing_gap=3.0,
        )
        return np.asarray(img, dtype=np.uint8)


class ImageFolderSource(DataSource):
    """Images in one sub-folder per class, optionally under train/, val/ and test/."""

    def __init__(
        self,
        root: Path,
        cache_dir: Path | None = None,
        *,
        val_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        root = root.expanduser().resolve()
        if not root.exists():
            raise DataError(
                f"{root} does not exist; expected a folder with one sub-folder per class"
            )
        if not root.is_dir():
            raise DataError(f"{root} is a file; expected a folder with one sub-folder per class")
        self.root = root
        self.cache_dir = cache_dir if cache_dir is not None else _default_cache_dir()
        self.val_fraction = val_fraction
        self.seed = seed
        self._warned: set[str] = set()
        # Listed once here: the source is a snapshot of the folder, and the disk cache
        # key is derived from this listing.
        self._files: dict[str, list[tuple[Path, int]]] = {}
        has_train, has_val = (root / "train").is_dir(), (root / "val").is_dir()
        if has_train != has_val:
            present, absent = ("train", "val") if has_train else ("val", "train")
            raise DataError(
                f"{root} has {present}/ but no {absent}/; use both (plus optional test/) "
                "or put the class folders directly in it"
            )
        self.layout = "split" if has_train else "auto"
        if self.layout == "split":
            classes, train = self._scan(root / "train")
            self._files["train"] = train
            for split in ("val", "test"):
                folder = root / split
                if split == "test" and not folder.is_dir():
                    continue
                split_classes, files = self._scan(folder)
                if split_classes != classes:
                    raise DataError(self._mismatch(folder, classes, split_classes))
                self._files[split] = files
        else:
            classes, files = self._scan(root)
            self._split_auto(classes, files)
        super().__init__(f"imagefolder:{root}", classes, None)
        self._stats = self._stat_all()

    @staticmethod
    def _scan(folder: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
        class_dirs = _class_folders(folder)
        per_class = [_list_images(d) for d in class_dirs]
        exts = ", ".join(sorted(IMAGE_SUFFIXES))
        if not class_dirs or not any(per_class):
            raise DataError(
                f"{folder} has no images; expected {folder}/<class>/<image> with one of: {exts}"
            )
        for class_dir, images in zip(class_dirs, per_class, strict=True):
            if not images:
                raise DataError(
                    f"class folder {class_dir} has no images; add {exts} files or remove it"
                )
        files = [(path, label) for label, images in enumerate(per_class) for path in images]
        return tuple(d.name for d in class_dirs), files

    @staticmethod
    def _mismatch(folder: Path, expected: tuple[str, ...], found: tuple[str, ...]) -> str:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        return (
            f"{folder} classes differ from train/: missing {missing[:5]}, extra {extra[:5]}; "
            "every split needs the same class folders"
        )

    def _split_auto(self, classes: tuple[str, ...], files: list[tuple[Path, int]]) -> None:
        counts = np.bincount([label for _, label in files], minlength=len(classes))
        if counts.min() < 2:
            small = classes[int(counts.argmin())]
            raise DataError(
                f"class folder {self.root / small} has 1 image; each class needs at least 2 "
                "to be split into train and val (or add train/ and val/ folders)"
            )
        # Order each class by a seeded hash of the relative path and hold out the head:
        # unlike a permutation, adding or removing a file moves at most one other file.
        ranked = sorted(
            files,
            key=lambda item: (
                item[1],
                hashlib.sha256(f"{self.seed}:{self._rel(item[0])}".encode()).hexdigest(),
            ),
        )
        train: list[tuple[Path, int]] = []
        val: list[tuple[Path, int]] = []
        seen = np.zeros(len(classes), dtype=np.int64)
        for path, label in ranked:
            n_val = min(max(round(counts[label] * self.val_fraction), 1), counts[label] - 1)
            (val if seen[label] < n_val else train).append((path, label))
            seen[label] += 1
        self._files["train"] = sorted(train)
        self._files["val"] = sorted(val)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _stat_all(self) -> list[tuple[str, int, int]]:
        stats = []
        for files in self._files.values():
            for path, _ in files:
                st = path.stat()
                stats.append((self._rel(path), st.st_size, st.st_mtime_ns))
        return sorted(stats)

    def _split_config(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
        }

    def fingerprint(self) -> str:
        # The path is left out on purpose: a moved or copied folder (same names, sizes
        # and times) is the same data.
        return _digest(
            {
                "kind": "imagefolder",
                "v": _FORMAT_VERSION,
                **self._split_config(),
                "files": self._stats,
            }
        )

    def cache_path(self, split: str, pixels: int) -> Path:
        """Disk cache file for ``split`` at ``pixels`` given the folder state at parse time."""
        key = _digest(
            {
                "v": _FORMAT_VERSION,
                "path": str(self.root),
                "split": split,
                "pixels": pixels,
                "files": self._stats,
                **self._split_config(),
            },
            length=32,
        )
        return self.cache_dir / "imagefolder" / f"{key}.pt"

    def _load(self, split: str, pixels: int) -> Split:
        files = self._files.get(split)
        if files is None:
            raise DataError(
                f"{self.name}: has no {split!r} split; add {self.root / 'test'}/ next to "
                "train/ and val/ to get one"
            )
        path = self.cache_path(split, pixels)
        payload = _read_cache(path, frozenset({"images", "labels", "skipped"}))
        if payload is None:
            payload = self._decode_split(files, pixels)
            _write_cache(path, payload)
        skipped: list[str] = payload["skipped"]
        if skipped and split not in self._warned:
            self._warned.add(split)
            plural = "s" if len(skipped) != 1 else ""
            warnings.warn(
                f"{self.name}: skipped {len(skipped)} unreadable file{plural} in {split} "
                f"(first: {skipped[0]})",
                stacklevel=3,
            )
        labels: torch.Tensor = payload["labels"]
        present = torch.bincount(labels, minlength=self.num_classes)
        if bool((present == 0).any()):
            empty = self.classes[int(torch.nonzero(present == 0)[0])]
            raise DataError(
                f"{self.name}: class {empty!r} has no readable images in {split} "
                f"({len(skipped)} unreadable files skipped)"
            )
        return Split(payload["images"], labels)

    def _decode_split(self, files: list[tuple[Path, int]], pixels: int) -> dict[str, Any]:
        arrays: list[np.ndarray] = []
        labels: list[int] = []
        skipped: list[str] = []
        for path, label in files:
            try:
                arrays.append(_decode_image(path, pixels))
            except _DECODE_ERRORS:
                skipped.append(self._rel(path))
                continue
            labels.append(label)
        if arrays:
            images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        else:
            images = torch.empty((0, 3, pixels, pixels), dtype=torch.uint8)
        return {
            "images": images,
            "labels": torch.tensor(labels, dtype=torch.int64),
            "skipped": skipped,
        }


# --------------------------------------------------------------------------- cifar


@dataclass(frozen=True)
class _CifarFormat:
    scheme: str
    folder: str  # folder name inside the official archive
    train_files: tuple[str, ...]
    test_file: str
    names_file: str
    header: int  # label bytes before the pixels of each record
    label_offset: int  # which of those bytes is the label used
    num_classes: int

    @property
    def record(self) -> int:
        return self.header + 3 * 32 * 32


_CIFAR: Final[dict[str, _CifarFormat]] = {
    "cifar10": _CifarFormat(
        scheme="cifar10",
        folder="cifar-10-batches-bin",
        train_files=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        test_file="test_batch.bin",
        names_file="batches.meta.txt",
        header=1,
        label_offset=0,
        num_classes=10,
    ),
    "cifar100": _CifarFormat(
        scheme="cifar100",
        folder="cifar-100-binary",
        train_files=("train.bin",),
        test_file="test.bin",
        names_file="fine_label_names.txt",
        header=2,
        label_offset=1,  # byte 0 is the coarse label; the fine label is the task
        num_classes=100,
    ),
}


class CifarSource(DataSource):
    """The official binary CIFAR-10/100 files; val is a seeded 10 % of train per class."""

    def __init__(
        self, scheme: str, path: Path, *, val_fraction: float = 0.1, seed: int = 0
    ) -> None:
        fmt = _CIFAR[scheme]
        path = path.expanduser().resolve()
        if not path.exists():
            raise DataError(
                f"{path} does not exist; expected the folder of the {fmt.scheme} "
                f"binary files or its parent holding {fmt.folder}/"
            )
        if not path.is_dir():
            raise DataError(
                f"{path} is a file; expected the folder of the {fmt.scheme} "
                f"binary files or its parent holding {fmt.folder}/"
            )
        if (path / fmt.folder).is_dir() and not (path / fmt.test_file).is_file():
            path = path / fmt.folder
        for file in (*fmt.train_files, fmt.test_file, fmt.names_file):
            if not (path / file).is_file():
                raise DataError(
                    f"{path / file} is missing; {fmt.scheme}:PATH needs the official binary "
                    f"files ({', '.join((*fmt.train_files, fmt.test_file, fmt.names_file))})"
                )
        for file in (*fmt.train_files, fmt.test_file):
            size = (path / file).stat().st_size
            if size == 0 or size % fmt.record:
                raise DataError(
                    f"{path / file} has {size} bytes, not a multiple of the {fmt.record}-byte "
                    f"{fmt.scheme} record; is it the binary (not the python) version?"
                )
        text = (path / fmt.names_file).read_text(encoding="utf-8", errors="replace")
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if len(names) != fmt.num_classes:
            raise DataError(
                f"{path / fmt.names_file} lists {len(names)} class names; "
                f"{fmt.scheme} needs {fmt.num_classes}"
            )
        self.format = fmt
        self.folder = path
        self.val_fraction = val_fraction
        self.seed = seed
        self._fingerprint: str | None = None
        super().__init__(f"{fmt.scheme}:{path}", names, 32)

    def _read(self, files: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        fmt = self.format
        records = np.concatenate(
            [np.fromfile(self.folder / f, dtype=np.uint8).reshape(-1, fmt.record) for f in files]
        )
        labels = records[:, fmt.label_offset].astype(np.int64)
        if labels.size and int(labels.max()) >= fmt.num_classes:
            raise DataError(
                f"{self.name}: label {int(labels.max())} out of range 0..{fmt.num_classes - 1}; "
                "are these the right files for this scheme?"
            )
        # Records store the R, G and B planes one after the other, row-major: already CHW.
        images = records[:, fmt.header :].reshape(-1, 3, 32, 32)
        return images, labels

    def _load(self, split: str, pixels: int) -> Split:
        if split == "test":
            images, labels = self._read([self.format.test_file])
        else:
            images, labels = self._read(self.format.train_files)
            held = _stratified_holdout(labels, self.val_fraction, self.seed)
            keep = held if split == "val" else ~held
            images, labels = images[keep], labels[keep]
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        return Split(_downsample(tensor, pixels), torch.from_numpy(labels))

    def fingerprint(self) -> str:
        # Hashes the file contents (~0.2 s for CIFAR-10), once per source object.
        if self._fingerprint is None:
            fmt = self.format
            files = (*fmt.train_files, fmt.test_file, fmt.names_file)
            self._fingerprint = _digest(
                {
                    "kind": fmt.scheme,
                    "v": _FORMAT_VERSION,
                    "val_fraction": self.val_fraction,
                    "seed": self.seed,
                    "files": {f: _file_sha256(self.folder / f) for f in files},
                }
            )
        return self._fingerprint


# --------------------------------------------------------------------------- fractal

# Splits of at least this many native pixels (about 2 s of rendering on one core) are
# kept on disk too: a worker process then loads in a fraction of a second.
_FRACTAL_DISK_PIXELS: Final = 25_000_000
_FRACTAL_MEMORY: dict[tuple[FractalConfig, str], Split] = {}


class FractalSource(DataSource):
    """Fractals of random iterated function systems, one per class, made from a seed."""

    def __init__(self, config: FractalConfig | None = None, cache_dir: Path | None = None):
        self.config = config or FractalConfig()
        self.cache_dir = cache_dir if cache_dir is not None else _default_cache_dir()
        defaults = FractalConfig()
        changed = [
            f"{f.name}={getattr(self.config, f.name)}"
            for f in dataclasses.fields(FractalConfig)
            if getattr(self.config, f.name) != getattr(defaults, f.name)
        ]
        name = "fractal:" + ",".join(changed) if changed else "fractal"
        super().__init__(name, fractal.class_names(self.config), self.config.native)

    def fingerprint(self) -> str:
        return _digest(
            {
                "kind": "fractal",
                "v": _FORMAT_VERSION,
                "generator": fractal.FRACTAL_VERSION,
                "config": dataclasses.asdict(self.config),
            }
        )

    def cache_path(self, split: str) -> Path:
        """Disk cache file of ``split`` at native size."""
        return self.cache_dir / "fractal" / f"{self.fingerprint()}-{split}.pt"

    def native(self, split: str) -> Split:
        """``split`` at native size, rendered once per process (and read from disk if cached)."""
        key = (self.config, split)
        cached = _FRACTAL_MEMORY.get(key)
        if cached is None:
            cached = _FRACTAL_MEMORY[key] = self._read_or_render(split)
        return cached

    def _read_or_render(self, split: str) -> Split:
        config = self.config
        count = config.classes * config.count(split)
        on_disk = count * config.native**2 >= _FRACTAL_DISK_PIXELS
        path = self.cache_path(split)
        payload = _read_cache(path, frozenset({"images", "labels"})) if on_disk else None
        shape = (count, 3, config.native, config.native)
        if payload is not None and tuple(payload["images"].shape) == shape:
            return Split(payload["images"], payload["labels"])
        images, labels = fractal.render_split(config, split)
        if on_disk:
            _write_cache(path, {"images": images, "labels": labels})
        return Split(images, labels)

    def _load(self, split: str, pixels: int) -> Split:
        native = self.native(split)
        return Split(_downsample(native.images, pixels), native.labels)


def _parse_fractal(value: str, options: str, cache_dir: Path | None) -> FractalSource:
    if not options.strip():
        keys = ", ".join(f.name for f in dataclasses.fields(FractalConfig))
        raise DataError(
            f"--data {value!r}: no options; use fractal or fractal:KEY=VALUE,... ({keys})"
        )
    try:
        config = fractal.parse_fractal(options)
    except ValueError as exc:
        raise DataError(f"--data {value!r}: {exc}") from None
    return FractalSource(config, cache_dir)


# --------------------------------------------------------------------------- parsing

# The embedded knobs a --data spec may set (photos and fractions stay Python-only).
_EMBEDDED_KEYS: Final = {
    "crop": int,
    "train": int,
    "val": int,
    "test": int,
    "gap": int,
    "tiles": int,
    "seed": int,
    "min_std": float,
}


def _parse_embedded(value: str, options: str) -> EmbeddedConfig:
    """``embedded:tiles=2,val=100``: an :class:`EmbeddedConfig` with those fields set."""
    keys = ", ".join(_EMBEDDED_KEYS)
    fields: dict[str, Any] = {}
    for item in options.split(","):
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or key not in _EMBEDDED_KEYS or key in fields:
            raise DataError(
                f"--data {value!r}: expected distinct KEY=VALUE items with KEY one of {keys}"
            )
        try:
            fields[key] = _EMBEDDED_KEYS[key](text)
        except ValueError:
            raise DataError(f"--data {value!r}: {key} must be a number, got {text!r}") from None
    try:
        return EmbeddedConfig(**fields)
    except DataError as exc:
        raise DataError(f"--data {value!r}: {exc}") from None


def parse_data(value: str, cache_dir: Path | None = None) -> DataSource:
    """Turn a ``--data`` spec into a validated source (lists files, decodes nothing).

    ``cache_dir`` is where imagefolder keeps decoded tensors and fractal its rendered
    splits; default ``$SCALER_CACHE`` or ``~/.cache/scaler``.
    """
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"--data {value!r}: empty; valid: {VALID_SPECS}")
    if value == "embedded":
        return EmbeddedSource()
    if value == "fractal":
        return FractalSource(cache_dir=cache_dir)
    scheme, sep, rest = value.partition(":")
    if scheme == "fractal":
        return _parse_fractal(value, rest, cache_dir)
    if not sep:
        raise DataError(f"--data {value!r}: unknown data source; valid: {VALID_SPECS}")
    if scheme == "embedded":
        return EmbeddedSource(_parse_embedded(value, rest))
    if scheme not in ("imagefolder", *_CIFAR):
        raise DataError(f"--data {value!r}: unknown scheme {scheme!r}; valid: {VALID_SPECS}")
    if not rest.strip():
        raise DataError(f"--data {value!r}: missing path; use {scheme}:PATH")
    try:
        if scheme == "imagefolder":
            return ImageFolderSource(Path(rest), cache_dir)
        return CifarSource(scheme, Path(rest))
    except DataError as exc:
        raise DataError(f"--data {value!r}: {exc}") from None
    except OSError as exc:  # unreadable folder, permission denied, ...
        raise DataError(f"--data {value!r}: {exc.strerror or exc}") from None
