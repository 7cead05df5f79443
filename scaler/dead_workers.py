"""Worker processes that died: the trials they leave, recorded once with why, and the one line
a command prints for each.

- **Stale trials.** :func:`fail_stale` fails a trial whose worker stopped sending heartbeats
  and records on the trial itself, in the same transaction, status ``stale`` and a reason
  naming the worker (optuna's own ``fail_stale_trials`` fails it first, after which nothing
  can be written on it). Its point is then queued again by the runner.
- **Dead workers.** :func:`settle` turns the worker processes that did not exit cleanly into
  one plain line each ("worker 1 was killed by SIGKILL during trial #3; trial #7 trained its
  point again"): a note when the study is complete anyway, a
  :class:`~scaler.workers.WorkerError` (exit code 3) when work is left undone.
- **A test hook.** ``SCALER_TEST_KILL_WORKER=INDEX[,INDEX...]`` makes those workers kill
  themselves with SIGKILL as their first trial starts (:func:`killed_by_test`): only tests set
  it.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from scaler import optuna_api
from scaler.records import Status, TrialRecord
from scaler.studies import heartbeat
from scaler.workers import Exit, WorkerError

KILL_ENV = "SCALER_TEST_KILL_WORKER"


def _who(rec: TrialRecord) -> str:
    if rec.worker_index is not None:
        return f"worker {rec.worker_index} ({rec.worker})"
    return f"worker {rec.worker}" if rec.worker else "its worker"


def fail_stale(study) -> list[int]:
    """Fail every trial of ``study`` whose worker went silent, recorded as ``stale`` with why;
    the numbers of those this call failed (another worker may have failed the rest)."""
    grace = heartbeat()[1]
    failed = []
    for t in optuna_api.stale_trials(study):
        reason = f"{_who(TrialRecord.from_trial(t))} sent no heartbeat for over {grace} s"
        attrs = {"status": Status.STALE.value, "reason": reason + " (the process died?)"}
        if optuna_api.fail_with(study, t, attrs):
            failed.append(t.number)
    return failed


def _fate(trials: list, exit: Exit) -> str:
    """What became of the trial ``exit``'s worker was running: "during trial #3; ..."."""
    mine = f"{socket.gethostname()}:{exit.pid}"
    left = [
        t
        for t in trials
        if t.user_attrs.get("worker") == mine
        and (t.state.name == "RUNNING" or TrialRecord.from_trial(t).status == Status.STALE)
    ]
    if not left:
        return " while it ran no trial"
    t = left[-1]
    point = TrialRecord.from_trial(t).point
    again = [
        u.number
        for u in trials
        if u.number != t.number
        and u.state.name == "COMPLETE"
        and TrialRecord.from_trial(u).point == point
    ]
    if again:
        return f" during trial #{t.number}; trial #{min(again)} trained its point again"
    return f" during trial #{t.number}; its point is not trained yet"


def settle(study, exits: list[Exit], workers: int) -> None:
    """Say what each dead worker left: one note line each when the study is complete (another
    worker finished its work), else one :class:`WorkerError` naming them all."""
    trials = study.get_trials(deepcopy=False)
    lines = [f"worker {e.index} {e.how()}{_fate(trials, e)}" for e in exits]
    # A worker that exits cleanly has seen nothing queued, left to sample or running.
    unfinished = any(t.state.name in ("WAITING", "RUNNING") for t in trials)
    if len(exits) < workers and not unfinished:
        for line in lines:
            print(f"Note: {line}", file=sys.stderr, flush=True)
        return
    raise WorkerError(
        "; ".join(lines) + "; work is left undone: run the same command again to finish it"
    )


def killed_by_test(progress: Callable[[Any], None], index: int) -> Callable[[Any], None]:
    """``progress``, which in a worker ``$SCALER_TEST_KILL_WORKER`` names kills its own
    process with SIGKILL as the first trial starts (a crash no code can catch)."""
    if str(index) not in os.environ.get(KILL_ENV, "").split(","):
        return progress

    def then_die(event) -> None:
        progress(event)
        if event.kind == "trial_start":
            os.kill(os.getpid(), signal.SIGKILL)

    return then_die
