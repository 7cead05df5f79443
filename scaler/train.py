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

A run's settings are a :class:`scaler.proxy.ProxyConfig`; the device, its per-run settings and
the compiled-network cache live in :mod:`scaler.device`, the batch pipeline in
:mod:`scaler.augment`.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scaler.augment import input_batch, normalizer
from scaler.averaging import AVERAGES, Averager, start_step
from scaler.data import DataSource, Split
from scaler.device import (
    autocast,
    compiled,
    for_device,
    fork_rng,
    place,
    seed_global,
    select_device,
    sync,
    torch_settings,
)
from scaler.evaluation import Evaluation, Variant, evaluate
from scaler.model import build, count_params
from scaler.proxy import ProxyConfig, check_int, resolve_proxy
from scaler.scoring import Final as _Final
from scaler.spec import Spec

__all__ = [
    "DivergedError",
    "Evaluation",
    "OutOfMemoryError",
    "TrainError",
    "TrainResult",
    "Variant",
    "evaluate",
    "run_metrics",
    "train",
]

# --------------------------------------------------------------------------- errors


class TrainError(RuntimeError):
    """A proxy run failed; the message is one line for the user."""


class DivergedError(TrainError):
    """The training loss became NaN or infinite (usually: the learning rate is too high)."""


class OutOfMemoryError(TrainError):
    """The device (or host) ran out of memory; lower the batch size or the resolution."""


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
    # Seconds the final val scoring took (averaging and BatchNorm recompute included).
    val_seconds: float = 0.0
    # Other ways of scoring the same run, when train(variants=True) asked for them.
    variants: tuple[Variant, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (curves become lists; tensors are left out)."""
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("val_correct", "test", "variants")
        }
        values["loss_curve"] = list(self.loss_curve)
        values["val_top1_curve"] = list(self.val_top1_curve)
        if self.test is not None:
            values["test_top1"] = self.test.top1
        return values


# --------------------------------------------------------------------------- helpers


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


def train(
    spec: Spec,
    source: DataSource,
    config: ProxyConfig | None = None,
    *,
    seed: int | None = None,
    callback: Callback | None = None,
    progress: Progress | None = None,
    test: bool = False,
    variants: bool = False,
) -> TrainResult:
    """Train the network ``spec`` describes on ``source``'s train split at ``spec.pixels``.

    ``seed`` overrides ``config.seed``. ``test`` scores the final model on the test split too
    (``result.test``; never used for anything during training). ``callback(epoch, val_top1)``
    runs after every epoch (1-based; val is then evaluated every epoch whatever
    ``eval_every_epoch`` says) and whatever it raises propagates unchanged, e.g. optuna's
    ``TrialPruned``. ``progress(epoch, epochs, mean_loss, images_per_s)`` runs after every
    epoch too. The final scores are those ``config.average`` and ``config.tta`` name;
    ``variants`` adds every other way (:data:`scaler.scoring.VARIANTS`), each with its cost.
    Raises :class:`DivergedError` on a NaN/inf loss, :class:`OutOfMemoryError` when memory
    runs out, :class:`TrainError` otherwise.
    """
    config = config or resolve_proxy()
    seed = config.seed if seed is None else check_int("seed", seed, 0, 2**63 - 1)
    device = select_device(config.device)
    config = for_device(config, device)
    splits = _splits(source, spec.pixels, test)
    batch_size = min(config.batch_size, len(splits[0]))

    oom: str | None = None
    with torch_settings(device, config.threads), fork_rng(device):
        seed_global(seed, device)
        try:
            return _run(
                spec,
                splits,
                source.num_classes,
                config,
                device,
                seed,
                batch_size,
                callback,
                progress,
                variants,
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


def _splits(source: DataSource, pixels: int, test: bool) -> tuple[Split, Split, Split | None]:
    """The (train, val, test) splits at ``pixels``, test only when asked; empty ones raise."""
    train_split = source.load("train", pixels)
    val_split = source.load("val", pixels)
    test_split = source.load("test", pixels) if test else None
    if len(train_split) == 0 or len(val_split) == 0 or (test_split is not None and not test_split):
        raise TrainError(f"{source.name}: the train, val and test splits must not be empty")
    return train_split, val_split, test_split


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
    model: nn.Module  # the network's weights (net may be its compiled wrapper)
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
    averager: Averager | None  # the running weight averages, when anything scores one
    step: int = 0  # optimizer steps taken so far, over all epochs
    train_time: float = 0.0  # seconds spent in train steps
    first_step_time: float = 0.0  # seconds of the very first step, left out of images_per_s

    @property
    def images_per_s(self) -> float:
        """Training throughput so far, first step excluded."""
        return _throughput(self.step, self.batch_size, self.train_time, self.first_step_time)


def _setup(
    spec: Spec,
    splits: tuple[Split, ...],
    num_classes: int,
    config: ProxyConfig,
    device: torch.device,
    seed: int,
    batch_size: int,
    variants: bool = False,
) -> _Run:
    """Build the model and optimizer, put the data on the device and set up the schedule."""
    train_split, val_split = splits[:2]
    amp = config.amp if config.amp is not None else device.type == "cuda"

    # Built on the CPU under the run's seed, so the initial weights do not depend on the device.
    model = build(spec, num_classes, zero_init_residual=config.zero_init)
    params = count_params(model)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        model, net = compiled(model, spec, num_classes, config, device, amp)
    else:
        net = model
    optimizer = _optimizer(model, config)
    schedule = _schedule(len(train_split), batch_size, config)
    averages = {config.average} - {"none"} | (set(AVERAGES) - {"none"} if variants else set())

    return _Run(
        config=config,
        device=device,
        amp=amp,
        batch_size=batch_size,
        params=params,
        model=model,
        net=net,
        optimizer=optimizer,
        images=place(train_split.images, device),
        labels=place(train_split.labels, device),
        val_images=place(val_split.images, device),
        val_labels=place(val_split.labels, device),
        norm=normalizer(device),
        generator=torch.Generator().manual_seed(seed),
        n=len(train_split),
        schedule=schedule,
        averager=Averager.of(
            model,
            averages,
            start_step(schedule.total_steps, config.average_from),
            config.ema_decay,
            seed,
        )
        if averages
        else None,
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
    variants: bool = False,
) -> TrainResult:
    """Set up and train one run inside :func:`train`'s forked RNG, evaluating as it goes;
    ``splits`` are (train, val, test), a test split scored once, after the last epoch."""
    run = _setup(spec, splits, num_classes, config, device, seed, batch_size, variants)
    epochs = run.schedule.epochs
    start = time.perf_counter()
    loss_curve, val_curve, known = _epochs(run, variants, callback, progress)
    final = _Final(run, splits, known)
    scores, val_seconds = final.val(config.average, config.tta)
    if not known:  # the final scoring is the only val pass: it checks for divergence
        _check_finite(scores, epochs, config)
        val_curve.append(scores.top1)
    test = final.test(config.average, config.tta) if splits[2] is not None else None
    wall_time = time.perf_counter() - start
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
        val_seconds=val_seconds,
        variants=final.variants() if variants else (),
    )


def _epochs(run: _Run, variants: bool, callback, progress):
    """Train every epoch of ``run``: (loss curve, val curve, {"last": (val scores, seconds)}
    when the last weights were scored, else {})."""
    config, epochs = run.config, run.schedule.epochs
    evaluate_each = config.eval_every_epoch or callback is not None
    # The last weights are scored after the last epoch only when something reads them: a
    # run scored on an average or with TTA would otherwise pay a val pass it throws away.
    last_read = variants or (config.average, config.tta) == ("none", "none")
    loss_curve: list[float] = []
    val_curve: list[float] = []
    known: dict[str, tuple[Evaluation, float]] = {}
    for epoch in range(1, epochs + 1):
        loss_curve.append(_train_epoch(run, epoch))
        if evaluate_each or (epoch == epochs and last_read):
            eval_start = time.perf_counter()
            scores = _evaluate_epoch(run, epoch)
            known = {"last": (scores, time.perf_counter() - eval_start)}
            val_curve.append(scores.top1)
        if progress is not None:
            progress(epoch, epochs, loss_curve[-1], run.images_per_s)
        if callback is not None:
            callback(epoch, val_curve[-1])
    return loss_curve, val_curve, known


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
    sync(device)
    epoch_start = time.perf_counter()
    for i in range(steps):
        index = order[i * batch_size : (i + 1) * batch_size]
        x = input_batch(
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
        with autocast(device, run.amp):
            logits = run.net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        running += loss.detach()
        run.step += 1
        if run.averager is not None:
            run.averager.after_step(run.step, run.model)
        if (i + 1) % check_every == 0 or i == steps - 1:
            _check_loss(float(running), epoch, i + 1, steps, lr, config.lr)
        if run.step == 1:
            sync(device)
            run.first_step_time = time.perf_counter() - epoch_start
    sync(device)
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
    return _check_finite(scores, epoch, run.config)


def _check_finite(scores: Evaluation, epoch: int, config: ProxyConfig) -> Evaluation:
    if not math.isfinite(scores.loss):
        raise DivergedError(
            f"evaluation after epoch {epoch} gave non-finite outputs: lower the learning "
            f"rate (e.g. lr={config.lr / 4:g})"
        )
    return scores


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
