"""Several worker processes on one machine: one per GPU on CUDA, a share of the cores on CPU.

:func:`run_workers` starts N processes, each running the function it is given with its
:class:`Placement`, and knows nothing of what they do. Searches and sweeps pass a function
that opens their study and works its queue; the study's storage is the only channel between
workers, so workers on other machines (the same command with ``--storage postgresql://...``)
join the same way. What makes sharing safe lives in :mod:`scaler.runner`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Where one worker runs."""

    index: int
    threads: int | None  # CPU threads for torch; None on a GPU
    visible_device: str | None  # CUDA_VISIBLE_DEVICES for this worker


def default_workers() -> int:
    """One worker per visible CUDA device, else one."""
    try:
        import torch

        return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    except Exception:  # pragma: no cover - a broken CUDA setup still gets one CPU worker
        return 1


def check_workers(workers: int | None) -> int:
    """``workers`` validated (1..64), or the default when None."""
    if workers is None:
        return default_workers()
    if not 1 <= workers <= 64:
        raise ValueError(f"--workers {workers} is invalid: it must be in 1..64")
    return workers


def plan(workers: int, cpus: int | None = None) -> list[Placement]:
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


def _child(target: Callable[[Placement], None], placement: Placement) -> None:
    if placement.visible_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = placement.visible_device
    if placement.threads:
        import torch

        torch.set_num_threads(placement.threads)
    target(placement)


def run_workers(target: Callable[[Placement], None], workers: int) -> None:
    """Run ``target(placement)`` in ``workers`` processes and wait for all of them.

    ``target`` must be picklable (a module-level function, or a ``functools.partial`` of one):
    children are spawned, since fork would share torch's thread pools and CUDA state.
    """
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_child, args=(target, placement), daemon=False)
        for placement in plan(workers)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()
        raise
    failed = [i for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise WorkerError(f"workers {failed} exited with an error; the study keeps their trials")


class WorkerError(RuntimeError):
    """A worker process died; what it finished stays in the study."""
