"""The final scores of a proxy run, every way it can be scored: its last weights or an average
of them (:mod:`scaler.averaging`), with or without flip test-time augmentation
(:mod:`scaler.evaluation`). The trainer asks for the one its proxy settings name; the noise
study asks for all of them (:data:`VARIANTS`) to measure which lowers the noise.
"""

from __future__ import annotations

import time
from typing import Final as Constant

from torch import nn
from torch.optim.swa_utils import AveragedModel

from scaler.averaging import AVERAGES
from scaler.device import place, sync
from scaler.evaluation import TTA_MODES, Evaluation, Variant, evaluate, folded, variant_name

# Every way of scoring a run's final network that train(variants=True) measures.
VARIANTS: Constant = tuple(variant_name(a, t) for a in AVERAGES for t in TTA_MODES)


class Final:
    """Scores of a run's final network, each scoring computed once: the weights (last or an
    average, BatchNorm recomputed once per average) and the test-time augmentation."""

    def __init__(self, run, splits, known: dict[str, tuple[Evaluation, float]]):
        self.run, self.splits = run, splits
        self.known = dict(known)  # variant name → (val scores, seconds)
        self.known_test: dict[str, Evaluation] = {}
        self.models: dict[str, nn.Module] = {"none": run.net}
        self.scored: dict[str, nn.Module] = {}  # the same networks, BatchNorm folded

    def _model(self, average: str) -> nn.Module:
        if average not in self.models:
            run = self.run
            assert run.averager is not None
            self.models[average] = run.averager.finish(
                average,
                run.images,
                run.norm,
                run.device,
                channels_last=run.config.channels_last,
                bn_images=run.config.bn_images,
            )
        return self.models[average]

    def _scored(self, average: str) -> nn.Module:
        if average not in self.scored:
            model = self._model(average)
            if isinstance(model, AveragedModel):  # its forward's *args defeat fx's tracer
                model = model.module
            # A compiled network is scored as it is: tracing its wrapper would undo the compile.
            self.scored[average] = model if self.run.config.compile else folded(model)
        return self.scored[average]

    def _score(self, average: str, tta: str, images, labels) -> Evaluation:
        run = self.run
        return evaluate(
            self._scored(average),
            images,
            labels,
            device=run.device,
            channels_last=run.config.channels_last,
            amp=run.amp,
            tta=tta,
        )

    def val(self, average: str, tta: str) -> tuple[Evaluation, float]:
        """Val scores and their cost in seconds (the average's updates and BN recompute too)."""
        name = variant_name(average, tta)
        if name not in self.known:
            self._model(average)  # its BatchNorm recompute is timed in the averager's seconds
            start = time.perf_counter()
            scores = self._score(average, tta, self.run.val_images, self.run.val_labels)
            sync(self.run.device)
            seconds = time.perf_counter() - start
            if average != "none":
                assert self.run.averager is not None
                seconds += self.run.averager.seconds[average]
            self.known[name] = (scores, seconds)
        return self.known[name]

    def test(self, average: str, tta: str) -> Evaluation:
        name = variant_name(average, tta)
        if name not in self.known_test:
            split = self.splits[2]
            images, labels = (
                place(split.images, self.run.device),
                place(split.labels, self.run.device),
            )
            self.known_test[name] = self._score(average, tta, images, labels)
        return self.known_test[name]

    def variants(self) -> tuple[Variant, ...]:
        out = []
        for average in AVERAGES:
            for tta in TTA_MODES:
                scores, seconds = self.val(average, tta)
                test = self.test(average, tta) if self.splits[2] is not None else None
                out.append(Variant(variant_name(average, tta), scores, test, seconds))
        return tuple(out)
