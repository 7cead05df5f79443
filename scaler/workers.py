"""Several worker processes on one machine: K per GPU on CUDA, a share of the cores on CPU.

:func:`run_workers` starts N processes, each running the function it is given with its
:class:`Placement`, and knows nothing of what they do. Searches and sweeps pass a function
that opens their study and works its queue; the study's storage is the only channel between
workers, so workers on other machines (the same command with ``--storage postgresql://...``)
join the same way. What makes sharing safe lives in :mod:`scaler.runner`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Where one worker runs."""

    index: int
    threads: int | None  # CPU threads for torch; None on a GPU
    visible_device: str | None  # CUDA_VISIBLE_DEVICES for this worker


# Most trials one GPU runs at once: a proxy network at 32-64 px is launch-bound, so a few
# processes fill the card; past ~8 the CPU side (one Python process each) is the limit.
MAX_PER_GPU = 8
# Each CUDA process holds a context and allocator slack beside its tensors.
CUDA_PROCESS_BYTES = 1 << 30
# Seconds an interrupted worker gets to record its running trial as failed (so the next run
# queues it again at once, not after the heartbeat's grace period) before it is terminated.
STOP_GRACE = 15.0
# How many worker processes the study of this process has (set for the workers it starts): a
# worker prices its runs at the speed timed with that many training at once (scaler.timing).
PROCESSES_ENV = "SCALER_PROCESSES"


def _gpus() -> tuple[int, int]:
    """(visible CUDA devices, smallest one's memory in bytes); (0, 0) without CUDA."""
    try:
        import torch

        if not torch.cuda.is_available():
            return 0, 0
        n = torch.cuda.device_count()
        return n, min(torch.cuda.get_device_properties(i).total_memory for i in range(n))
    except Exception:  # pragma: no cover - a broken CUDA setup still gets one CPU worker
        return 0, 0


def auto_per_gpu(trial_bytes: int, gpu_bytes: int, cpus: int, gpus: int) -> int:
    """Trials per GPU: as many as fit in 80 % of its memory, one CPU core each, at most 8."""
    fit = int(0.8 * gpu_bytes) // max(1, trial_bytes + CUDA_PROCESS_BYTES)
    return max(1, min(MAX_PER_GPU, fit, max(1, cpus // max(1, gpus))))


def default_workers(trial_bytes: int = 0) -> int:
    """On CUDA, :func:`auto_per_gpu` workers per visible device; else one."""
    gpus, memory = _gpus()
    if gpus == 0:
        return 1
    return gpus * auto_per_gpu(trial_bytes, memory, os.cpu_count() or 1, gpus)


def check_workers(workers: int | None, per_gpu: int | None = None, trial_bytes: int = 0) -> int:
    """The number of worker processes: ``workers``, or ``per_gpu`` per GPU, or the default.

    ``trial_bytes`` (one trial's GPU memory, estimated by the caller) feeds the default.
    """
    if workers is not None and per_gpu is not None:
        raise ValueError("--workers and --workers-per-gpu exclude each other: give one of them")
    if per_gpu is not None:
        if not 1 <= per_gpu <= 32:
            raise ValueError(f"--workers-per-gpu {per_gpu} is invalid: it must be in 1..32")
        gpus, _ = _gpus()
        if gpus == 0:
            raise ValueError(
                "--workers-per-gpu needs a CUDA GPU and none is visible: use --workers on a CPU"
            )
        return per_gpu * gpus
    if workers is None:
        return default_workers(trial_bytes)
    if not 1 <= workers <= 64:
        raise ValueError(f"--workers {workers} is invalid: it must be in 1..64")
    return workers


def placements(workers: int, cpus: int | None = None) -> list[Placement]:
    """Split the machine: GPUs round-robin when present, otherwise the cores evenly."""
    import torch

    if torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = (
            [d for d in visible.split(",") if d]
            if visible
            else [str(i) for i in range(torch.cuda.device_count())]
        )
        return [Placement(i, None, ids[i % len(ids)]) for i in range(workers)]
    cpus = cpus or os.cpu_count() or 1
    return [Placement(i, max(1, cpus // workers), None) for i in range(workers)]


# The environment variable a worker process finds its index in (a trial records it).
INDEX_ENV = "SCALER_WORKER_INDEX"


@dataclass(frozen=True)
class Exit:
    """How one worker process ended, when it did not end cleanly."""

    index: int
    pid: int
    code: int  # its exit code; -N when signal N killed it (multiprocessing's convention)

    def how(self) -> str:
        """How it ended, as a verb phrase: "was killed by SIGKILL", "exited with code 1"."""
        if self.code < 0:
            try:
                name = signal.Signals(-self.code).name
            except ValueError:
                name = f"signal {-self.code}"
            return f"was killed by {name}"
        return f"exited with code {self.code}"


def _child(target: Callable[[Placement], None], placement: Placement) -> None:
    os.environ[INDEX_ENV] = str(placement.index)
    if placement.visible_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = placement.visible_device
    if placement.threads:
        import torch

        torch.set_num_threads(placement.threads)
    try:
        target(placement)
    except KeyboardInterrupt:  # the parent said stop: the trial is recorded, no traceback
        sys.exit(130)


def run_workers(target: Callable[[Placement], None], workers: int) -> list[Exit]:
    """Run ``target(placement)`` in ``workers`` processes, wait for all of them, and return
    those that did not exit cleanly (the caller knows what that left undone).

    ``target`` must be picklable (a module-level function, or a ``functools.partial`` of one):
    children are spawned, since fork would share torch's thread pools and CUDA state.
    """
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_child, args=(target, placement), daemon=False)
        for placement in placements(workers)
    ]
    before = os.environ.get(PROCESSES_ENV)
    os.environ[PROCESSES_ENV] = str(workers)  # each worker prices its runs beside the others
    try:
        for p in procs:
            p.start()
    finally:
        if before is None:
            os.environ.pop(PROCESSES_ENV)
        else:
            os.environ[PROCESSES_ENV] = before
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        _stop(procs)
        raise
    return [Exit(i, p.pid, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]


def _stop(procs: list) -> None:
    """Interrupt every worker as Ctrl-C would (a signal sent to the parent alone reaches none
    of them), give them STOP_GRACE seconds to record their trials, then terminate the rest."""
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
        p.join()


class WorkerError(RuntimeError):
    """A worker process died and left work undone; what it finished stays in the study.

    The command exits with code 3 for it: run the same command again to finish.
    """

    exit_code = 3  # the command's exit code: 1 is a failed run, 2 bad input, 130 Ctrl-C
