"""Scoring a trained network on a held-out split, optionally with flip test-time augmentation.

:func:`evaluate` is the one scoring pass of the project: the trainer's per-epoch and final
scores, the confirmation's and the noise study's all come from it, so a change in how images
are scored (``tta``) changes every number the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import torch
import torch.nn.functional as F
from torch import nn

from scaler.augment import input_batch, normalizer
from scaler.device import autocast

# Evaluation has no gradients to keep, so it can use larger batches than training.
EVAL_BATCH: Final = 256
# "flip": the mean of the softmax of each image and of its mirror image, the mirror being the
# only augmentation the proxy trains with that keeps the whole image.
TTA_MODES: Final = ("none", "flip")


class EvaluationError(RuntimeError):
    """A split that cannot be scored (empty)."""


@dataclass(frozen=True)
class Evaluation:
    """Scores of a model on one split."""

    top1: float  # percent
    top5: float  # percent; top-k with k = min(5, number of classes)
    loss: float  # mean cross-entropy, no label smoothing
    # Top-1 hit of every image (bool, on the CPU, in the split's order).
    correct: torch.Tensor | None = field(default=None, compare=False, repr=False)


def _log_probs(model: nn.Module, x: torch.Tensor, device, amp: bool, tta: str) -> torch.Tensor:
    """Log-probabilities of a batch, averaged over the image and its mirror under ``flip``."""
    with autocast(device, amp):
        logits = model(x)
    logp = F.log_softmax(logits.float(), dim=1)
    if tta == "flip":
        with autocast(device, amp):
            mirrored = model(x.flip(3))
        both = torch.stack([logp, F.log_softmax(mirrored.float(), dim=1)])
        # log of the mean probability, computed stably
        logp = torch.logsumexp(both, dim=0) - torch.log(torch.tensor(2.0, device=logp.device))
    return logp


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    device: torch.device | None = None,
    batch_size: int = EVAL_BATCH,
    channels_last: bool = True,
    amp: bool = False,
    tta: str = "none",
) -> Evaluation:
    """Top-1, top-5 (percent) and mean loss of ``model`` on uint8 ``images`` (N x 3 x P x P).

    ``tta="flip"`` scores each image by the mean probability of it and its mirror. The model is
    put in eval mode for the pass and its previous mode is restored.
    """
    if images.shape[0] == 0:
        raise EvaluationError("cannot evaluate on an empty split")
    if tta not in TTA_MODES:
        raise ValueError(f"tta {tta!r} is unknown: valid modes are {', '.join(TTA_MODES)}")
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    norm = normalizer(device)
    labels = labels.to(device)
    correct5 = torch.zeros((), dtype=torch.int64, device=device)
    loss = torch.zeros((), dtype=torch.float64, device=device)
    hits1: list[torch.Tensor] = []
    order = torch.arange(images.shape[0])
    try:
        for start in range(0, images.shape[0], batch_size):
            index = order[start : start + batch_size]
            x = input_batch(images, index, device, norm, channels_last=channels_last)
            y = labels[index.to(device)]
            logp = _log_probs(model, x, device, amp, tta)
            loss += F.nll_loss(logp, y, reduction="sum").double()
            top = logp.topk(min(5, logp.shape[1]), dim=1).indices
            hits = top == y[:, None]
            hits1.append(hits[:, 0])
            correct5 += hits.any(dim=1).sum()
    finally:
        model.train(was_training)
    n = images.shape[0]
    correct = torch.cat(hits1).cpu()
    return Evaluation(
        top1=100.0 * int(correct.sum()) / n,
        top5=100.0 * int(correct5) / n,
        loss=float(loss) / n,
        correct=correct,
    )


def folded(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with each BatchNorm folded into the convolution before it
    (torch.fx's ``fuse``): the same function up to rounding, and a scoring pass about a fifth
    shorter on the CPU, since a BatchNorm is a pass over memory of its own. ``model`` itself
    when it cannot be traced symbolically."""
    from torch.fx.experimental.optimization import fuse

    was_training = model.training
    model.eval()  # traced in eval mode: drop-connect's branch is the inference one
    try:
        return fuse(model)
    except Exception:  # fx raises many kinds on control flow it cannot trace: score unfolded
        return model
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class Variant:
    """One way of scoring a run's final network, measured beside its plain score.

    ``name`` is the weights ("last", "swa", "ema") and, after "+", the test-time augmentation
    ("flip"); ``seconds`` is what scoring val this way cost (averaging, BatchNorm recompute and
    the val pass), against ``TrainResult.val_seconds`` for the plain scoring.
    """

    name: str
    val: Evaluation
    test: Evaluation | None
    seconds: float


def variant_name(average: str, tta: str) -> str:
    """``last``, ``swa``, ``ema``, with ``+flip`` under flip test-time augmentation."""
    weights = "last" if average == "none" else average
    return weights if tta == "none" else f"{weights}+{tta}"
