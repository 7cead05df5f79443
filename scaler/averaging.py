"""Averages of a run's weights over its last steps, with BatchNorm statistics recomputed.

A proxy run ends on whatever weights its last SGD steps left, and those differ from seed to
seed more than the network's quality does. An average of the weights over the end of the run
(SWA: equal weights from a step on; EMA: exponentially decaying ones) sits nearer the centre
of the region SGD explores. Averaged weights do not match the BatchNorm statistics any of the
averaged networks kept, so they are recomputed with a forward pass over training images
(Izmailov et al. 2018). Both use torch's own tools, :class:`torch.optim.swa_utils.AveragedModel`
and :func:`torch.optim.swa_utils.update_bn`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from scaler.augment import input_batch
from scaler.device import sync

AVERAGES: Final = ("none", "swa", "ema")
_BN_BATCH: Final = 256


def start_step(total_steps: int, average_from: float) -> int:
    """The first step (1-based count of steps taken) whose weights enter the average."""
    return min(total_steps, max(1, int(total_steps * average_from) + 1))


@dataclass
class Averager:
    """Running averages (``swa``, ``ema``) of one run's weights, and the time they cost."""

    averages: dict[str, AveragedModel]
    first_step: int
    seed: int  # draws the train images that recompute BatchNorm statistics
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls, model: nn.Module, methods, first_step: int, ema_decay: float, seed: int
    ) -> Averager:
        """Averagers of ``model`` for each method in ``methods`` ("swa", "ema")."""
        averages = {}
        for name in sorted(set(methods) - {"none"}):
            fn = get_ema_multi_avg_fn(ema_decay) if name == "ema" else None
            averages[name] = AveragedModel(model, multi_avg_fn=fn)
        return cls(averages, first_step, seed, {name: 0.0 for name in averages})

    def after_step(self, step: int, model: nn.Module) -> None:
        """Fold the weights after ``step`` (steps taken so far) into every average."""
        if step < self.first_step:
            return
        for name, average in self.averages.items():
            start = time.perf_counter()
            average.update_parameters(model)
            self.seconds[name] += time.perf_counter() - start

    def finish(
        self,
        name: str,
        images: torch.Tensor,
        norm,
        device,
        *,
        channels_last: bool,
        bn_images: int,
    ) -> nn.Module:
        """The averaged network ``name``, BatchNorm statistics recomputed on ``bn_images``
        unaugmented train images (the same seeded draw for every average)."""
        start = time.perf_counter()
        average = self.averages[name]
        n = min(bn_images, images.shape[0])
        generator = torch.Generator().manual_seed(self.seed)
        index = torch.randperm(images.shape[0], generator=generator)[:n]
        batches = [
            input_batch(images, index[i : i + _BN_BATCH], device, norm, channels_last=channels_last)
            for i in range(0, n, _BN_BATCH)
        ]
        with torch.no_grad():
            update_bn(batches, average, device=device)
        sync(device)
        self.seconds[name] += time.perf_counter() - start
        return average
