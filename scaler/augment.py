"""The proxy trainer's input pipeline: uint8 batches to normalized, augmented floats on the device.

Batches are gathered by index from uint8 tensors, converted and normalized on the device, and
augmented there in one batched call: random-resized-crop and horizontal flip as one affine
``grid_sample``, drawn from the run's CPU ``torch.Generator`` so every device sees the same stream.
"""

from __future__ import annotations

import math
from typing import Final

import torch
import torch.nn.functional as F

__all__ = ["LOG_RATIO", "MEAN", "STD", "input_batch", "normalizer", "random_resized_crop"]

# ImageNet channel statistics on the 0-255 scale. Fixed constants rather than per-source
# statistics: BatchNorm follows the stem anyway, and constants keep runs comparable across
# sources and free of a pass over the data.
MEAN: Final = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD: Final = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# Aspect-ratio range of the random-resized-crop, as in the Inception/ImageNet recipe.
LOG_RATIO: Final = math.log(4 / 3)


def normalizer(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, 1 / std) of the channels on the 0-255 scale, on ``device``, shaped to broadcast."""
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    inv_std = 1.0 / torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return mean, inv_std


def random_resized_crop(
    x: torch.Tensor, generator: torch.Generator, crop_scale: float
) -> torch.Tensor:
    """Random-resized-crop and horizontal flip of a float N x C x P x P batch, in one resample.

    Each sample gets an affine map from its output grid to a random box of the input: area
    fraction uniform in [crop_scale, 1], aspect ratio log-uniform in [3/4, 4/3], position uniform,
    mirrored with probability 1/2. Boxes that would leave the image are clamped to it (in
    place of torchvision's ten redraws), so no sample ever sees padding.
    """
    n = x.shape[0]
    # Drawn on the CPU generator: the same stream on every device, and a tiny n x 5 tensor.
    u = torch.rand((n, 5), generator=generator, dtype=torch.float64)
    area = crop_scale + (1.0 - crop_scale) * u[:, 0]
    ratio = torch.exp((2.0 * u[:, 1] - 1.0) * LOG_RATIO)
    # Half-widths in affine_grid's normalized coordinates, where the image spans [-1, 1].
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (2.0 * u[:, 2] - 1.0) * (1.0 - w)
    cy = (2.0 * u[:, 3] - 1.0) * (1.0 - h)
    sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0)
    theta = torch.zeros((n, 2, 3), dtype=torch.float64)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Reflection is only a guard: every box lies inside the image by construction.
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def input_batch(
    images: torch.Tensor,
    index: torch.Tensor,
    device: torch.device,
    norm: tuple[torch.Tensor, torch.Tensor],
    *,
    channels_last: bool,
    generator: torch.Generator | None = None,
    crop_scale: float = 1.0,
) -> torch.Tensor:
    """Gather uint8 ``images[index]`` onto ``device`` as a normalized (augmented) float batch."""
    batch = images[index.to(images.device)].to(device, non_blocking=True)
    mean, inv_std = norm
    x = (batch.float() - mean) * inv_std
    if generator is not None:
        x = random_resized_crop(x, generator, crop_scale)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
