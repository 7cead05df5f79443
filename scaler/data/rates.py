"""What a held-out split's labels alone score: chance, the majority-class rate, small classes,
and balanced accuracy (mean per-class recall) from per-image correctness.

A top-1 of 45 % means little on a split where one class is 42 % of the images; these numbers
are printed beside top-1 so an imbalanced or small set is read for what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from scaler.data.base import DataError, DataSource

__all__ = [
    "HELD_OUT",
    "MIN_CLASS_IMAGES",
    "SplitRates",
    "balanced_accuracy",
    "class_rates",
    "rates_from_attrs",
    "rates_to_attrs",
    "small_class_warnings",
    "stored_rates",
]

# The splits top-1 is scored on: val ranks the search, test (when the data have one) is
# reported beside it.
HELD_OUT: Final = ("val", "test")

# Fewer held-out images of a class than this and its recall moves 5 points or more per image:
# the class is warned about (20 images is a 95 % binomial interval of about ±20 points).
MIN_CLASS_IMAGES: Final = 20


@dataclass(frozen=True)
class SplitRates:
    """The class counts of one held-out split and the rates they give."""

    split: str  # val | test
    classes: tuple[str, ...]  # class names in label order
    counts: tuple[int, ...]  # images per class, in label order

    @property
    def images(self) -> int:
        return sum(self.counts)

    @property
    def chance(self) -> float:
        """Top-1 (%) of a uniform guess: 100 / classes."""
        return 100.0 / len(self.classes)

    @property
    def majority(self) -> float:
        """Top-1 (%) of always answering the largest class: its share of the split."""
        return 100.0 * max(self.counts) / self.images if self.images else float("nan")

    def describe(self) -> str:
        """ "Chance 10.0 %, majority class 41.8 % (val: 650 images, 13 classes)"."""
        return (
            f"Chance {self.chance:.1f} %, majority class {self.majority:.1f} % "
            f"({self.split}: {self.images} images, {len(self.classes)} classes)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The rates as an export states them (percentages, counts)."""
        rates = {"chance": self.chance, "majority": self.majority}
        return {**rates, "images": self.images, "classes": len(self.classes)}

    def small(self, minimum: int = MIN_CLASS_IMAGES) -> list[tuple[str, int]]:
        """(class, images) of the classes with fewer than ``minimum`` images, smallest first."""
        pairs = [(n, c) for n, c in zip(self.classes, self.counts, strict=True) if c < minimum]
        return sorted(pairs, key=lambda p: (p[1], p[0]))


def _labels(source: DataSource, split: str) -> np.ndarray | None:
    """The labels of ``split`` in the order the source serves it (None: no such split)."""
    labels = getattr(source, "split_labels", None)
    if labels is not None:  # a source that knows them without decoding images
        return labels(split)
    try:
        # The native size resizes nothing; a source without one is small at 32 px.
        return source.load(split, source.max_pixels or 32).labels.numpy()
    except DataError:
        return None


def class_rates(source: DataSource) -> dict[str, SplitRates]:
    """The rates of every held-out split ``source`` has (val always, test when it has one)."""
    out = {}
    for split in HELD_OUT:
        labels = _labels(source, split)
        if labels is None:
            continue
        counts = np.bincount(labels, minlength=source.num_classes)
        out[split] = SplitRates(split, source.classes, tuple(int(c) for c in counts))
    return out


def rates_to_attrs(rates: dict[str, SplitRates]) -> dict[str, Any]:
    """The study attribute holding the rates (JSON-safe)."""
    if not rates:
        return {}
    first = next(iter(rates.values()))
    return {
        "classes": list(first.classes),
        "counts": {split: list(r.counts) for split, r in rates.items()},
    }


def rates_from_attrs(attrs: dict[str, Any] | None) -> dict[str, SplitRates]:
    """The rates stored by :func:`rates_to_attrs` ({} when none are stored)."""
    if not attrs or "counts" not in attrs:
        return {}
    classes = tuple(attrs["classes"])
    return {s: SplitRates(s, classes, tuple(c)) for s, c in attrs["counts"].items()}


def small_class_warnings(rates: dict[str, SplitRates], minimum: int = MIN_CLASS_IMAGES) -> str:
    """One line naming the classes with fewer than ``minimum`` held-out images ("" if none)."""
    parts = []
    for split, r in rates.items():
        small = r.small(minimum)
        if small:
            named = ", ".join(f"{name} ({n})" for name, n in small[:5])
            more = f" and {len(small) - 5} more" if len(small) > 5 else ""
            what = f"{len(small)} class" + ("es" if len(small) > 1 else "")
            parts.append(f"{what} under {minimum} {split} images: {named}{more}")
    if not parts:
        return ""
    return (
        "warning: "
        + "; ".join(parts)
        + " — their recall moves 5 points or more per image, so top-1 and balanced accuracy "
        "are noisy"
    )


def balanced_accuracy(correct, labels) -> float:
    """Mean per-class recall (%) of per-image ``correct`` flags, classes present in ``labels``."""
    correct = np.asarray(correct, dtype=bool)
    labels = np.asarray(labels)
    if correct.shape != labels.shape:
        raise ValueError(f"{correct.size} correctness flags for {labels.size} labels")
    present = np.unique(labels)
    hits = np.bincount(labels, weights=correct.astype(float))[present]
    totals = np.bincount(labels)[present]
    return float(100.0 * np.mean(hits / totals))


def stored_rates(attrs: dict[str, Any], config: dict[str, Any]) -> dict[str, SplitRates]:
    """A study's rates: stored at creation, else computed from its data when they still load
    with the same fingerprint (studies before 0.7); {} when neither: unknown."""
    rates = rates_from_attrs(attrs.get("class_rates"))
    if rates or not config.get("data"):
        return rates
    from scaler.data.parse import parse_data

    try:
        source = parse_data(config["data"])
        if source.fingerprint() != config.get("data_fingerprint"):
            return {}  # other bytes under the same spec: their rates are not the study's
        return class_rates(source)
    except (DataError, OSError):
        return {}
