"""The proxy's settings: what one proxy run trains with, resolved in one place.

A proxy run is configured by a :class:`ProxyConfig`: a preset (:data:`PROXY_PRESETS`: quick,
standard, long) with overrides from the command line or the Python API, or the settings a study
stored (:meth:`ProxyConfig.to_dict`). Every command and study gets its settings through
:func:`resolve_proxy`, which validates them (one-line ``ValueError``) before anything trains.

This module imports no torch: a command checks its options, and a study reads its stored
settings, without loading it. Devices themselves (is ``cuda:1`` there?) are
:mod:`scaler.device`'s concern; only the spelling of a device name is checked here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from scaler.spec import MAX_PIXELS, MIN_PIXELS

__all__ = [
    "OPTIMIZERS",
    "PROXY_PRESETS",
    "VALID_DEVICES",
    "ProxyConfig",
    "ProxyLength",
    "check_device_name",
    "check_int",
    "lengthen",
    "resolve_proxy",
    "run_steps",
]

OPTIMIZERS: Final = ("sgd", "adamw", "rmsprop")
VALID_DEVICES: Final = "auto, cpu, cuda, cuda:N, mps"
_DEVICE_NAME: Final = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(name: Any) -> None:
    """Refuse a device name not in ``auto, cpu, cuda, cuda:N, mps`` (whether present or not)."""
    if not isinstance(name, str) or not _DEVICE_NAME.match(name):
        raise ValueError(f"device {name!r} is unknown: valid devices are {VALID_DEVICES}")


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value``, refused unless it is an integer >= ``low`` (and <= ``high``), naming ``name``."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} {value!r} is invalid: it must be an integer {bound}")
    return value


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
    """How one proxy run trains. Build one with :func:`resolve_proxy`.

    The defaults are 0.6's "standard" preset, which a study stored before a field existed ran
    with (since 0.7 the preset also scores an EMA with flip TTA). Invalid values raise
    ``ValueError`` (one line).
    """

    # Passes over the train split; raise it when rankings look noisy (the confirmation stage
    # does, 2x), lower it for smoke tests. 2 keeps the default search within 20 min on 2 cores.
    epochs: int = 2
    # Total training images instead of epochs; set it to give sources of different sizes the
    # same budget (it overrides epochs; the last epoch may be partial).
    images: int | None = None
    # Images per step; lower it on out-of-memory errors (and scale lr with it, linearly).
    batch_size: int = 64
    # The fewest SGD steps a search's proxy run takes on the user's data: a search whose
    # epochs give fewer on a small train split is lengthened to it (:func:`lengthen`). 80 is
    # what the default (2 epochs, batch 64) takes on the embedded 2,600 train images, so that
    # search is unchanged; 0 for none. Raise it when the base check says the base did not learn.
    min_steps: int = 80
    # "sgd" (nesterov momentum), "adamw" or "rmsprop" (the paper's); lr must suit the choice.
    optimizer: str = "sgd"
    # Peak learning rate after warm-up, from a range test (reports/history.md, "The learning
    # rate"); lower it on DivergedError (adamw wants ~1e-3).
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
    # compute (reports/history.md, "A 48 px base").
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
    # to train at all in a short run (reports/history.md, "Residual branches start at zero").
    # Off only to measure that.
    zero_init: bool = True
    # Score an average of the weights over the run's end instead of its last weights: "none",
    # "swa" (equal weights from average_from on) or "ema" (decay ema_decay from average_from
    # on), BatchNorm statistics recomputed on bn_images train images (docs/proxy.md).
    average: str = "none"
    # Fraction of the run's steps after which weights enter the average.
    average_from: float = 0.5
    # EMA's decay per step: 0.95 weighs about the last 20 steps.
    ema_decay: float = 0.95
    # Unaugmented train images whose forward pass recomputes an average's BatchNorm statistics.
    bn_images: int = 1024
    # Test-time augmentation when scoring: "none" or "flip" (mean softmax of image and mirror).
    tta: str = "none"

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1)
        if self.images is not None:
            check_int("images", self.images, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("min_steps", self.min_steps, 0)
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
        check_int("base_pixels", self.base_pixels, MIN_PIXELS, MAX_PIXELS)
        _check_bool("eval_every_epoch", self.eval_every_epoch)
        check_int("seed", self.seed, 0, 2**63 - 1)
        if self.threads is not None:
            check_int("threads", self.threads, 1)
        _check_bool("compile", self.compile)
        check_device_name(self.device)
        _check_bool("channels_last", self.channels_last)
        if self.amp is not None:
            _check_bool("amp", self.amp)
        _check_bool("zero_init", self.zero_init)
        if self.cuda_batch_size is not None:
            check_int("cuda_batch_size", self.cuda_batch_size, 1)
        _check_choice("average", self.average, ("none", "swa", "ema"))
        _check_float("average_from", self.average_from, 0.0, 1.0, open_high=True)
        _check_float("ema_decay", self.ema_decay, 0.0, 1.0, open_low=True, open_high=True)
        check_int("bn_images", self.bn_images, 1)
        _check_choice("tta", self.tta, ("none", "flip"))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a flat JSON-ready dict (for study attributes and reports)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ProxyConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        _check_fields(values)
        return cls(**dict(values))

    def describe(self) -> str:
        """One-line summary of what a run does."""
        length = f"{self.images} images" if self.images is not None else f"{self.epochs} epochs"
        augment = f"rrc>={self.crop_scale:g}+flip" if self.augment else "no augmentation"
        return (
            f"{length}, batch {self.batch_size}, {self.optimizer} lr {self.lr:g} "
            f"(warm-up {self.warmup_epochs:g} ep, cosine), wd {self.weight_decay:g}, "
            f"ls {self.label_smoothing:g}, {augment}, base {self.base_pixels} px, "
            f"seed {self.seed}{self._scoring()}"
        )

    def _scoring(self) -> str:
        """How the final network is scored, when not its last weights alone."""
        parts = []
        if self.average != "none":
            parts.append(f"{self.average} from {self.average_from:g} of the run")
        if self.tta != "none":
            parts.append(f"{self.tta} tta")
        return f", scored on {' + '.join(parts)}" if parts else ""


def _check_choice(name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name} {value!r} is unknown: valid values are {', '.join(valid)}")


def _check_fields(values: Mapping[str, Any]) -> None:
    names = [f.name for f in dataclasses.fields(ProxyConfig)]
    for key in values:
        if key not in names:
            raise ValueError(
                f"proxy option {key!r} is unknown: valid options are {', '.join(names)}"
            )


# Times are for B0 on the default data on this project's 2-core CPU (docs/proxy.md).
PROXY_PRESETS: Final[dict[str, ProxyConfig]] = {
    # ~7 s: smoke tests and wiring checks; its accuracies and rankings are no evidence. One
    # epoch wants a higher lr to get anywhere; 32 px keeps it quick (its candidates' proxy
    # costs differ).
    # It takes no minimum of SGD steps (min_steps 0): a smoke run stays as short as asked.
    "quick": ProxyConfig(epochs=1, lr=0.02, base_pixels=32, min_steps=0),
    # ~25 s at 48 px: the default for searches, sweeps and scaler calibrate. Since 0.7 it
    # scores an EMA of the weights over the run's second half with flip TTA: on the embedded
    # Fashion-MNIST that halved σ of a paired difference (reports/noise-fashion); 0.6's
    # standard is --average none --tta none.
    "standard": ProxyConfig(average="ema", tta="flip"),
    # several minutes: longer runs; stronger regularisation for the longer schedule.
    "long": ProxyConfig(epochs=50, lr=0.005, warmup_epochs=2.0, crop_scale=0.25, weight_decay=1e-4),
}


# Fields added (0.7) after studies first stored their settings, each with the default that
# reproduces the runs made before it: a study's name hashes such a field only when it differs
# from that default, so the same command still names (and resumes) the same study.
ADDED_LATER: Final[dict[str, Any]] = {
    "average": "none",
    "average_from": 0.5,
    "ema_decay": 0.95,
    "bn_images": 1024,
    "tta": "none",
}


def resolve_proxy(
    name: str | None = None,
    overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
    *,
    stored: Mapping[str, Any] | None = None,
) -> ProxyConfig:
    """The proxy settings of a command or a study, validated: the one way to build them.

    ``name`` is a preset of :data:`PROXY_PRESETS` (default "standard"); ``stored`` is instead
    the settings a study stored (:meth:`ProxyConfig.to_dict`'s form; fields it lacks take their
    defaults). ``overrides`` (a mapping or (field, value) pairs) are applied on top of either.
    Unknown presets, fields and invalid values raise ``ValueError`` (one line).
    """
    if stored is not None:
        if name is not None:
            raise ValueError(f"proxy preset {name!r} and stored settings: give one of them")
        start = ProxyConfig.from_dict(stored)
    else:
        name = "standard" if name is None else name
        if name not in PROXY_PRESETS:
            raise ValueError(
                f"proxy preset {name!r} is unknown: valid presets are {', '.join(PROXY_PRESETS)}"
            )
        start = PROXY_PRESETS[name]
    changes = dict(overrides)
    _check_fields(changes)
    return dataclasses.replace(start, **changes)


# ----------------------------------------------------------------------------------------------
# a run's length on a data set: epochs, SGD steps, images
# ----------------------------------------------------------------------------------------------


def run_steps(settings: ProxyConfig, n_train: int) -> int:
    """SGD steps of one run on a train split of ``n_train`` images: partial batches are dropped
    (as :func:`scaler.train.train` does), a batch is at most the split."""
    batch = min(settings.batch_size, n_train)
    if settings.images is not None:
        return max(1, math.ceil(settings.images / batch))
    return settings.epochs * (n_train // batch)


@dataclass(frozen=True)
class ProxyLength:
    """How long one proxy run is on one train split, in epochs, SGD steps and images.

    Stored with a search (``config["proxy_length"]``, :meth:`to_attrs`) and printed in its first
    lines and its report. ``configured_steps`` is what the settings gave before
    :func:`lengthen` raised them to ``min_steps`` (None: not lengthened).
    """

    epochs: float  # passes over the train split (fractional when images are set)
    steps: int  # SGD steps (batches) of one run
    images: int  # training images one run sees: steps × batch
    batch: int
    train_images: int  # the train split's size
    min_steps: int  # the minimum in force (0: none)
    configured_steps: int | None = None

    def describe(self) -> str:
        """``2 epochs = 80 SGD steps = 5,120 images`` with the batch, split and minimum."""
        minimum = f"minimum {self.min_steps} steps" if self.min_steps else "no minimum of steps"
        return (
            f"{_epochs_text(self.epochs)} = {self.steps:,} SGD steps = {self.images:,} images "
            f"(batch {self.batch} of {self.train_images:,} train images; {minimum})"
        )

    def announce(self) -> str:
        """The line a search prints first: the run's length, and whether the minimum raised it."""
        if self.configured_steps is None:
            return f"proxy run: {self.describe()}"
        return (
            f"proxy run lengthened to the minimum of {self.min_steps} SGD steps (its settings "
            f"give {self.configured_steps} on these {self.train_images:,} train images; "
            f"--min-steps 0 keeps them): {self.describe()}"
        )

    def to_attrs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_attrs(cls, values: Mapping[str, Any]) -> ProxyLength:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _epochs_text(epochs: float) -> str:
    value = f"{epochs:.3g}" if epochs != int(epochs) else f"{int(epochs)}"
    return f"{value} epoch{'' if epochs == 1 else 's'}"


def proxy_length(settings: ProxyConfig, n_train: int, configured: int | None = None) -> ProxyLength:
    """The :class:`ProxyLength` of ``settings`` on a train split of ``n_train`` images."""
    batch = min(settings.batch_size, n_train)
    steps = run_steps(settings, n_train)
    per_epoch = max(1, n_train // batch)
    return ProxyLength(
        epochs=settings.epochs if settings.images is None else round(steps / per_epoch, 3),
        steps=steps,
        images=steps * batch,
        batch=batch,
        train_images=n_train,
        min_steps=settings.min_steps,
        configured_steps=configured,
    )


def lengthen(settings: ProxyConfig, n_train: int) -> tuple[dict[str, int], ProxyLength]:
    """The overrides that bring a run on ``n_train`` train images to ``settings.min_steps`` SGD
    steps ({} when it takes as many already), and the run's :class:`ProxyLength`.

    Whole epochs are raised (every image seen as often), or, when the run is set in images, the
    images are: a small train split is never trained for a few dozen steps.
    """
    steps = run_steps(settings, n_train)
    if steps >= settings.min_steps:
        return {}, proxy_length(settings, n_train)
    batch = min(settings.batch_size, n_train)
    if settings.images is not None:
        changes = {"images": settings.min_steps * batch}
    else:
        per_epoch = max(1, n_train // batch)
        changes = {"epochs": math.ceil(settings.min_steps / per_epoch)}
    longer = dataclasses.replace(settings, **changes)
    return changes, proxy_length(longer, n_train, configured=steps)
