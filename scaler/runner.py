"""The one work queue of every study: queue points, claim them, reuse twins, train, record.

Searches, sweeps, confirmations and calibrations (and whatever kind of study comes next)
differ only in which points they queue and how a point becomes a network; both are given to
:func:`work_queue` by the caller (a function listing the :class:`QueuedPoint` s, and a
:class:`Trainer` holding the :data:`Describe` function). The rest is here, once:

- **One lifecycle.** Each kind is a module with the functions of :class:`StudyKind`
  (``prepare`` → ``create`` → ``work`` → ``result``, and ``trial_bytes``); :func:`run_study`
  runs any of them in this process or in worker processes, and every kind's ``run(cfg, study,
  storage, progress, workers)`` is that.

- **Queued points.** Each point is an optuna trial enqueued with its identity (``point``).
  :func:`ensure_queue` enqueues the points no trial covers; a point whose trial was lost
  (Ctrl-C, a killed worker) is queued again, marked ``requeued_from``.
- **Claims are atomic and ordered.** A worker claims a waiting trial with one conditional
  UPDATE (WAITING → RUNNING: one winner, on SQLite too), re-queued points first, so a point
  lost with a dead worker is taken by the next idle or finishing worker rather than after the
  whole queue.
- **Racing refills are harmless.** Two workers may both re-queue a lost point; the claimed
  trial then yields (status ``duplicate``) to the other trial of its point with the lower
  number, so a point is never trained twice.
- **Heartbeats.** A claimed trial sends heartbeats from a thread; trials of dead workers go
  stale, are failed by any live worker (status ``stale`` naming the worker:
  :mod:`scaler.dead_workers`) and queued again.
  Workers wait for other workers' running trials before they exit, so the study completes.
- **Twins.** A network (``network_key``: realized network and pixels) trained once in a study
  is reused by every later trial of the same network (status ``reused``).
- **optuna's private API** (atomic claims, heartbeats, trial ids) is reached only through
  :mod:`scaler.optuna_api`.
- **Failures never stop a study.** A trial that raises is recorded as failed with its reason;
  Ctrl-C records ``interrupted`` and stops (the point is queued again on resume).
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from scaler import dead_workers, optuna_api
from scaler.records import Status, TrialRecord, record_runs, write
from scaler.studies import heartbeat, warnings_silenced
from scaler.workers import INDEX_ENV


@dataclass
class Event:
    """What a worker reports to a progress display."""

    kind: str  # "trial_start" | "epoch" | "trial_end" | "note" (info["line"]: say it)
    trial: int
    done: int
    total: int
    info: dict[str, Any] = field(default_factory=dict)


ProgressFn = Callable[[Event], None]


@dataclass(frozen=True)
class QueuedPoint:
    """A point a study trains: its identity, optuna params and the record fields it starts with.

    A point with a ``skip`` reason is recorded once per reason as a pruned trial and never
    trained (a sweep's cap); it does not cover its point, so a later run may train it.
    """

    id: str
    params: dict[str, float]
    attrs: dict[str, Any]
    skip: str = ""


@dataclass(frozen=True)
class Job:
    """A claimed point made concrete: the network to train and how."""

    spec: Any  # scaler.spec.Spec at the proxy's pixels
    seeds: int
    prune: bool  # feed the first seed's per-epoch accuracy to the study's pruner
    info: dict[str, Any]  # for the trial_start progress event
    # Its own ProxyConfig (a confirmation's longer proxy); None: the trainer's settings.
    proxy_settings: Any = None
    key: str | None = None  # the network_key twins share; None: spec.key_str
    variants: bool = False  # also score every other way (scaler.scoring.VARIANTS): noise studies
    first_seed: int = 0  # its runs are seeds first_seed, first_seed + 1, ... (a race's rounds)
    metric: str = "top1"  # the trial's value (what a TPE sampler optimizes): top1 or balanced


# Turns a claimed trial into a Job, writing its record fields; raises optuna.TrialPruned (with
# the status written) for a point that must not be trained.
Describe = Callable[[Any], Job]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _covers(t) -> bool:
    """Whether trial ``t`` accounts for its point (a lost trial does not: it is queued again)."""
    from optuna.trial import TrialState

    status = TrialRecord.from_trial(t).status
    if status in (Status.SKIPPED, Status.DUPLICATE):
        return False
    return t.state != TrialState.FAIL or status == Status.FAILED


def ensure_queue(study, points: list[QueuedPoint]) -> int:
    """Enqueue every trainable point no trial covers, record skipped ones; returns enqueued."""
    import optuna
    from optuna.trial import TrialState

    covered: set[str] = set()
    skipped: set[tuple[str, str]] = set()
    lost: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if rec.point is None:
            continue
        if rec.status == Status.SKIPPED:
            skipped.add((rec.point, rec.reason))
        elif _covers(t):
            covered.add(rec.point)
        elif t.state == TrialState.FAIL:
            lost[rec.point] = t.number
    added = 0
    for p in points:
        if p.id in covered:
            continue
        if p.skip:
            if (p.id, p.skip) not in skipped:
                attrs = {**p.attrs, "point": p.id, "status": Status.SKIPPED.value, "reason": p.skip}
                study.add_trial(
                    optuna.trial.create_trial(
                        state=TrialState.PRUNED, params={}, distributions={}, user_attrs=attrs
                    )
                )
            continue
        attrs = {**p.attrs, "point": p.id}
        if p.id in lost:
            attrs["requeued_from"] = lost[p.id]
        study.enqueue_trial(p.params, user_attrs=attrs)
        added += 1
    return added


def claim(study) -> Any | None:
    """Claim a waiting trial (re-queued points first) as an optuna Trial, or None.

    The claim is atomic (one winner, on SQLite too) and sends the trial's first heartbeat at
    once: :func:`scaler.optuna_api.claim`.
    """
    from optuna.trial import TrialState

    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for t in sorted(waiting, key=lambda t: (t.user_attrs.get("requeued_from") is None, t.number)):
        trial = optuna_api.claim(study, t)
        if trial is not None:
            return trial
    return None


def _yields_to(trial) -> int | None:
    """The trial of the same point that ``trial`` must yield to (racing refills), or None."""
    from optuna.trial import TrialState

    point = TrialRecord.from_trial(trial).point
    if point is None:
        return None
    for t in trial.study.get_trials(deepcopy=False):
        if t.number == trial.number or not _covers(t) or TrialRecord.from_trial(t).point != point:
            continue
        if t.state.is_finished() or t.number < trial.number:
            return t.number
        if t.state == TrialState.WAITING:  # a higher-numbered copy: it will yield in turn
            continue
    return None


@contextlib.contextmanager
def _heartbeat(study, trial):
    """Send the trial's heartbeat every interval until the block ends."""
    if not optuna_api.has_heartbeat(study):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried next interval
                optuna_api.beat(study, trial)
            if stop.wait(heartbeat()[0]):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def recorded_outcome(trial):
    """Record on ``trial`` why it ends without a value: pruned, interrupted or failed."""
    import optuna

    try:
        yield
    except optuna.TrialPruned:
        if TrialRecord.from_trial(trial).status is None:  # infeasible and skipped say so
            write(trial, status=Status.PRUNED)
        raise
    except KeyboardInterrupt:
        write(trial, status=Status.INTERRUPTED)
        raise
    except Exception as e:
        write(trial, status=Status.FAILED, reason=f"{type(e).__name__}: {' '.join(str(e).split())}")
        raise


def run_trial(study, trial, run: Callable[[Any], float]) -> None:
    """Run one claimed trial with heartbeats and tell the study how it ended."""
    import optuna
    from optuna.trial import TrialState

    try:
        with _heartbeat(study, trial), recorded_outcome(trial):
            write(trial, worker=worker_id())
            if os.environ.get(INDEX_ENV):  # one of a command's --workers: say which
                write(trial, worker_index=int(os.environ[INDEX_ENV]))
            other = _yields_to(trial)
            if other is not None:
                write(trial, status=Status.DUPLICATE, reason=f"its point is trial {other}'s")
                raise optuna.TrialPruned(f"duplicate of trial {other}")
            value = run(trial)
    except optuna.TrialPruned:
        _tell(study, trial, state=TrialState.PRUNED)
    except KeyboardInterrupt:
        _tell(study, trial, state=TrialState.FAIL)
        raise
    except Exception:
        _tell(study, trial, state=TrialState.FAIL)
    else:
        _tell(study, trial, value)


def _tell(study, trial, value: float | None = None, state=None) -> None:
    """Finish ``trial``, unless it is finished already: a worker that stalled past the grace
    period finds its trial failed as stale (and queued again) by another worker."""
    import optuna

    try:
        study.tell(trial, value, state=state)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as e:
        if study.get_trials(deepcopy=False)[trial.number].state.is_finished():
            return
        raise e


def propose(study):
    """A new trial the sampler proposes (its heartbeat is :func:`run_trial`'s)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        trial = study.ask()
    optuna_api.beat(study, trial)  # optuna never fails a running trial without one as stale
    return trial


def _counts(study, sampled_left: int) -> tuple[int, int, bool]:
    """(finished, total, running) over the study's trials."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    finished = sum(t.state.is_finished() for t in trials)
    running = any(t.state == TrialState.RUNNING for t in trials)
    return finished, finished + waiting + sampled_left, running


def work_queue(
    study,
    points: Callable[[], list[QueuedPoint]],
    trainer: Trainer,
    sampled_left: Callable[[], int] = lambda: 0,
) -> None:
    """Run trials until nothing is queued or left to sample and no other worker runs one.

    ``points()`` lists the study's points (queued again when their trial is lost);
    ``sampled_left()`` how many trials the sampler should still propose (TPE, random).
    """
    with warnings_silenced():
        while True:
            dead_workers.fail_stale(study)  # a dead worker's point, queued first
            ensure_queue(study, trainer.queue(points()))
            left = sampled_left()
            finished, total, running = _counts(study, left)
            trainer.counter = (finished, total)
            trial = claim(study)
            if trial is None and left > 0:
                trial = propose(study)
            if trial is not None:
                run_trial(study, trial, trainer)
            elif not running and not _counts(study, left)[2]:  # again: claims race
                return
            else:
                # Other workers are busy, or dead: wait for their trials to finish or go
                # stale, so the study completes.
                time.sleep(heartbeat()[0])


class Trainer:
    """Runs a claimed trial: describe it, reuse a twin or train it, record the results.

    Under a time budget (:mod:`scaler.budget`) a run the plan says cannot end in time is not
    started: its trial is recorded as skipped (``out_of_time`` is set) and its point is not
    queued again in this run (:meth:`queue`); a later run with more time trains it.
    """

    def __init__(self, describe: Describe, source, settings, progress: ProgressFn | None = None):
        from scaler import budget

        self.describe = describe
        self.source = source
        self.settings = settings
        self.progress = progress
        self.counter = (0, 0)  # (done, total) for progress events
        self.budget = budget.current()
        self.skipped: set[str] = set()  # points the budget skipped in this run

    @property
    def out_of_time(self) -> bool:
        """Whether the budget has skipped a run (then no new point should be proposed)."""
        return bool(self.skipped)

    def queue(self, points: list[QueuedPoint]) -> list[QueuedPoint]:
        """``points``, those the budget skipped marked so (recorded once, never trained)."""
        from scaler.budget import marked

        return marked(points, self.skipped)

    def __call__(self, trial) -> float:
        job = self.describe(trial)
        reused = reuse_twin(trial, job.key or job.spec.key_str, job.seeds)
        if reused is not None:
            return reused
        settings = job.proxy_settings or self.settings
        if self.budget is not None:  # raises optuna.TrialPruned for a run that cannot end in time
            from scaler.budget import check

            check(self.budget, trial, job_of=(job, settings, self.source), skipped=self.skipped)
        self.emit("trial_start", trial.number, job.info)
        return train_point(trial, job, self.source, settings, self.emit)

    def emit(self, kind: str, number: int, info: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(Event(kind, number, *self.counter, info))


def reuse_twin(trial, network_key: str, seeds: int) -> float | None:
    """A finished identical network's value, copied into ``trial`` (waits for a running twin).

    Twins are trials of the same study with the same ``network_key`` (realized network and
    pixels) trained with at least ``seeds`` seeds. Returns None when there is none.
    """
    from optuna.trial import TrialState

    write(trial, network_key=network_key)
    while True:
        twins = [
            t
            for t in trial.study.get_trials(deepcopy=False)
            if t.number != trial.number
            and t.user_attrs.get("network_key") == network_key
            and len(t.user_attrs.get("top1_seeds", [])) >= seeds
        ]
        done = [t for t in twins if t.state == TrialState.COMPLETE]
        if done:
            src = min(done, key=lambda t: t.number)
            rec = TrialRecord.from_trial(src)
            write(trial, **rec.results, status=Status.REUSED)
            write(trial, reused_from=rec.reused_from if rec.reused_from is not None else src.number)
            return float(src.value)
        running = [
            t
            for t in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number < trial.number
            and t.user_attrs.get("network_key") == network_key
            and TrialRecord.from_trial(t).status is None  # still training, not reusing
        ]
        if not running:
            return None
        time.sleep(2.0)  # an identical network is training in another worker
        dead_workers.fail_stale(trial.study)  # unless that worker died


def train_point(trial, job: Job, source, settings, emit=None) -> float:
    """Train ``job`` with its seeds, record the results on ``trial``, return the mean of its
    metric (top-1, or balanced accuracy).

    Seed k of every point is ``settings.seed + k`` (``settings``: a ProxyConfig; k from
    ``job.first_seed``, 0 but for a race's later rounds): the same data
    order, augmentation stream and initial seeding for every point trained with those settings,
    so runs pair across points. Each run's per-image correctness on val (and test, when the data
    have one) is stored too. With ``job.prune`` the first seed's per-epoch accuracy feeds the
    study's pruner.
    """
    import optuna

    from scaler.data.rates import balanced_accuracy
    from scaler.train import train

    test = has_test_split(source, job.spec.pixels)

    def on_epoch(epoch: int, acc: float, k: int) -> None:
        if k == job.first_seed and job.prune:
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (top-1 {acc:.1f} %)")

    def on_progress(epoch, epochs, loss, ips, k: int) -> None:
        if emit is not None:
            seed = k - job.first_seed  # the run's place in this trial
            info = dict(epoch=epoch, epochs=epochs, loss=loss, images_per_s=ips, seed=seed)
            emit("epoch", trial.number, {**info, "seeds": job.seeds})

    runs = [
        train(
            job.spec,
            source,
            settings,
            seed=settings.seed + k,
            # Only a pruner needs every epoch's val accuracy: evaluating it costs time and
            # changes no result (seed k's run is the same with or without it).
            callback=(lambda e, a, k=k: on_epoch(e, a, k)) if job.prune else None,
            progress=lambda *a, k=k: on_progress(*a, k),
            test=test,
            variants=job.variants,
        )
        for k in range(job.first_seed, job.first_seed + job.seeds)
    ]
    # The val labels in the order the runs scored them: each hit is paired with its class.
    labels = source.load("val", job.spec.pixels).labels.numpy()
    balanced = [balanced_accuracy(r.val_correct, labels) for r in runs]
    mean = record_runs(trial, runs, test, settings.threads or _torch_threads(), balanced)
    if emit is not None:
        emit("trial_end", trial.number, {"top1": mean, "wall_time": sum(r.wall_time for r in runs)})
    return sum(balanced) / len(balanced) if job.metric == "balanced" else mean


def _torch_threads() -> int:
    """The CPU threads torch trains with by default here (a worker's placement sets them)."""
    import torch

    return int(torch.get_num_threads())


def has_test_split(source, pixels: int) -> bool:
    """Whether ``source`` has a test split (an image folder without test/ has none)."""
    from scaler.data import DataError

    try:
        source.load("test", pixels)
    except DataError:
        return False
    return True


class LineProgress:
    """Progress as plain lines on stderr, one as a trial starts and one as it ends: for output
    sent to a file or a pipe, and for worker processes (``prefix`` names the worker)."""

    def __init__(self, describe: Callable[[Event], str] | None = None, prefix: str = ""):
        self.describe = describe or (lambda event: f"#{event.trial}")
        self.prefix = prefix

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __call__(self, event: Event) -> None:
        info = event.info
        if event.kind == "trial_start":
            line = f"trial {event.done + 1}/{event.total}: {self.describe(event)}"
        elif event.kind == "trial_end":
            line = f"  trial {event.trial}: top-1 {info['top1']:.2f} % in {info['wall_time']:.0f} s"
        elif event.kind == "note":  # a line the study says as it goes (the base check)
            line = info["line"]
        else:
            return
        print(self.prefix + line, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# kinds of study: one lifecycle, run the same way
# ----------------------------------------------------------------------------------------------


@runtime_checkable
class Prepared(Protocol):
    """What every kind's ``prepare`` returns: a validated study, nothing written yet.

    ``cfg``, ``study_name`` and ``storage_url`` are all a worker process needs to prepare the
    same study again (``kind.prepare(cfg, study_name, storage_url)``).
    """

    cfg: Any
    study_name: str
    storage_url: str


@runtime_checkable
class StudyKind(Protocol):
    """A kind of study: searches, sweeps, confirm, calibrate and noise (the modules) each are one.

    The lifecycle, in order: ``prepare`` checks everything and writes nothing (every error one
    line, before any display starts); ``create`` creates the study and queues its points once
    (or loads it and refuses a changed configuration); ``work`` is one worker's loop over the
    queue (:func:`work_queue`), in this process or in a worker process; ``result`` reads the
    outcome back from the study's trials, so a resumed or shared study reads as one run.
    :func:`run_study` runs them in that order; each module's ``run(cfg, study, storage,
    progress, workers)`` is that, its Python entry point.
    """

    def prepare(self, cfg: Any, study: str | None = None, storage: str | None = None) -> Any:
        """Validate ``cfg`` and resolve the study's name and storage; writes nothing."""

    def trial_bytes(self, prepared: Any) -> int:
        """GPU memory one trial may take (for the default number of workers)."""

    def create(self, prepared: Any) -> Any:
        """Create the study with its points queued once, or load it; returns the optuna study."""

    def work(self, prepared: Any, progress: ProgressFn | None = None) -> None:
        """Train queued trials until none is left and no other worker runs one."""

    def result(self, study: Any, storage_url: str) -> Any:
        """What the study holds, read back from its trials."""


def run_study(kind: StudyKind, p: Prepared, progress: ProgressFn | None = None, workers: int = 1):
    """Run (or resume) a prepared study of ``kind`` with ``workers`` processes; its result.

    With several workers the study is created (and its points queued) once, here, before the
    worker processes race for it; each prepares it again and works its queue.
    """
    from scaler.workers import run_workers

    study = kind.create(p)
    if workers > 1:
        work = functools.partial(_worker, kind.__name__, p.cfg, p.study_name, p.storage_url)
        exits = run_workers(work, workers)
        if exits:  # a note when the others finished their work, else WorkerError
            dead_workers.settle(study, exits, workers)
    else:
        kind.work(p, progress)
    return kind.result(study, p.storage_url)


def _worker(module: str, cfg, study: str, storage: str, placement) -> None:
    """One worker process of :func:`run_study` (picklable: names its kind's module)."""
    import importlib

    kind = importlib.import_module(module)
    progress = LineProgress(prefix=f"[worker {placement.index}] ")
    kind.work(
        kind.prepare(cfg, study, storage), dead_workers.killed_by_test(progress, placement.index)
    )
