"""``scaler bench``: scaler's trainer against a naive reference loop, side by side.

:func:`bench` trains the same model on the same data, pixels and batch size two ways, in
alternating rounds: with :func:`scaler.train.train` (uint8 data on the device, batched on-device
augmentation, channels_last) and with :func:`reference_loop`, written like the PyTorch ImageNet
example (PNG files, a ``DataLoader`` whose workers decode and augment each sample with Pillow,
fp32 NCHW). It lives apart from the trainer because nothing in a search needs it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from scaler.augment import LOG_RATIO, MEAN, STD
from scaler.data import DataSource
from scaler.device import fork_rng, seed_global, select_device, sync
from scaler.machine import cpu
from scaler.model import build
from scaler.proxy import ProxyConfig, check_int
from scaler.spec import Spec
from scaler.train import train

__all__ = ["BenchResult", "bench", "reference_loop"]


@dataclass(frozen=True)
class BenchResult:
    """Training throughput of scaler's trainer against the naive reference loop."""

    scaler_images_per_s: float  # median over rounds
    reference_images_per_s: float  # median over rounds
    scaler_rounds: tuple[float, ...]
    reference_rounds: tuple[float, ...]
    ratio: float  # scaler / reference (medians)
    device: str
    threads: int
    workers: int  # DataLoader workers of the reference loop
    model: str
    pixels: int
    batch_size: int
    images: int  # timed training images per round, for each loop
    cpu: str = ""  # the CPU it ran on: model, vector extensions, cores (scaler.machine)

    def describe(self) -> str:
        """A short multi-line report."""
        rounds = ", ".join(
            f"{s:.0f}/{r:.0f}"
            for s, r in zip(self.scaler_rounds, self.reference_rounds, strict=True)
        )
        return (
            f"{self.model}, batch {self.batch_size}, {self.images} images per round, "
            f"{self.device}, {self.threads} threads, {self.workers} loader workers\n"
            f"cpu       {self.cpu}\n"
            f"scaler    {self.scaler_images_per_s:8.1f} img/s\n"
            f"reference {self.reference_images_per_s:8.1f} img/s\n"
            f"ratio     {self.ratio:8.2f}x  (rounds scaler/reference: {rounds})"
        )


class _PngFolder(Dataset):
    """The reference input pipeline: one PNG per sample, decoded and augmented with Pillow."""

    def __init__(self, files: list[tuple[str, int]], pixels: int, crop_scale: float) -> None:
        self.files = files
        self.pixels = pixels
        self.crop_scale = crop_scale
        self.mean = torch.tensor(MEAN).view(3, 1, 1) / 255
        self.std = torch.tensor(STD).view(3, 1, 1) / 255

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[index]
        with Image.open(path) as img:
            img = img.convert("RGB")
        width, height = img.size
        # RandomResizedCrop: area in [crop_scale, 1], log-uniform aspect ratio, clamped box.
        area = width * height * (self.crop_scale + (1 - self.crop_scale) * torch.rand(1).item())
        ratio = math.exp((2 * torch.rand(1).item() - 1) * LOG_RATIO)
        w = min(width, max(1, round(math.sqrt(area * ratio))))
        h = min(height, max(1, round(math.sqrt(area / ratio))))
        left = int(torch.randint(0, width - w + 1, (1,)))
        top = int(torch.randint(0, height - h + 1, (1,)))
        img = img.resize(
            (self.pixels, self.pixels),
            Image.Resampling.BILINEAR,
            box=(left, top, left + w, top + h),
        )
        if torch.rand(1).item() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        # ToTensor + Normalize.
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        x = (x.float() / 255 - self.mean) / self.std
        return x, label


def _write_pngs(source: DataSource, folder: Path, pixels: int) -> list[tuple[str, int]]:
    """Save the train split at ``pixels`` as ImageFolder-style PNGs; return (path, label)."""
    split = source.load("train", pixels)
    array = split.images.permute(0, 2, 3, 1).numpy()
    files: list[tuple[str, int]] = []
    for i, (image, label) in enumerate(zip(array, split.labels.tolist(), strict=True)):
        path = folder / f"{label:04d}" / f"{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        files.append((str(path), label))
    return files


def _forever(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


def reference_loop(
    spec: Spec,
    files: list[tuple[str, int]],
    num_classes: int,
    *,
    images: int,
    batch_size: int,
    config: ProxyConfig | None = None,
    workers: int | None = None,
) -> float:
    """Train ``spec`` the naive way on PNG ``files``; return images/s after one warm-up step.

    Written like the PyTorch ImageNet example: a ``DataLoader`` over a Dataset that opens, crops,
    flips and normalizes each file with Pillow in worker processes, an fp32 NCHW model, plain
    SGD with momentum. lr, momentum, weight decay and crop scale come from ``config``.
    """
    config = config or ProxyConfig()
    device = select_device(config.device)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    steps = max(1, images // batch_size)
    with fork_rng(device):
        seed_global(config.seed, device)
        model = build(spec, num_classes).to(device)
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        dataset = _PngFolder(files, spec.pixels, config.crop_scale)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            drop_last=True,
            pin_memory=device.type == "cuda",
        )
        model.train()
        batches = _forever(loader)
        start = 0.0
        for step in range(steps + 1):
            x, y = next(batches)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step == 0:  # warm-up: worker start-up and kernel selection are not timed
                sync(device)
                start = time.perf_counter()
        sync(device)
        elapsed = time.perf_counter() - start
        del batches  # shuts the workers down
    return steps * batch_size / elapsed


def bench(
    spec: Spec,
    source: DataSource,
    config: ProxyConfig | None = None,
    rounds: int = 3,
    *,
    images: int | None = None,
    workers: int | None = None,
) -> BenchResult:
    """Throughput of :func:`train` vs :func:`reference_loop` on the same model, data and batch.

    Rounds alternate (scaler, reference, scaler, ...) so that load on a shared machine hits
    both alike; each round trains a fresh model on ``images`` timed images (default 32
    batches) after one untimed warm-up step. The reference reads PNGs of the train split at the
    source's native size (``max_pixels``, or 64 px) from a temporary folder.
    """
    config = config or ProxyConfig()
    check_int("rounds", rounds, 1)
    if images is not None:
        check_int("images", images, 1)
    if workers is not None:
        check_int("workers", workers, 0)
    device = select_device(config.device)
    n_train = len(source.load("train", spec.pixels))
    batch_size = min(config.batch_size, n_train)
    steps = max(1, (images if images is not None else 32 * batch_size) // batch_size)
    timed = steps * batch_size
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    threads_before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        ours, theirs = _rounds(spec, source, config, rounds, timed, batch_size, workers)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads_before)
    scaler_median = statistics.median(ours)
    reference_median = statistics.median(theirs)
    return BenchResult(
        scaler_images_per_s=scaler_median,
        reference_images_per_s=reference_median,
        scaler_rounds=tuple(ours),
        reference_rounds=tuple(theirs),
        ratio=scaler_median / reference_median,
        device=str(device),
        threads=threads,
        workers=workers,
        model=spec.describe(),
        pixels=spec.pixels,
        batch_size=batch_size,
        images=timed,
        cpu=cpu().describe(),
    )


def _rounds(
    spec: Spec,
    source: DataSource,
    config: ProxyConfig,
    rounds: int,
    timed: int,
    batch_size: int,
    workers: int,
) -> tuple[list[float], list[float]]:
    """Images/s of :func:`train` and of :func:`reference_loop` in each of ``rounds`` rounds."""
    native = source.max_pixels or max(64, spec.pixels)
    # One extra batch: train() leaves its first step out of images_per_s, as the reference does.
    scaler_config = dataclasses.replace(config, images=timed + batch_size, eval_every_epoch=False)
    with tempfile.TemporaryDirectory(prefix="scaler-bench-") as folder:
        files = _write_pngs(source, Path(folder), native)
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(rounds):
            ours.append(train(spec, source, scaler_config).images_per_s)
            theirs.append(
                reference_loop(
                    spec,
                    files,
                    source.num_classes,
                    images=timed,
                    batch_size=batch_size,
                    config=config,
                    workers=workers,
                )
            )
    return ours, theirs
