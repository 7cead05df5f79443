"""Several worker processes on one study: one per GPU on CUDA, a share of the cores on CPU.

The study's storage is the only channel between workers, so workers on other machines (started
with the same ``scaler search ... --storage postgresql://...``) join the same way. What makes
that safe lives in :mod:`scaler.search`: queued points are claimed atomically by the storage,
identical networks are trained once (a twin waits and reuses), and trials whose worker died stop
sending heartbeats, are failed as stale by any live worker and queued again.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
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


def _worker_main(cfg, study: str, storage: str, placement: Placement) -> None:
    if placement.visible_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = placement.visible_device
    from scaler import search as S

    prepared = S.prepare(cfg, study, storage)

    def report(event) -> None:
        if event.kind == "trial_end":
            print(
                f"[worker {placement.index}] trial {event.trial}: top-1 "
                f"{event.info['top1']:.2f} % in {event.info['wall_time']:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    S.run_worker(prepared, report, threads=placement.threads)


def run_workers(prepared, workers: int) -> None:
    """Run ``workers`` processes on the prepared study and wait for all of them."""
    from scaler import search as S

    S.open_search_study(prepared)  # create and queue once, before the workers race for it
    ctx = mp.get_context("spawn")  # fork would share torch's thread pools and CUDA state
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(prepared.cfg, prepared.study_name, prepared.storage_url, placement),
            daemon=False,
        )
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
