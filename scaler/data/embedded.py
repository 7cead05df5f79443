"""The embedded set (``--data embedded``, the default): crops of photographs bundled with
scikit-image, one class per photo.

Each photo is cut into three disjoint bands across its longer side (:func:`split_regions`);
the held-out bands are cut into ``tiles`` pieces dealt to val and test as a checkerboard
(:func:`split_tiles`), and square crops are drawn inside each split's pieces with one seeded
stream per (photo, split). Nothing is downloaded: the photos are read from the installed
scikit-image package, and the fingerprint hashes their bytes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from PIL import Image

from scaler.data.base import (
    FORMAT_VERSION,
    SPLITS,
    DataError,
    DataSource,
    Split,
    digest,
    downsample,
    file_sha256,
)

__all__ = [
    "Box",
    "EmbeddedConfig",
    "EmbeddedSource",
    "embedded_info",
    "split_regions",
    "split_tiles",
]


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
    # Side of every crop at native resolution; larger sizes follow --upsample.
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
    # B0-B3 (docs/proxy.md, "Calibration"). Photos whose shorter side cannot hold that many crops
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

    @property
    def grayscale(self) -> bool:
        return self.config.grayscale

    def _load(self, split: str, pixels: int) -> Split:
        native = self._set.splits[split]
        return Split(downsample(native.images, pixels), native.labels)

    def crop_boxes(self, split: str) -> np.ndarray:
        """The (top, left, bottom, right) box of every crop of ``split``, row-aligned with
        its labels, in the coordinates of the source photo of that label."""
        return self._set.boxes[split].copy()

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            data_dir = _skimage_data_dir()
            files = {name: file_sha256(data_dir / _PHOTOS[name].file) for name in self.classes}
            self._fingerprint = digest(
                {
                    "kind": "embedded",
                    "v": FORMAT_VERSION,
                    "config": _config_fields(self.config),
                    "files": files,
                }
            )
        return self._fingerprint
