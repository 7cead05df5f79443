"""The official *binary* CIFAR-10 and CIFAR-100 files in a local folder (``--data
cifar10:PATH``, ``--data cifar100:PATH``): PATH is the folder of the ``.bin`` files or its
parent holding the archive's folder. Val is a seeded 10 % of train per class; test is the
official test batch. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
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
    stratified_holdout,
)

__all__ = ["CIFAR_SCHEMES", "CifarSource"]


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
# The spec schemes served here, ``cifar10:PATH`` and ``cifar100:PATH``.
CIFAR_SCHEMES: Final = tuple(_CIFAR)


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
            held = stratified_holdout(labels, self.val_fraction, self.seed)
            keep = held if split == "val" else ~held
            images, labels = images[keep], labels[keep]
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        return Split(downsample(tensor, pixels), torch.from_numpy(labels))

    def fingerprint(self) -> str:
        # Hashes the file contents (~0.2 s for CIFAR-10), once per source object.
        if self._fingerprint is None:
            fmt = self.format
            files = (*fmt.train_files, fmt.test_file, fmt.names_file)
            self._fingerprint = digest(
                {
                    "kind": fmt.scheme,
                    "v": FORMAT_VERSION,
                    "val_fraction": self.val_fraction,
                    "seed": self.seed,
                    "files": {f: file_sha256(self.folder / f) for f in files},
                }
            )
        return self._fingerprint
