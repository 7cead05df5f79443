"""Measured latency: a network's time on a device against its base's, and the input size that
meets a latency budget.

FLOPs are not speed: depthwise convolutions and activations are memory-bound, so two networks of
equal FLOPs can differ in time, and the best coefficients under a latency budget may differ from
those under FLOPs. :func:`compare` times a network and its base the way careful benchmarks do:

- both built, on the device, in the trainer's memory format (channels_last when it is on);
- warm-up runs first (cuDNN's autotuning and the allocator settle there);
- each timed sample repeats a run back to back until the base's sample lasts ``min_sample``
  (20 ms): a GPU's millisecond runs are otherwise mostly launch and synchronisation jitter;
- the two timed in alternation, base first on even pairs and second on odd ones, each run
  bracketed by a device synchronisation, so drift of the machine falls on both alike;
- the answer is the median of the per-pair ratios, with a distribution-free 95 % interval of that
  median (order statistics, ``scipy.stats.binom``); pairs are added in blocks until its half-width
  is at most ``max_spread`` of the median, or ``max_pairs`` is reached (then it did not settle);
- the whole measurement is made in ``processes`` new processes, one after another, and the
  answer is the mean of their ratios with a t interval: on the 2-core CPU the same pair of
  networks keeps one ratio for a process's life but draws it anew in each process (2.12 or
  2.45 for one candidate, 5 processes; reports/latency-2x-processes), so one process's
  answer is a draw of that lottery, not the machine's latency; and a process that has timed
  other networks draws lower for some (reports/latency-2x-drift), so each measurement gets
  processes of its own.

What is timed (:data:`MODES`): ``batch1`` (one image, eval mode, no autograd: serving latency),
``batchN`` (a batch of :data:`DEFAULT_BATCH`, or ``batch32`` for 32: throughput-bound serving) and
``train-step`` (forward, backward and an SGD step on a batch of :data:`DEFAULT_BATCH`, train mode).

:func:`solve_latency_pixels` finds the input size whose measured ratio comes closest to a budget,
starting from the FLOPs solve and stepping by the power law latency ∝ pixels^k fitted on the
points it has measured (k = 2 to start, FLOPs' exponent).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

MODES: Final = ("batch1", "batchN", "train-step")
DEFAULT_BATCH: Final = 16  # batchN and train-step
VALID_MODES: Final = "batch1, batchN (a batch of 16), batch<N> such as batch32, train-step"
_BATCH: Final = re.compile(r"^batch(\d+)$")
# A latency is the mean over this many processes' measurements (see the module's docstring);
# $SCALER_LATENCY_PROCESSES sets another number.
PROCESSES: Final = 5
PROCESSES_ENV: Final = "SCALER_LATENCY_PROCESSES"


def default_processes() -> int:
    """$SCALER_LATENCY_PROCESSES, else :data:`PROCESSES`; a bad value is one line naming it."""
    import os

    raw = os.environ.get(PROCESSES_ENV, "").strip()
    if not raw:
        return PROCESSES
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{PROCESSES_ENV}={raw!r} is invalid: valid values are 1, 2, 3, ...")
    return int(raw)


@dataclass(frozen=True)
class LatencySettings:
    """How a latency is measured; stored with every measurement."""

    mode: str = "batch1"  # batch1 | batch<N> | train-step (normalized by parse_mode)
    device: str = "cpu"  # a device name, as --device takes it
    threads: int | None = None  # torch CPU threads (None: torch's default)
    channels_last: bool = True  # the trainer's memory format
    warmup: int = 3  # untimed runs of each network before the first pair
    block: int = 10  # pairs added at a time
    max_pairs: int = 100  # pairs at most before a measurement is called unsettled
    max_spread: float = 0.03  # half-width of the median ratio's 95 % interval ÷ the median
    min_sample: float = 0.02  # seconds a timed sample of the base lasts at least (runs repeat)
    num_classes: int = 1000
    # Separate processes that each measure, one after another (1: this process alone).
    processes: int = dataclasses.field(default_factory=default_processes)

    @property
    def batch(self) -> int:
        m = _BATCH.match(self.mode)
        return int(m.group(1)) if m else DEFAULT_BATCH

    def describe(self) -> str:
        what = "one SGD step" if self.mode == "train-step" else "forward, eval mode"
        threads = f", {self.threads} threads" if self.threads else ""
        return f"{self.mode} ({what}, batch {self.batch}){threads}"


@dataclass(frozen=True)
class Latency:
    """A network's measured latency against its base's, at its own input size (stored)."""

    seconds: float  # median time of one timed run of the network
    base_seconds: float  # the same of the base, timed in alternation
    ratio: float  # median of the per-pair ratios network ÷ base
    low: float  # 95 % interval of that median (order statistics)
    high: float
    pairs: int
    settled: bool  # the interval's half-width is within max_spread of the median
    pixels: int
    base_pixels: int
    mode: str
    batch: int
    device: str  # the device as torch names it, e.g. cuda:0
    machine: str  # the CPU or the card, in words
    processes: int = 1  # processes that measured; ratio is the mean of theirs
    process_ratios: tuple[float, ...] = ()  # each process's median ratio (processes > 1)
    unsettled: int = 0  # processes whose interval stayed wider than the bound

    def why_unsettled(self, settings: LatencySettings) -> str:
        """Why it did not settle, in words: the pooled spread can be within the bound while a
        process's own was not."""
        bound = f"the bound is ±{settings.max_spread:.0%}"
        if self.processes == 1:
            return f"±{self.spread:.1%} after {self.pairs} pairs, {bound}"
        return (
            f"in {self.unsettled} of {self.processes} processes, each ±{settings.max_spread:.0%} "
            f"within {settings.max_pairs} pairs at most"
        )

    @property
    def spread(self) -> float:
        """Half-width of the ratio's interval ÷ the ratio."""
        return (self.high - self.low) / 2 / self.ratio

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.ratio:.3f}× the base ({self.seconds * 1e3:.2f} ms against "
            f"{self.base_seconds * 1e3:.2f} ms at {self.pixels}/{self.base_pixels} px, "
            f"±{self.spread:.1%} over {self.pairs} pairs{self._where()}, {self.mode} on "
            f"{self.device})"
        )

    def _where(self) -> str:
        return (
            f" in {self.processes} processes ({', '.join(f'{r:.3f}' for r in self.process_ratios)})"
            if self.processes > 1
            else ""
        )


def parse_mode(text: str, option: str = "--latency") -> str:
    """A mode's normal spelling: batch1, batch<N> (batchN is batch16) or train-step."""
    raw = str(text).strip().lower()
    if raw == "batchn":
        return f"batch{DEFAULT_BATCH}"
    m = _BATCH.match(raw)
    if raw == "train-step" or (m and int(m.group(1)) >= 1):
        return raw
    raise ValueError(f"{option} {text!r} is invalid: valid values are {VALID_MODES}")


def machine_name(device) -> str:
    """The CPU or card a latency is measured on, in words."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from scaler.machine import cpu

    return cpu().describe()


def _runner(spec, settings: LatencySettings, device) -> Callable[[], None]:
    """One timed run of ``spec``'s network: a forward pass or a training step."""
    import torch

    from scaler.model import build

    model = build(spec, settings.num_classes).to(device)
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(settings.batch, 3, spec.pixels, spec.pixels, device=device)
    x = x.contiguous(memory_format=fmt)
    if settings.mode != "train-step":
        model.eval()

        def forward() -> None:
            with torch.inference_mode():
                model(x)

        return forward
    model.train()
    y = torch.arange(settings.batch, device=device) % settings.num_classes  # any labels do
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def _timed(run: Callable[[], None], device, inner: int = 1) -> float:
    """Seconds of one run: ``inner`` runs back to back between two synchronisations, averaged."""
    from scaler.device import sync

    sync(device)
    t0 = time.perf_counter()
    for _ in range(inner):
        run()
    sync(device)
    return (time.perf_counter() - t0) / inner


def _inner(run: Callable[[], None], device, min_sample: float) -> int:
    """Runs per timed sample, so a sample of the base lasts ``min_sample`` seconds at least: a
    run of milliseconds on a GPU is otherwise mostly launch and synchronisation jitter."""
    one = sorted(_timed(run, device) for _ in range(3))[1]
    return max(1, min(100, math.ceil(min_sample / max(one, 1e-6))))


def compare(spec, base_spec, settings: LatencySettings) -> Latency:
    """``spec``'s latency against ``base_spec``'s on the settings' device, timed in alternation,
    in ``settings.processes`` separate processes (their mean) or in this one."""
    if settings.processes > 1:
        return _across_processes(spec, base_spec, settings)
    import torch

    from scaler.device import select_device, torch_settings

    device = select_device(settings.device)
    with torch_settings(device, settings.threads):
        runs = (_runner(base_spec, settings, device), _runner(spec, settings, device))
        for _ in range(settings.warmup):
            for run in runs:
                run()
        inner = _inner(runs[0], device, settings.min_sample)
        pairs: list[tuple[float, float]] = []
        while True:
            for i in range(settings.block):
                order = runs if (len(pairs) + i) % 2 == 0 else runs[::-1]
                t = [_timed(r, device, inner) for r in order]
                pairs.append((t[0], t[1]) if order is runs else (t[1], t[0]))
            result = _result(pairs, spec, base_spec, settings, device)
            if result.settled or len(pairs) >= settings.max_pairs:
                break
        del runs
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


def _result(pairs, spec, base_spec, settings, device) -> Latency:
    import statistics

    from scaler.stats import median_interval

    ratio, low, high = median_interval([c / b for b, c in pairs])
    settled = (high - low) / 2 <= settings.max_spread * ratio
    return Latency(
        seconds=statistics.median(c for _, c in pairs),
        base_seconds=statistics.median(b for b, _ in pairs),
        ratio=ratio,
        low=low,
        high=high,
        pairs=len(pairs),
        settled=settled,
        unsettled=int(not settled),
        pixels=spec.pixels,
        base_pixels=base_spec.pixels,
        mode=settings.mode,
        batch=settings.batch,
        device=str(device),
        machine=machine_name(device),
    )


def _across_processes(spec, base_spec, settings: LatencySettings) -> Latency:
    """The mean of one measurement in each of ``settings.processes`` new processes, made one at
    a time (each has the device to itself), with a t interval over processes."""
    one = dataclasses.replace(settings, processes=1)
    timers = _spawn(settings.processes)
    try:
        return pooled([_ask(conn, (spec, base_spec, one)) for conn, _ in timers])
    finally:
        for conn, process in timers:
            conn.close()  # the process reads EOF and exits
            process.join(timeout=30)


def pooled(parts: list[Latency]) -> Latency:
    """Measurements of the same pair as one: the mean of every process's ratio (a part measured
    in one process counts as one), with a t interval over all of them."""
    import statistics

    from scaler.stats import critical_value

    ratios = [r for p in parts for r in (p.process_ratios or (p.ratio,))]
    weights = [len(p.process_ratios) or 1 for p in parts]
    mean, k, n = statistics.fmean(ratios), len(ratios), sum(weights)
    half = critical_value(0.95, k - 1) * statistics.stdev(ratios) / math.sqrt(k)
    return dataclasses.replace(
        parts[0],
        seconds=sum(p.seconds * w for p, w in zip(parts, weights, strict=True)) / n,
        base_seconds=sum(p.base_seconds * w for p, w in zip(parts, weights, strict=True)) / n,
        ratio=mean,
        low=mean - half,
        high=mean + half,
        pairs=sum(p.pairs for p in parts),
        # Each process's interval is within the bound: the spread between processes is the
        # measurement's own answer (the lottery), reported as the interval, not refused.
        settled=all(p.settled for p in parts),
        unsettled=sum(p.unsettled for p in parts),
        processes=k,
        process_ratios=tuple(ratios),
    )


def _spawn(n: int) -> list:
    """``n`` new timing processes and connections to them, once each has imported torch, so that no
    import runs beside a measurement. New for every measurement: a process that has timed other
    networks times the next one differently (a candidate 2.0× its base after two other sizes,
    2.2× in new processes; reports/latency-2x-drift). Spawned: a fork would share torch's
    thread pools."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    timers = []
    for _ in range(n):
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child,), daemon=True)
        process.start()
        child.close()
        timers.append((parent, process))
    for conn, _ in timers:
        conn.recv()  # "ready"; an EOFError if the process died first
    return timers


def _ask(conn, request) -> Latency:
    conn.send(request)
    reply = conn.recv()
    if isinstance(reply, BaseException):
        raise reply
    return reply


def _serve(conn) -> None:
    """A timing process: say it is ready, then measure each (spec, base spec, settings) it is
    sent, in turn, until the parent closes the connection."""
    import torch  # noqa: F401  (before "ready": the import's work is not beside a measurement)

    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the parent is done with it, or gone
            return
        try:
            conn.send(compare(*request))
        except Exception as e:  # the parent raises it
            conn.send(e)


class UnsettledError(ValueError):
    """A latency whose interval stayed wider than the bound after the most pairs."""


def settled(latency: Latency, settings: LatencySettings, what: str) -> Latency:
    """``latency``, or an :class:`UnsettledError` (one line) when it did not settle."""
    if latency.settled:
        return latency
    raise UnsettledError(
        f"--latency {settings.mode}: {what}'s latency did not settle on {latency.device} "
        f"({latency.why_unsettled(settings)}): run on a quiet machine, or use a larger batch "
        f"(batchN, train-step)"
    )


@dataclass(frozen=True)
class LatencySolution:
    """The input size whose measured latency comes closest to the budget, and its measurement."""

    pixels: int
    latency: Latency
    tried: tuple[tuple[int, float], ...]  # (pixels, ratio) of every size measured

    @property
    def error(self) -> float:
        return self.latency.ratio / self.target - 1

    target: float = 1.0


def solve_latency_pixels(
    measure: Callable[[int], Latency],
    start: int,
    target: float,
    tolerance: float,
    limits: tuple[int, int],
    max_tries: int = 6,
) -> LatencySolution:
    """The input size whose measured latency ratio (``measure(pixels)``) is closest to ``target``.

    From ``start`` (the FLOPs solve) it steps by latency ∝ pixels^k (k = 2, FLOPs' exponent),
    until two sizes bracket the target; then it interpolates between the closest sizes below and
    above, in log-log. A size measured within half the tolerance is measured once more and the
    two pooled (:func:`pooled`); it stops when they are still within half the tolerance, when
    the bracket is one pixel wide, or after ``max_tries`` sizes; the answer is the size measured
    closest to the target.
    """
    lo, hi = limits
    tried: dict[int, Latency] = {}
    pixels = min(max(start, lo), hi)
    while pixels not in tried and len(tried) < max_tries:
        lat = measure(pixels)
        if abs(lat.ratio / target - 1) <= tolerance / 2:
            # A draw is kept for landing on the budget, so a high or low draw would be kept as
            # readily as a true one: the size is measured again and the two pooled before it is
            # accepted (reports/latency-2x-replicate).
            lat = pooled([lat, measure(pixels)])
        tried[pixels] = lat
        if abs(lat.ratio / target - 1) <= tolerance / 2:
            break
        pixels = _next_pixels(tried, target, limits)
    best = min(tried, key=lambda p: abs(tried[p].ratio / target - 1))
    return LatencySolution(
        pixels=best,
        latency=tried[best],
        tried=tuple((p, lat.ratio) for p, lat in tried.items()),
        target=target,
    )


def _next_pixels(tried: dict[int, Latency], target: float, limits: tuple[int, int]) -> int:
    """The next size to measure: interpolated inside a bracket, else a power-law step."""
    below = [p for p, lat in tried.items() if lat.ratio < target]
    above = [p for p, lat in tried.items() if lat.ratio >= target]
    if below and above:
        a, b = max(below), min(above)
        if abs(b - a) <= 1:
            return next(iter(tried))  # one pixel apart: nothing between them, stop
        ra, rb = tried[a].ratio, tried[b].ratio
        k = math.log(rb / ra) / math.log(b / a) if rb > ra and a != b else 2.0
        guess = round(a * (target / ra) ** (1 / k)) if k > 0 else (a + b) // 2
        lo, hi = sorted((a, b))
        return min(max(guess, lo + 1), hi - 1)
    last = list(tried)[-1]
    ratio = tried[last].ratio
    nxt = round(last * (target / ratio) ** 0.5)
    if nxt == last:  # one pixel is the smallest step
        nxt += 1 if ratio < target else -1
    return min(max(nxt, limits[0]), limits[1])
