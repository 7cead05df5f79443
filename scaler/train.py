"""The proxy trainer: short training runs that rank candidate networks.

A search compares many scaled networks, so one proxy run must be cheap and its ranking
repeatable. :func:`train` gets there by keeping the whole input pipeline on the device:

- the train and val splits are loaded once as uint8 tensors already resized to ``spec.pixels``
  (the source caches them) and moved to the device once when they fit;
- each batch is gathered by index, converted and normalized on the device, and augmented there
  in one batched call (random-resized-crop and horizontal flip as one affine ``grid_sample``);
- the model runs channels_last, under bf16 autocast on CUDA, optionally ``torch.compile``-d.

Every random draw comes from the run's seed: the model is initialised under
``torch.manual_seed`` inside a forked RNG (the caller's global RNG state is left untouched) and
shuffling and augmentation use a private CPU ``torch.Generator``, so the same seed on the CPU gives
bit-identical results and the same augmentation stream on every device.

:func:`scaler.bench.bench` measures what this design buys against a loop written like the
PyTorch ImageNet example.

Failures are typed (:class:`TrainError` and its subclasses) with one-line messages; a run never
returns a silent 0 % result.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Final

import torch
import torch.nn.functional as F
from torch import nn

from scaler.data import DataSource, Split
from scaler.model import build, count_params
from scaler.spec import MAX_PIXELS, MIN_PIXELS, Spec

__all__ = [
    "OPTIMIZERS",
    "PROXY_PRESETS",
    "DivergedError",
    "Evaluation",
    "OutOfMemoryError",
    "ProxyConfig",
    "TrainError",
    "TrainResult",
    "evaluate",
    "proxy_config",
    "select_device",
    "train",
]

OPTIMIZERS: Final = ("sgd", "adamw", "rmsprop")
VALID_DEVICES: Final = "auto, cpu, cuda, cuda:N, mps"
_DEVICE_NAME: Final = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

# ImageNet channel statistics on the 0-255 scale. Fixed constants rather than per-source
# statistics: BatchNorm follows the stem anyway, and constants keep runs comparable across
# sources and free of a pass over the data.
_MEAN: Final = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_STD: Final = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# Aspect-ratio range of the random-resized-crop, as in the Inception/ImageNet recipe.
_LOG_RATIO: Final = math.log(4 / 3)
# Evaluation has no gradients to keep, so it can use larger batches than training.
_EVAL_BATCH: Final = 256


# --------------------------------------------------------------------------- errors


class TrainError(RuntimeError):
    """A proxy run failed; the message is one line for the user."""


class DivergedError(TrainError):
    """The training loss became NaN or infinite (usually: the learning rate is too high)."""


class OutOfMemoryError(TrainError):
    """The device (or host) ran out of memory; lower the batch size or the resolution."""


# --------------------------------------------------------------------------- config


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} {value!r} is invalid: it must be an integer {bound}")


def _check_float(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (
            value < high if open_high else value <= high
        )
    if not ok:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        upper = "inf" if math.isinf(high) else f"{high:g}"
        raise ValueError(
            f"{name} {value!r} is invalid: it must be a number in {left}{low:g}, {upper}{right}"
        )


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} {value!r} is invalid: it must be true or false")


@dataclass(frozen=True)
class ProxyConfig:
    """How one proxy run trains. Build one from a preset with :func:`proxy_config`.

    The defaults are the "standard" preset. Invalid values raise ``ValueError`` (one line).
    """

    # Passes over the train split; raise it when rankings look noisy (the confirmation stage
    # does, 2x), lower it for smoke tests. 2 keeps the default search within 20 min on 2 cores.
    epochs: int = 2
    # Total training images instead of epochs; set it to give sources of different sizes the
    # same budget (it overrides epochs; the last epoch may be partial).
    images: int | None = None
    # Images per step; lower it on out-of-memory errors (and scale lr with it, linearly).
    batch_size: int = 64
    # "sgd" (nesterov momentum), "adamw" or "rmsprop" (the paper's); lr must suit the choice.
    optimizer: str = "sgd"
    # Peak learning rate after warm-up, from a range test (README, "The proxy"); lower it on
    # DivergedError (adamw wants ~1e-3).
    lr: float = 0.005
    # Momentum of sgd and rmsprop (ignored by adamw, which keeps its default betas).
    momentum: float = 0.9
    # L2 / decoupled decay of conv and linear weights (never BN or biases); raise it for
    # long runs that overfit.
    weight_decay: float = 5e-5
    # Epochs of linear warm-up before the per-step cosine decay; raise it with the lr.
    warmup_epochs: float = 0.5
    # Cross-entropy label smoothing; 0 for a plain loss.
    label_smoothing: float = 0.1
    # Random-resized-crop + horizontal flip on the device; turn off to study raw capacity.
    augment: bool = True
    # Smallest crop area (fraction of the image) of the random-resized-crop; raise it for
    # short runs or tiny images, where strong crops slow learning; lower it for long runs.
    crop_scale: float = 0.5
    # Input size of the unscaled network in proxy runs (resolution multipliers apply to it);
    # train() itself trains at spec.pixels. 48, not 32: at 32 px the last stage sees a 1x1 map
    # and any larger input jumps it to 2x2, so equal-cost candidates could not train with equal
    # compute (README, "The proxy").
    base_pixels: int = 48
    # Evaluate on val after every epoch (val_top1_curve); off saves time when nothing prunes
    # (a pruner's callback gets every epoch's accuracy either way).
    eval_every_epoch: bool = False
    # Seed of model init, shuffling and augmentation; change it to measure seed variance.
    seed: int = 0
    # torch CPU threads during the run (None = torch's default); 1 when several workers share
    # the machine.
    threads: int | None = None
    # torch.compile the model; pays off on GPUs for runs longer than the compile (~1 min).
    compile: bool = False
    # "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps".
    device: str = "auto"
    # channels_last memory format (2-3x faster on CPU and tensor-core GPUs); off only to compare.
    channels_last: bool = True
    # bf16 autocast; None = on for CUDA only (CPU bf16 is slower on most CPUs).
    amp: bool | None = None
    # Batch size on CUDA (None: batch_size, as on the CPU, so results compare across devices).
    # The peak lr scales with it linearly and the warm-up stays the same number of epochs
    # (Goyal et al. 2017): one rule for every network, never tuned per network.
    cuda_batch_size: int | None = None
    # Start each residual branch at zero (its last BN's scale): without it, deep members fail
    # to train at all in a short run (README, "The proxy"). Off only to measure that.
    zero_init: bool = True

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1)
        if self.images is not None:
            _check_int("images", self.images, 1)
        _check_int("batch_size", self.batch_size, 1)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer {self.optimizer!r} is unknown: valid optimizers are "
                f"{', '.join(OPTIMIZERS)}"
            )
        _check_float("lr", self.lr, 0.0, math.inf, open_low=True, open_high=True)
        _check_float("momentum", self.momentum, 0.0, 1.0, open_high=True)
        _check_float("weight_decay", self.weight_decay, 0.0, math.inf, open_high=True)
        _check_float("warmup_epochs", self.warmup_epochs, 0.0, math.inf, open_high=True)
        _check_float("label_smoothing", self.label_smoothing, 0.0, 1.0, open_high=True)
        _check_bool("augment", self.augment)
        _check_float("crop_scale", self.crop_scale, 0.0, 1.0, open_low=True)
        _check_int("base_pixels", self.base_pixels, MIN_PIXELS, MAX_PIXELS)
        _check_bool("eval_every_epoch", self.eval_every_epoch)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        _check_bool("compile", self.compile)
        if not isinstance(self.device, str) or not _DEVICE_NAME.match(self.device):
            raise ValueError(
                f"device {self.device!r} is unknown: valid devices are {VALID_DEVICES}"
            )
        _check_bool("channels_last", self.channels_last)
        if self.amp is not None:
            _check_bool("amp", self.amp)
        _check_bool("zero_init", self.zero_init)
        if self.cuda_batch_size is not None:
            _check_int("cuda_batch_size", self.cuda_batch_size, 1)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a flat JSON-ready dict (for study attributes and reports)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ProxyConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        _check_fields(values)
        return cls(**values)

    def describe(self) -> str:
        """One-line summary of what a run does."""
        length = f"{self.images} images" if self.images is not None else f"{self.epochs} epochs"
        augment = f"rrc>={self.crop_scale:g}+flip" if self.augment else "no augmentation"
        return (
            f"{length}, batch {self.batch_size}, {self.optimizer} lr {self.lr:g} "
            f"(warm-up {self.warmup_epochs:g} ep, cosine), wd {self.weight_decay:g}, "
            f"ls {self.label_smoothing:g}, {augment}, base {self.base_pixels} px, "
            f"seed {self.seed}"
        )


def _check_fields(values: dict[str, Any]) -> None:
    names = [f.name for f in dataclasses.fields(ProxyConfig)]
    for key in values:
        if key not in names:
            raise ValueError(
                f"proxy option {key!r} is unknown: valid options are {', '.join(names)}"
            )


# Times are for B0 on the embedded data on this project's 2-core CPU (README, "The proxy").
PROXY_PRESETS: Final[dict[str, ProxyConfig]] = {
    # ~7 s: smoke tests and wiring checks; its accuracies and rankings are no evidence. One
    # epoch wants a higher lr to get anywhere; 32 px keeps it quick (its candidates' proxy
    # costs differ).
    "quick": ProxyConfig(epochs=1, lr=0.02, base_pixels=32),
    # ~25 s at 48 px: the default for searches, sweeps and scaler calibrate.
    "standard": ProxyConfig(),
    # several minutes: longer runs; stronger regularisation for the longer schedule.
    "long": ProxyConfig(epochs=50, lr=0.005, warmup_epochs=2.0, crop_scale=0.25, weight_decay=1e-4),
}


def proxy_config(name: str = "standard", **overrides: Any) -> ProxyConfig:
    """The preset ``name`` with ``overrides`` applied (``ValueError`` on unknown names/values)."""
    if name not in PROXY_PRESETS:
        raise ValueError(
            f"proxy preset {name!r} is unknown: valid presets are {', '.join(PROXY_PRESETS)}"
        )
    _check_fields(overrides)
    return dataclasses.replace(PROXY_PRESETS[name], **overrides)


def select_device(name: str = "auto") -> torch.device:
    """The torch device for a name in ``auto, cpu, cuda, cuda:N, mps`` (``ValueError`` if not)."""
    if not isinstance(name, str) or not _DEVICE_NAME.match(name):
        raise ValueError(f"device {name!r} is unknown: valid devices are {VALID_DEVICES}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available on this machine: use auto or cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} is not available on this machine: use auto or cpu")
        device = torch.device(name)
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r} is not available: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return torch.device("cuda", index)
    return torch.device(name)


def check_device(name: str | None) -> None:
    """Refuse, before anything is created or trained, a device this machine does not have."""
    try:
        select_device(name or "auto")
    except ValueError as e:
        raise ValueError(f"--device {name}: {e}") from None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TrainResult:
    """Outcome of one proxy run; accuracies are percentages on the held-out val split."""

    top1: float
    top5: float  # top-min(5, classes)
    loss_curve: tuple[float, ...]  # mean train loss of each epoch
    val_top1_curve: tuple[float, ...]  # val top-1 of each evaluated epoch
    wall_time: float  # seconds of training and evaluation
    images_per_s: float  # training throughput, train steps only, first (warm-up) step excluded
    images_seen: int
    epochs: int
    pixels: int
    params: int
    device: str
    threads: int
    seed: int
    val_loss: float  # mean cross-entropy (no smoothing) on val after the last epoch
    # Which val images the final model got right (bool, in split order): paired comparisons.
    val_correct: torch.Tensor | None = field(default=None, compare=False, repr=False)
    # Scores on the test split after the last epoch, when train(test=True) asked for them.
    test: Evaluation | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (curves become lists; tensors are left out)."""
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("val_correct", "test")
        }
        values["loss_curve"] = list(self.loss_curve)
        values["val_top1_curve"] = list(self.val_top1_curve)
        if self.test is not None:
            values["test_top1"] = self.test.top1
        return values


@dataclass(frozen=True)
class Evaluation:
    """Scores of a model on one split."""

    top1: float  # percent
    top5: float  # percent; top-k with k = min(5, number of classes)
    loss: float  # mean cross-entropy, no label smoothing
    # Top-1 hit of every image (bool, on the CPU, in the split's order).
    correct: torch.Tensor | None = field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------------- helpers


def _sync(device: torch.device) -> None:
    # Timers must wait for queued kernels, or they measure launch speed only.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _fork_rng(device: torch.device) -> AbstractContextManager[Any]:
    if device.type == "cpu":
        return torch.random.fork_rng(devices=[])
    index = device.index if device.index is not None else 0
    return torch.random.fork_rng(devices=[index], device_type=device.type)


def _seed_global(seed: int, device: torch.device) -> None:
    # Seeds only the generators the run forked (not every CUDA device, as manual_seed would),
    # so the caller's RNG state elsewhere is left exactly as it was.
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)


def _autocast(device: torch.device, amp: bool) -> AbstractContextManager[Any]:
    if not amp:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _fits(device: torch.device, nbytes: int) -> bool:
    """Whether a dataset of ``nbytes`` may live on ``device`` for the whole run."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # A quarter of the free memory at most: activations and the optimizer need the rest.
        return nbytes <= free // 4
    if device.type == "mps":
        return nbytes <= 1 << 30  # no free-memory query on MPS; 1 GiB is safe on 8 GB Macs
    return True


def _place(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if tensor.device == device:
        return tensor
    if _fits(device, tensor.numel() * tensor.element_size()):
        return tensor.to(device)
    # Too big: stays on the host, pinned so that each batch's copy runs asynchronously.
    return tensor.pin_memory() if device.type == "cuda" else tensor


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, TrainError):
        return False
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    # MPS and the CPU allocator raise plain RuntimeErrors; their text is the only signal.
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("out of memory", "can't allocate memory", "failed to allocate")
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _normalizer(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1)
    inv_std = 1.0 / torch.tensor(_STD, device=device).view(1, 3, 1, 1)
    return mean, inv_std


def _random_resized_crop(
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
    ratio = torch.exp((2.0 * u[:, 1] - 1.0) * _LOG_RATIO)
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


def _input_batch(
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
        x = _random_resized_crop(x, generator, crop_scale)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    device: torch.device | None = None,
    batch_size: int = _EVAL_BATCH,
    channels_last: bool = True,
    amp: bool = False,
) -> Evaluation:
    """Top-1, top-5 (percent) and mean loss of ``model`` on uint8 ``images`` (N x 3 x P x P).

    The model is put in eval mode for the pass and its previous mode is restored.
    """
    if images.shape[0] == 0:
        raise TrainError("cannot evaluate on an empty split")
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    norm = _normalizer(device)
    labels = labels.to(device)
    correct1 = torch.zeros((), dtype=torch.int64, device=device)
    correct5 = torch.zeros((), dtype=torch.int64, device=device)
    loss = torch.zeros((), dtype=torch.float64, device=device)
    hits1: list[torch.Tensor] = []
    order = torch.arange(images.shape[0])
    try:
        for start in range(0, images.shape[0], batch_size):
            index = order[start : start + batch_size]
            x = _input_batch(images, index, device, norm, channels_last=channels_last)
            y = labels[index.to(device)]
            with _autocast(device, amp):
                logits = model(x)
            logits = logits.float()
            loss += F.cross_entropy(logits, y, reduction="sum").double()
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            hits = top == y[:, None]
            correct1 += hits[:, 0].sum()
            hits1.append(hits[:, 0])
            correct5 += hits.any(dim=1).sum()
    finally:
        model.train(was_training)
    n = images.shape[0]
    return Evaluation(
        top1=100.0 * int(correct1) / n,
        top5=100.0 * int(correct5) / n,
        loss=float(loss) / n,
        correct=torch.cat(hits1).cpu(),
    )


def _optimizer(model: nn.Module, config: ProxyConfig) -> torch.optim.Optimizer:
    # Decay only conv/linear weights: decaying BN scales and biases only hurts short runs.
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": other, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    # The paper's RMSProp: decay 0.9 and TF's epsilon 1e-3 (PyTorch's 1e-8 is unstable here).
    return torch.optim.RMSprop(groups, lr=config.lr, alpha=0.9, eps=1e-3, momentum=config.momentum)


def _lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up to ``peak``, then cosine to ~0."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------- train

Callback = Callable[[int, float], None]
Progress = Callable[[int, int, float, float], None]


def for_device(config: ProxyConfig, device: torch.device) -> ProxyConfig:
    """``config`` as it trains on ``device``: the CUDA batch and its linearly scaled lr."""
    if device.type != "cuda" or config.cuda_batch_size is None:
        return config
    ratio = config.cuda_batch_size / config.batch_size
    return dataclasses.replace(config, batch_size=config.cuda_batch_size, lr=config.lr * ratio)


def train(
    spec: Spec,
    source: DataSource,
    config: ProxyConfig | None = None,
    *,
    seed: int | None = None,
    callback: Callback | None = None,
    progress: Progress | None = None,
    test: bool = False,
) -> TrainResult:
    """Train the network ``spec`` describes on ``source``'s train split at ``spec.pixels``.

    ``seed`` overrides ``config.seed``. ``test`` scores the final model on the test split too
    (``result.test``; never used for anything during training). ``callback(epoch, val_top1)``
    runs after every epoch (1-based; val is then evaluated every epoch whatever
    ``eval_every_epoch`` says) and whatever it raises propagates unchanged, e.g. optuna's
    ``TrialPruned``. ``progress(epoch, epochs, mean_loss, images_per_s)`` runs after every
    epoch too. Raises :class:`DivergedError` on a NaN/inf loss, :class:`OutOfMemoryError` when
    memory runs out, :class:`TrainError` otherwise.
    """
    config = config or ProxyConfig()
    if seed is None:
        seed = config.seed
    else:
        _check_int("seed", seed, 0, 2**63 - 1)
    device = select_device(config.device)
    config = for_device(config, device)
    train_split = source.load("train", spec.pixels)
    val_split = source.load("val", spec.pixels)
    test_split = source.load("test", spec.pixels) if test else None
    if len(train_split) == 0 or len(val_split) == 0:
        raise TrainError(f"{source.name}: the train and val splits must not be empty")
    batch_size = min(config.batch_size, len(train_split))

    oom: str | None = None
    with _torch_settings(device, config.threads), _fork_rng(device):
        _seed_global(seed, device)
        try:
            return _run(
                spec,
                (train_split, val_split, test_split),
                source.num_classes,
                config,
                device,
                seed,
                batch_size,
                callback,
                progress,
            )
        except Exception as exc:
            if not _is_oom(exc):
                raise
            oom = _first_line(exc)
    # Only reached after running out of memory. The failed run's tensors became unreachable
    # when the except block ended, so the cache can be handed back before the next trial.
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    raise OutOfMemoryError(
        f"out of memory training {spec.describe()} with batch {batch_size} at {spec.pixels} px "
        f"on {device}: lower batch_size or the resolution ({oom})"
    )


@contextmanager
def _torch_settings(device: torch.device, threads: int | None) -> Iterator[None]:
    """Set torch's CPU threads and cuDNN autotuning for one run, and restore them after it."""
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    # Every train batch has the same shape, so cuDNN's autotuning pays for itself after a step;
    # restored afterwards since it is process-wide.
    cudnn_benchmark = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.backends.cudnn.benchmark = cudnn_benchmark


@dataclass(frozen=True)
class _Schedule:
    """Step counts of one run, in optimizer steps."""

    steps_per_epoch: int
    total_steps: int
    epochs: int  # the last one may be partial when config.images is set
    warmup: int


def _schedule(n: int, batch_size: int, config: ProxyConfig) -> _Schedule:
    """The run's length and warm-up for ``n`` train images in batches of ``batch_size``."""
    # Partial last batches are dropped: a batch of a few images gives BatchNorm noisy statistics,
    # and the images left out are seen in other epochs since every epoch reshuffles.
    steps_per_epoch = n // batch_size
    if config.images is not None:
        total_steps = max(1, math.ceil(config.images / batch_size))
    else:
        total_steps = config.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    # At most half the run: a run that is all warm-up never anneals.
    warmup = min(round(config.warmup_epochs * steps_per_epoch), total_steps // 2)
    return _Schedule(steps_per_epoch, total_steps, epochs, warmup)


@dataclass
class _Run:
    """One run in progress: model, optimizer, data on the device, schedule and step counters."""

    config: ProxyConfig
    device: torch.device
    amp: bool
    batch_size: int
    params: int
    net: nn.Module
    optimizer: torch.optim.Optimizer
    images: torch.Tensor
    labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    norm: tuple[torch.Tensor, torch.Tensor]
    generator: torch.Generator
    n: int  # train images
    schedule: _Schedule
    step: int = 0  # optimizer steps taken so far, over all epochs
    train_time: float = 0.0  # seconds spent in train steps
    first_step_time: float = 0.0  # seconds of the very first step, left out of images_per_s

    @property
    def images_per_s(self) -> float:
        """Training throughput so far, first step excluded."""
        return _throughput(self.step, self.batch_size, self.train_time, self.first_step_time)


# Compiled networks of this process, keyed by what their compiled graphs depend on. A worker
# trains many runs of few networks (seeds, the base, confirmation runs): the second run of a
# network copies its fresh weights into the compiled copy instead of compiling again, since a
# compile (~1 min) costs more than a proxy run on a GPU. Inductor's on-disk cache
# (TORCHINDUCTOR_CACHE_DIR) shares kernels between processes on top of this.
_COMPILED: dict[tuple, tuple[nn.Module, nn.Module]] = {}
COMPILE_CACHE_SIZE: Final = 8  # networks kept; a study rarely trains more at one worker


def compile_key(spec: Spec, num_classes: int, config: ProxyConfig, device, amp: bool) -> tuple:
    """What a compiled network's graphs depend on: the realized network, pixels and numerics."""
    return (
        spec.key_str,
        spec.pixels,
        num_classes,
        str(device),
        config.channels_last,
        amp,
        config.zero_init,
    )


def _compiled(model: nn.Module, spec: Spec, num_classes: int, config, device, amp: bool):
    """(module, compiled module) for ``model``: a cached compiled copy holding its weights."""
    key = compile_key(spec, num_classes, config, device, amp)
    hit = _COMPILED.get(key)
    if hit is None:
        if len(_COMPILED) >= COMPILE_CACHE_SIZE:
            _COMPILED.pop(next(iter(_COMPILED)))  # the oldest network goes first
        hit = _COMPILED[key] = (model, torch.compile(model))
        return hit
    cached, net = hit
    # In place, so the compiled graphs keep their tensors: no guard fails, nothing recompiles.
    with torch.no_grad():
        cached.load_state_dict(model.state_dict())
    cached.zero_grad(set_to_none=True)
    return cached, net


def _setup(
    spec: Spec,
    splits: tuple[Split, ...],
    num_classes: int,
    config: ProxyConfig,
    device: torch.device,
    seed: int,
    batch_size: int,
) -> _Run:
    """Build the model and optimizer, put the data on the device and plan the schedule."""
    train_split, val_split = splits[:2]
    amp = config.amp if config.amp is not None else device.type == "cuda"

    # Built on the CPU under the run's seed, so the initial weights do not depend on the device.
    model = build(spec, num_classes, zero_init_residual=config.zero_init)
    params = count_params(model)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        model, net = _compiled(model, spec, num_classes, config, device, amp)
    else:
        net = model
    optimizer = _optimizer(model, config)

    return _Run(
        config=config,
        device=device,
        amp=amp,
        batch_size=batch_size,
        params=params,
        net=net,
        optimizer=optimizer,
        images=_place(train_split.images, device),
        labels=_place(train_split.labels, device),
        val_images=_place(val_split.images, device),
        val_labels=_place(val_split.labels, device),
        norm=_normalizer(device),
        generator=torch.Generator().manual_seed(seed),
        n=len(train_split),
        schedule=_schedule(len(train_split), batch_size, config),
    )


def _run(
    spec: Spec,
    splits: tuple[Split, Split, Split | None],
    num_classes: int,
    config: ProxyConfig,
    device: torch.device,
    seed: int,
    batch_size: int,
    callback: Callback | None,
    progress: Progress | None,
) -> TrainResult:
    """Set up and train one run inside :func:`train`'s forked RNG, evaluating as it goes.

    ``splits`` are (train, val, test); a test split is scored once, after the last epoch.
    """
    run = _setup(spec, splits, num_classes, config, device, seed, batch_size)
    epochs = run.schedule.epochs
    evaluate_each = config.eval_every_epoch or callback is not None

    loss_curve: list[float] = []
    val_curve: list[float] = []
    scores: Evaluation | None = None
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        loss_curve.append(_train_epoch(run, epoch))
        if evaluate_each or epoch == epochs:
            scores = _evaluate_epoch(run, epoch)
            val_curve.append(scores.top1)
        images_per_s = run.images_per_s
        if progress is not None:
            progress(epoch, epochs, loss_curve[-1], images_per_s)
        if callback is not None:
            callback(epoch, val_curve[-1])
    test = _evaluate_split(run, splits[2]) if splits[2] is not None else None
    wall_time = time.perf_counter() - start
    assert scores is not None  # the last epoch always evaluates
    return TrainResult(
        top1=scores.top1,
        top5=scores.top5,
        loss_curve=tuple(loss_curve),
        val_top1_curve=tuple(val_curve),
        wall_time=wall_time,
        images_per_s=run.images_per_s,
        images_seen=run.step * batch_size,
        epochs=epochs,
        pixels=spec.pixels,
        params=run.params,
        device=str(device),
        threads=torch.get_num_threads(),
        seed=seed,
        val_loss=scores.loss,
        val_correct=scores.correct,
        test=test,
    )


def _train_epoch(run: _Run, epoch: int) -> float:
    """Train one epoch (1-based) of ``run``; return its mean train loss."""
    config, device, batch_size = run.config, run.device, run.batch_size
    # On an accelerator the loss is read once per epoch: every read is a host round-trip that
    # stalls the queue of kernels.
    check_every = 1 if device.type == "cpu" else run.schedule.steps_per_epoch
    run.net.train()
    order = torch.randperm(run.n, generator=run.generator)
    steps = min(run.schedule.steps_per_epoch, run.schedule.total_steps - run.step)
    running = torch.zeros((), dtype=torch.float64, device=device)
    _sync(device)
    epoch_start = time.perf_counter()
    for i in range(steps):
        index = order[i * batch_size : (i + 1) * batch_size]
        x = _input_batch(
            run.images,
            index,
            device,
            run.norm,
            channels_last=config.channels_last,
            generator=run.generator if config.augment else None,
            crop_scale=config.crop_scale,
        )
        y = run.labels[index.to(run.labels.device)].to(device, non_blocking=True)
        lr = _lr_at(run.step, run.schedule.total_steps, run.schedule.warmup, config.lr)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        with _autocast(device, run.amp):
            logits = run.net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        running += loss.detach()
        run.step += 1
        if (i + 1) % check_every == 0 or i == steps - 1:
            _check_loss(float(running), epoch, i + 1, steps, lr, config.lr)
        if run.step == 1:
            _sync(device)
            run.first_step_time = time.perf_counter() - epoch_start
    _sync(device)
    run.train_time += time.perf_counter() - epoch_start
    return float(running) / steps


def _check_loss(value: float, epoch: int, step: int, steps: int, lr: float, peak: float) -> None:
    """Raise :class:`DivergedError` when the running loss ``value`` is NaN or infinite."""
    if not math.isfinite(value):
        raise DivergedError(
            f"training diverged (loss {value}) at epoch {epoch}, step {step} of "
            f"{steps} (lr {lr:.3g}): lower the learning rate (e.g. lr={peak / 4:g})"
        )


def _evaluate_epoch(run: _Run, epoch: int) -> Evaluation:
    """Scores of ``run``'s model on val after ``epoch``; non-finite outputs raise DivergedError."""
    scores = evaluate(
        run.net,
        run.val_images,
        run.val_labels,
        device=run.device,
        channels_last=run.config.channels_last,
        amp=run.amp,
    )
    if not math.isfinite(scores.loss):
        raise DivergedError(
            f"evaluation after epoch {epoch} gave non-finite outputs: lower the learning "
            f"rate (e.g. lr={run.config.lr / 4:g})"
        )
    return scores


def _evaluate_split(run: _Run, split: Split) -> Evaluation:
    """Scores of ``run``'s final model on another split (the test split)."""
    return evaluate(
        run.net,
        _place(split.images, run.device),
        _place(split.labels, run.device),
        device=run.device,
        channels_last=run.config.channels_last,
        amp=run.amp,
    )


def _throughput(steps: int, batch_size: int, seconds: float, first_step: float) -> float:
    # The first step pays one-off costs (kernel selection, allocator growth, compile).
    if steps > 1 and seconds > first_step:
        return (steps - 1) * batch_size / (seconds - first_step)
    return steps * batch_size / max(seconds, 1e-9)


def run_metrics(result: TrainResult, spec, cost, data: str, config: ProxyConfig) -> dict:
    """One run's metrics as ``scaler train --json`` prints them (and ``--out`` writes them)."""
    return {
        "top1": result.top1,
        "top5": result.top5,
        "wall_time": result.wall_time,
        "images_per_s": result.images_per_s,
        "params": cost.params,
        "flops": cost.flops,
        "activations": cost.activations,
        "pixels": spec.pixels,
        "depth": spec.depth,
        "width": spec.width,
        "data": data,
        "device": result.device,
        "threads": result.threads,
        "seed": result.seed,
        "loss_curve": list(result.loss_curve),
        "proxy": dataclasses.asdict(config),
    }
