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

A study with several worker processes (a GPU's K workers, a CPU's cores split between
workers) is timed again with that many processes training at once (:func:`measure`'s
``processes``, placed as the workers are): a run beside others is slower, and each process
also takes time to start (:attr:`Throughput.start`). :mod:`scaler.plan` prices a stage's runs
between the two speeds by how many train at once.

The measurement is cached per CPU (model and vector extensions, :mod:`scaler.machine`; the GPU
too on CUDA), device, thread count, processes at once and torch version in a JSON file
(:func:`cache_file`: ``$SCALER_TIMING_CACHE``, else ``throughput.json`` in scaler's cache folder,
``$SCALER_CACHE`` or ``~/.cache/scaler``) and measured again after :data:`MAX_AGE_DAYS` days
or with another torch. :mod:`scaler.plan` prints the estimate; ``--time``
(:mod:`scaler.budget`) asks :func:`job_seconds` whether a run fits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from scaler.workers import PROCESSES_ENV

# A forward pass (evaluation) costs about a third of a training step (forward + backward).
EVAL_SHARE: Final = 1 / 3
MAX_AGE_DAYS: Final = 30  # a cached throughput older than this is measured again
CACHE_ENV: Final = "SCALER_TIMING_CACHE"  # the cache file (tests isolate it)
# The timing runs: B0 on the embedded data at the standard proxy, this many batches each.
WARM, SHORT, LONG = 2, 4, 16
BARRIER_TIMEOUT: Final = 300.0  # seconds processes timed together wait for each other


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
    # Processes that trained at once while timed: the workers of a study share the machine (a
    # GPU's K workers, a CPU's cores split between them), and a run is slower beside others.
    processes: int = 1
    start: float = 0.0  # seconds for a worker process to be ready (imports, data, device)
    # Seconds more that a process's first run of a network costs (cuDNN tries its algorithms
    # for every new convolution shape): the warm-up run's time beyond the model.
    first: float = 0.0
    layers: int = 16  # B0's

    def ratio(self, flops: int, layers: int | None) -> float:
        """A network's cost per image over B0's: its FLOPs ratio on a CPU; its layers ratio on
        a GPU, where a small proxy network is launch-bound (many small kernels, each a few
        microseconds whatever its FLOPs)."""
        if self.device.startswith("cuda") and layers:
            return layers / self.layers
        return flops / self.flops

    def run_seconds(
        self, flops: int, train_images: int, eval_images: int, layers: int | None = None
    ) -> float:
        """Estimated seconds of one run of a network of ``flops`` forward FLOPs (and
        ``layers`` blocks: the measure on a GPU), its first run in a process excepted."""
        images = train_images + EVAL_SHARE * eval_images
        return self.overhead + self.seconds_per_image * self.ratio(flops, layers) * images

    def first_seconds(self, flops: int, layers: int | None = None) -> float:
        """What a process's first run of a network costs beyond :meth:`run_seconds`."""
        return self.first * self.ratio(flops, layers)

    def describe(self) -> str:
        rate = 1.0 / self.seconds_per_image
        where = f"{self.device}, {self.threads} thread{'s' if self.threads != 1 else ''}"
        if self.processes > 1:
            where += f", each of {self.processes} processes at once"
        return (
            f"B0 at {self.pixels} px trains {rate:,.0f} img/s here ({where}; measured "
            f"{self.measured[:10]}, + {self.overhead:.1f} s per run)"
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


def _same(t: Throughput, key: tuple, processes: int) -> bool:
    return (t.machine, t.device, t.threads, t.torch, t.processes) == (*key, processes)


def _where(device: str | None, threads: int | None) -> tuple[str, int]:
    """(the device a run trains on, its CPU threads), as the trainer resolves them."""
    import torch

    from scaler.device import select_device

    return str(select_device(device or "auto")), int(threads or torch.get_num_threads())


def cached(device: str, threads: int, processes: int = 1) -> Throughput | None:
    """The cached throughput of this machine, device, threads and processes at once (None:
    none, or stale)."""
    key = _key(device, threads)
    try:
        entries = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return None
    for e in entries if isinstance(entries, list) else []:
        try:
            t = Throughput(**e)
        except TypeError:  # written by another version: measured again
            continue
        if not _same(t, key, processes):
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
    fields = ("machine", "device", "threads", "torch", "processes")
    same = tuple(getattr(t, f) for f in fields)
    entries = [
        e
        for e in (entries if isinstance(entries, list) else [])
        if tuple(e.get(f, 1 if f == "processes" else None) for f in fields) != same
    ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([*entries, dataclasses.asdict(t)], indent=1) + "\n")
    except OSError:
        pass


def _timing_runs(device: str, threads: int, barrier=None) -> list[float]:
    """Seconds of B0's WARM, SHORT and LONG runs here (each run after ``barrier``, when given:
    processes timed together start each run together)."""
    import time

    from scaler.data import parse_data
    from scaler.proxy import resolve_proxy
    from scaler.spec import scale
    from scaler.train import train

    settings = resolve_proxy("standard", {"device": device, "threads": threads})
    source = parse_data("embedded")
    spec = scale(base_pixels=settings.base_pixels)
    seconds = []
    for batches in (WARM, SHORT, LONG):
        run = dataclasses.replace(settings, images=batches * settings.batch_size)
        if barrier is not None:
            barrier.wait(timeout=BARRIER_TIMEOUT)
        start = time.perf_counter()
        train(spec, source, run)
        seconds.append(time.perf_counter() - start)
    return seconds


def _timed_child(placement, device: str, threads: int, barrier, queue, t0: float) -> None:
    """One of :func:`_time_together`'s processes, placed as a study's worker would be."""
    import time

    try:
        if placement.visible_device is not None:  # as scaler.workers places a worker
            os.environ["CUDA_VISIBLE_DEVICES"] = placement.visible_device
            device = "cuda"
        import torch

        from scaler.data import parse_data

        torch.set_num_threads(threads)
        parse_data("embedded").load("train", 48)
        torch.zeros(1, device=device)  # the device's context: part of a worker's start
        ready = time.time() - t0
        queue.put((ready, _timing_runs(device, threads, barrier)))
    except BaseException as e:  # the others must not wait at the barrier for this one
        barrier.abort()
        queue.put((None, f"{type(e).__name__}: {e}"))


def _time_together(device: str, threads: int, processes: int) -> tuple[list[list[float]], float]:
    """(each process's :func:`_timing_runs`, the median seconds a process took to be ready)
    with ``processes`` processes training at once, spawned and placed as study workers."""
    import multiprocessing as mp
    import statistics
    import time

    from scaler.workers import placements

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    t0 = time.time()
    procs = [
        ctx.Process(target=_timed_child, args=(p, device, threads, barrier, queue, t0))
        for p in placements(processes)
    ]
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=2 * BARRIER_TIMEOUT) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    errors = sorted((str(r[1]) for r in results if r[0] is None), key=lambda e: "Broken" in e)
    if errors:  # the cause first, the others' broken barrier after it
        raise RuntimeError(f"timing {processes} processes at once failed: {errors[0]}")
    return [r[1] for r in results], statistics.median(r[0] for r in results)


def measure(device: str, threads: int, processes: int = 1) -> Throughput:
    """Time B0 here: runs of WARM, SHORT and LONG batches; the slope is seconds per image.

    With ``processes`` > 1 that many processes train at once, as a study's workers would
    (:func:`_time_together`); the median process's slope and overhead are kept."""
    import statistics

    from scaler.complexity import count
    from scaler.data import parse_data
    from scaler.proxy import resolve_proxy
    from scaler.spec import scale

    settings = resolve_proxy("standard", {"device": device, "threads": threads})
    source = parse_data("embedded")
    spec = scale(base_pixels=settings.base_pixels)
    batch = settings.batch_size
    if processes > 1:
        runs, start = _time_together(device, threads, processes)
    else:
        runs, start = [_timing_runs(device, threads)], 0.0
    val = len(source.load("val", spec.pixels))
    slopes = [max((s[2] - s[1]) / ((LONG - SHORT) * batch), 1e-9) for s in runs]
    per_image = statistics.median(slopes)
    held = EVAL_SHARE * val
    timed = list(zip(runs, slopes, strict=True))
    overhead = max(0.0, statistics.median(s[1] - k * (SHORT * batch + held) for s, k in timed))
    # The warm-up run (WARM batches) beyond what the model gives a later run of its length.
    first = statistics.median(s[0] - overhead - k * (WARM * batch + held) for s, k in timed)
    machine, device, threads, version = _key(device, threads)
    return Throughput(
        machine=machine,
        device=device,
        threads=threads,
        torch=version,
        seconds_per_image=per_image,
        overhead=overhead,
        flops=count(spec, source.num_classes).flops,
        pixels=spec.pixels,
        measured=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        processes=processes,
        start=start,
        first=max(0.0, first),
        layers=spec.layers,
    )


def throughput(
    device: str | None = None,
    threads: int | None = None,
    announce=None,
    processes: int | None = None,
) -> Throughput:
    """This machine's throughput for ``device``, ``threads`` and ``processes`` training at once
    (default: :data:`PROCESSES_ENV`, which a study's workers inherit, else 1): cached, else
    measured now (after calling ``announce()``, when given)."""
    where = _where(device, threads)
    processes = processes or int(os.environ.get(PROCESSES_ENV, "1"))
    found = cached(*where, processes)
    if found is None:
        if announce is not None:
            announce()
        found = measure(*where, processes)
        store(found)
    return found


# ----------------------------------------------------------------------------------------------
# a run's time
# ----------------------------------------------------------------------------------------------


def train_images(settings, n_train: int) -> int:
    """Training images one run of ``settings`` sees (partial batches dropped, as train() does;
    the steps are :func:`scaler.proxy.run_steps`)."""
    from scaler.proxy import run_steps

    return run_steps(settings, n_train) * min(settings.batch_size, n_train)


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


def run_cost(spec, settings, source) -> tuple[int, int, int, int]:
    """(forward FLOPs, training images, evaluation images, layers) of one run of ``spec``."""
    from scaler.complexity import count

    return (count(spec, source.num_classes).flops, *_images(source, settings), spec.layers)


def run_seconds(spec, settings, source) -> float:
    """Estimated seconds of one run of ``spec`` with ``settings`` on ``source`` here."""
    return throughput(settings.device, settings.threads).run_seconds(
        *run_cost(spec, settings, source)
    )


def job_seconds(job, settings, source) -> float:
    """Estimated seconds of a :class:`scaler.runner.Job` (all its seeds) here, its network's
    first run in this process counted (the budget cannot know whether it is: it errs long)."""
    t = throughput(settings.device, settings.threads)
    cost = run_cost(job.spec, settings, source)
    return job.seeds * t.run_seconds(*cost) + t.first_seconds(cost[0], cost[3])
