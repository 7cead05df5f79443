"""How long a run takes on this machine: a measured throughput, cached, scaled by FLOPs.

A run's time is ``overhead + s × (flops ÷ flops_B0) × (training images + evaluation images ÷
3)``:

- ``s`` is the seconds per training image of B0 at the standard proxy (48 px, batch 64) on the
  embedded data, measured here (:func:`measure`: three short B0 runs of 2, 4 and 16 batches
  through the real trainer; ``s`` is the slope of time over images, the first run a warm-up);
- a network costs its forward FLOPs at its proxy pixels over B0's (fvcore,
  :func:`scaler.complexity.count`), the FLOPs the candidates of a search have before training;
- an evaluation image is a forward pass, about a third of a training step (:data:`EVAL_SHARE`);
- ``overhead`` is the rest of a run (building the model, data onto the device): the short run's
  time less its images.

The measurement is cached per CPU (model and vector extensions, :mod:`scaler.machine`; the GPU
too on CUDA), device, thread count and torch version in a JSON file (:func:`cache_file`:
``$SCALER_TIMING_CACHE``, else ``throughput.json`` in scaler's cache folder,
``$SCALER_CACHE`` or ``~/.cache/scaler``) and measured again after :data:`MAX_AGE_DAYS` days
or with another torch. :mod:`scaler.plan` prints the estimate; ``--time``
(:mod:`scaler.budget`) asks :func:`job_seconds` whether a run fits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# A forward pass (evaluation) costs about a third of a training step (forward + backward).
EVAL_SHARE: Final = 1 / 3
MAX_AGE_DAYS: Final = 30  # a cached throughput older than this is measured again
CACHE_ENV: Final = "SCALER_TIMING_CACHE"  # the cache file (tests isolate it)
# The timing runs: B0 on the embedded data at the standard proxy, this many batches each.
WARM, SHORT, LONG = 2, 4, 16


@dataclass(frozen=True)
class Throughput:
    """How fast this machine trains: B0's seconds per training image and a run's overhead."""

    machine: str
    device: str
    threads: int
    torch: str
    seconds_per_image: float  # one training image of B0 at REFERENCE pixels
    overhead: float  # seconds of a run beyond its images
    flops: int  # B0's forward FLOPs at the reference pixels (the data's classes: 10)
    pixels: int
    measured: str  # ISO date

    def run_seconds(self, flops: int, train_images: int, eval_images: int) -> float:
        """Estimated seconds of one run of a network of ``flops`` forward FLOPs."""
        images = train_images + EVAL_SHARE * eval_images
        return self.overhead + self.seconds_per_image * (flops / self.flops) * images

    def describe(self) -> str:
        rate = 1.0 / self.seconds_per_image
        return (
            f"B0 at {self.pixels} px trains {rate:,.0f} img/s here ({self.device}, "
            f"{self.threads} threads; measured {self.measured[:10]}, + {self.overhead:.1f} s "
            "per run)"
        )


def cache_file() -> Path:
    """The throughput cache: ``$SCALER_TIMING_CACHE``, else throughput.json in scaler's cache."""
    from scaler.data.base import default_cache_dir

    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else default_cache_dir() / "throughput.json"


def _key(device: str, threads: int) -> tuple[str, str, int, str]:
    import torch

    from scaler.machine import cpu

    machine = cpu().describe()
    if device.startswith("cuda"):
        machine += " + " + torch.cuda.get_device_name(torch.device(device))
    return machine, device, threads, torch.__version__


def _where(device: str | None, threads: int | None) -> tuple[str, int]:
    """(the device a run trains on, its CPU threads), as the trainer resolves them."""
    import torch

    from scaler.device import select_device

    return str(select_device(device or "auto")), int(threads or torch.get_num_threads())


def cached(device: str, threads: int) -> Throughput | None:
    """The cached throughput of this machine, device and threads (None: none, or stale)."""
    machine, device, threads, version = _key(device, threads)
    try:
        entries = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return None
    for e in entries if isinstance(entries, list) else []:
        try:
            t = Throughput(**e)
        except TypeError:  # written by another version: measured again
            continue
        if (t.machine, t.device, t.threads, t.torch) != (machine, device, threads, version):
            continue
        age = _dt.datetime.now(_dt.timezone.utc) - _dt.datetime.fromisoformat(t.measured)
        if age.days < MAX_AGE_DAYS:
            return t
    return None


def store(t: Throughput) -> None:
    """Keep ``t`` in the cache (replacing this machine's entry); a failure only costs time."""
    path = cache_file()
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        entries = []
    same = (t.machine, t.device, t.threads, t.torch)
    entries = [
        e
        for e in (entries if isinstance(entries, list) else [])
        if (e.get("machine"), e.get("device"), e.get("threads"), e.get("torch")) != same
    ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([*entries, dataclasses.asdict(t)], indent=1) + "\n")
    except OSError:
        pass


def measure(device: str, threads: int) -> Throughput:
    """Time B0 here: runs of WARM, SHORT and LONG batches; the slope is seconds per image."""
    import time

    from scaler.complexity import count
    from scaler.data import parse_data
    from scaler.proxy import resolve_proxy
    from scaler.spec import scale
    from scaler.train import train

    settings = resolve_proxy("standard", {"device": device, "threads": threads})
    source = parse_data("embedded")
    spec = scale(base_pixels=settings.base_pixels)
    batch = settings.batch_size
    seconds = []
    for batches in (WARM, SHORT, LONG):
        run = dataclasses.replace(settings, images=batches * batch)
        start = time.perf_counter()
        train(spec, source, run)
        seconds.append(time.perf_counter() - start)
    per_image = max((seconds[2] - seconds[1]) / ((LONG - SHORT) * batch), 1e-9)
    val = len(source.load("val", spec.pixels))
    overhead = seconds[1] - per_image * (SHORT * batch + EVAL_SHARE * val)
    machine, device, threads, version = _key(device, threads)
    return Throughput(
        machine=machine,
        device=device,
        threads=threads,
        torch=version,
        seconds_per_image=per_image,
        overhead=max(0.0, overhead),
        flops=count(spec, source.num_classes).flops,
        pixels=spec.pixels,
        measured=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def throughput(device: str | None = None, threads: int | None = None, announce=None) -> Throughput:
    """This machine's throughput for ``device`` and ``threads``: cached, else measured now
    (after calling ``announce()``, when given)."""
    where = _where(device, threads)
    found = cached(*where)
    if found is None:
        if announce is not None:
            announce()
        found = measure(*where)
        store(found)
    return found


# ----------------------------------------------------------------------------------------------
# a run's time
# ----------------------------------------------------------------------------------------------


def train_images(settings, n_train: int) -> int:
    """Training images one run of ``settings`` sees (partial batches dropped, as train() does;
    the same rule as :func:`scaler.confirm._length`)."""
    batch = min(settings.batch_size, n_train)
    if settings.images is not None:
        return math.ceil(settings.images / batch) * batch
    return settings.epochs * (n_train // batch) * batch


def _images(source, settings) -> tuple[int, int]:
    """(training images one run of ``settings`` sees, evaluation images it scores)."""
    from scaler.data import DataError

    px = settings.base_pixels  # image counts do not depend on the size they are served at
    n_train = len(source.load("train", px))
    held = 0
    for split in ("val", "test"):
        with contextlib.suppress(DataError):  # no test split: val only
            held += len(source.load(split, px))
    return train_images(settings, n_train), held


def run_seconds(spec, settings, source) -> float:
    """Estimated seconds of one run of ``spec`` with ``settings`` on ``source`` here."""
    from scaler.complexity import count

    flops = count(spec, source.num_classes).flops
    train_images, eval_images = _images(source, settings)
    return throughput(settings.device, settings.threads).run_seconds(
        flops, train_images, eval_images
    )


def job_seconds(job, settings, source) -> float:
    """Estimated seconds of a :class:`scaler.runner.Job` (all its seeds) here."""
    return job.seeds * run_seconds(job.spec, settings, source)
