"""Images in one sub-folder per class (``--data imagefolder:PATH``, the ImageFolder
convention), optionally with ``train/``, ``val/`` (and ``test/``) above the class folders.

Without those split folders, val is a seeded, stable holdout of each class. Images are
decoded to the requested size (shorter side, center crop) and cached on disk per (folder
state, split, size); the fingerprint hashes names, sizes and times, not the path. An image
smaller than the requested size is enlarged with the ``--upsample`` filter, or refused (off);
the smallest shorter side (read from the files' headers) is the source's native size.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from PIL import Image, ImageOps

from scaler.data.base import (
    FORMAT_VERSION,
    DataError,
    DataSource,
    Split,
    default_cache_dir,
    digest,
    read_cache,
    write_cache,
)

__all__ = ["IMAGE_SUFFIXES", "ImageFolderSource"]

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".webp"})


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


# Pillow's filter for enlarging an image under each --upsample policy.
_UPSAMPLE_FILTERS: Final = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
# Modes of one-channel files: served as RGB with the channel replicated.
_GRAY_MODES: Final = frozenset({"1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L"})


def _header(path: Path) -> tuple[int, bool]:
    """(shorter side, one channel) of an image file, from its header alone."""
    with Image.open(path) as opened:
        return min(opened.size), opened.mode in _GRAY_MODES


def _decode_image(path: Path, pixels: int, upsample: str = "bicubic") -> np.ndarray:
    """Decode one file to a pixels x pixels x 3 uint8 array (shorter side, center crop);
    an image smaller than ``pixels`` is enlarged with the ``upsample`` filter."""
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
        # Shrinking stays bicubic (the bytes scaler has always cached).
        enlarge = side < pixels and upsample in _UPSAMPLE_FILTERS
        img = img.resize(
            (pixels, pixels),
            _UPSAMPLE_FILTERS[upsample] if enlarge else Image.Resampling.BICUBIC,
            box=(left, top, left + side, top + side),
            reducing_gap=3.0,
        )
        return np.asarray(img, dtype=np.uint8)


class ImageFolderSource(DataSource):
    """Images in one sub-folder per class, optionally under train/, val/ and test/."""

    decodes_any_size = True

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
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self.val_fraction = val_fraction
        self.seed = seed
        self._warned: set[str] = set()
        self._headers: tuple[int, bool] | None = None
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
            self._check_classes(classes)
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
            self._check_classes(classes)
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

    def _check_classes(self, classes: tuple[str, ...]) -> None:
        # One class trains every network to 100 % top-1: a search would rank nothing.
        if len(classes) < 2:
            raise DataError(
                f"{self.root} has {len(classes)} class ({', '.join(classes)}): at least 2 "
                "classes are needed, each with images in every split"
            )

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

    def split_labels(self, split: str) -> np.ndarray | None:
        """Labels of ``split`` from the listing, no image decoded (None: no such split)."""
        files = self._files.get(split)
        return None if files is None else np.array([lab for _, lab in files], dtype=np.int64)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _stat_all(self) -> list[tuple[str, int, int]]:
        stats = []
        for files in self._files.values():
            for path, _ in files:
                st = path.stat()
                stats.append((self._rel(path), st.st_size, st.st_mtime_ns))
        return sorted(stats)

    @property
    def native_pixels(self) -> int | None:
        return self._read_headers()[0]

    @property
    def grayscale(self) -> bool:
        return self._read_headers()[1]

    def _read_headers(self) -> tuple[int, bool]:
        """(smallest shorter side, every file one channel) over all files, cached on disk
        per folder state: headers only, but one open per file."""
        if self._headers is not None:
            return self._headers
        path = self.cache_dir / "imagefolder" / f"headers-{self.fingerprint()}.json"
        try:
            found = json.loads(path.read_text())
            self._headers = (int(found["side"]), bool(found["gray"]))
            return self._headers
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not cached yet (or unreadable): read the headers
        sides, gray = [], True
        for files in self._files.values():
            for file, _ in files:
                try:
                    side, one = _header(file)
                except _DECODE_ERRORS:
                    continue  # skipped when decoded, with a warning
                sides.append(side)
                gray = gray and one
        self._headers = (min(sides, default=1), gray and bool(sides))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"side": self._headers[0], "gray": self._headers[1]}))
        except OSError:
            pass  # a cache only: read again next time
        return self._headers

    def _split_config(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
        }

    def fingerprint(self) -> str:
        # The path is left out on purpose: a moved or copied folder (same names, sizes
        # and times) is the same data.
        return digest(
            {
                "kind": "imagefolder",
                "v": FORMAT_VERSION,
                **self._split_config(),
                "files": self._stats,
            }
        )

    def cache_path(self, split: str, pixels: int) -> Path:
        """Disk cache file for ``split`` at ``pixels`` given the folder state at parse time."""
        # Only an enlarging filter other than bicubic changes the bytes cached before
        # --upsample existed (all bicubic): those keys stay as they were.
        enlarged = self.upsample == "bilinear" and pixels > (self.native_pixels or pixels)
        key = digest(
            {
                **({"upsample": self.upsample} if enlarged else {}),
                "v": FORMAT_VERSION,
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
        payload = read_cache(path, frozenset({"images", "labels", "skipped"}))
        if payload is None:
            payload = self._decode_split(files, pixels, self.upsample)
            write_cache(path, payload)
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

    def _decode_split(
        self, files: list[tuple[Path, int]], pixels: int, upsample: str
    ) -> dict[str, Any]:
        arrays: list[np.ndarray] = []
        labels: list[int] = []
        skipped: list[str] = []
        for path, label in files:
            try:
                arrays.append(_decode_image(path, pixels, upsample))
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
