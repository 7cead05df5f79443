"""Fashion-MNIST, embedded (``--data fashion``, ``fashion:train=N,val=N,test=N``): a seeded,
class-balanced draw of the real dataset shipped inside the package, so a search runs on real,
independent held-out images with nothing downloaded.

Why it exists: on the embedded photographs most of a run's variance is which of 13 photographs'
held-out bands a network gets right (reports/noise); 1,500 val images drawn independently from
Fashion-MNIST leave an evaluation part of about half a point (reports/noise-fashion).

``fashion_mnist.npz`` holds, per split, grayscale 28 px images ordered by class and, within a
class, in the official files' order: train 260 per class from the official training set, val
150 more from it, test 150 from the official test set (``scripts/fashion_mnist.py --npz``,
seed 0). The options take the first N of each class (at most the embedded counts).
Fashion-MNIST is © Zalando SE, MIT licence (``fashion_mnist.LICENSE`` beside the file).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from typing import Final

import numpy as np
import torch

from scaler.data.base import (
    FORMAT_VERSION,
    DataError,
    DataSource,
    Split,
    digest,
    downsample,
    file_sha256,
)

__all__ = ["EMBEDDED_COUNTS", "FASHION_CLASSES", "FashionConfig", "FashionSource"]

FASHION_CLASSES: Final = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
# Images per class in the embedded file; the defaults use all of them.
EMBEDDED_COUNTS: Final = {"train": 260, "val": 150, "test": 150}
_FILE: Final = "fashion_mnist.npz"


@dataclass(frozen=True)
class FashionConfig:
    """Images per class of each split: the first N of each class in the embedded draw."""

    train: int = EMBEDDED_COUNTS["train"]
    val: int = EMBEDDED_COUNTS["val"]
    test: int = EMBEDDED_COUNTS["test"]

    def __post_init__(self) -> None:
        for split, most in EMBEDDED_COUNTS.items():
            n = getattr(self, split)
            if not 1 <= n <= most:
                raise DataError(f"{split}={n} is out of range: 1..{most} images per class")


def _read() -> dict[str, np.ndarray]:
    path = resources.files("scaler.data") / _FILE
    with resources.as_file(path) as file, np.load(file) as npz:
        return {k: npz[k] for k in npz.files}


class FashionSource(DataSource):
    """The embedded Fashion-MNIST draw: 10 classes, 28 px grayscale, served as RGB."""

    def __init__(self, config: FashionConfig | None = None) -> None:
        self.config = config or FashionConfig()
        changed = {
            f.name: getattr(self.config, f.name)
            for f in dataclasses.fields(self.config)
            if getattr(self.config, f.name) != f.default
        }
        name = "fashion" + (
            ":" + ",".join(f"{k}={v}" for k, v in changed.items()) if changed else ""
        )
        self._arrays: dict[str, np.ndarray] | None = None
        self._fingerprint: str | None = None
        super().__init__(name, FASHION_CLASSES, 28)

    @property
    def grayscale(self) -> bool:
        return True

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = _read()
        images, labels = self._arrays[f"{split}_images"], self._arrays[f"{split}_labels"]
        keep = np.zeros(labels.shape[0], dtype=bool)
        for c in range(len(FASHION_CLASSES)):  # the first n of each class
            keep[np.flatnonzero(labels == c)[: getattr(self.config, split)]] = True
        return images[keep], labels[keep].astype(np.int64)

    def _load(self, split: str, pixels: int) -> Split:
        images, labels = self._split(split)
        gray = torch.from_numpy(np.ascontiguousarray(images))
        rgb = gray.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
        return Split(downsample(rgb, pixels), torch.from_numpy(labels))

    def fingerprint(self) -> str:
        if self._fingerprint is None:  # the file's bytes, hashed once per source object
            with resources.as_file(resources.files("scaler.data") / _FILE) as file:
                content = file_sha256(file)
            payload = {"kind": "fashion", "v": FORMAT_VERSION, "file": content}
            self._fingerprint = digest({**payload, **dataclasses.asdict(self.config)})
        return self._fingerprint
