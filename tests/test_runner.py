"""The work queue without training: ordered claims, racing refills, stale records, secrets.

A fake trainer stands in for the proxy run, so these tests exercise exactly the runner's
claiming, requeuing and recording on a real SQLite storage, in real worker processes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import threading
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from scaler.results import trials_frame
from scaler.runner import QueuedPoint, claim, ensure_queue, propose, work_queue
from scaler.studies import StudySpec, mask_text, mask_url, open_study, warnings_silenced

V01 = Path(__file__).parent / "data" / "v0.1"
POINTS = [QueuedPoint(f"p{i}", {"x": float(i)}, {"role": "grid"}) for i in range(4)]


class FakeTrainer:
    """Trains nothing: takes ``seconds`` and returns the point's number."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds
        self.counter = (0, 0)

    def __call__(self, trial) -> float:
        time.sleep(self.seconds)
        trial.set_user_attr("status", "trained")
        return float(trial.user_attrs["point"][1:])

    def queue(self, points):
        return points  # no time budget: every point is trainable


def study_at(url: str, name: str = "q"):
    return open_study(StudySpec(name, url, "search", {"test": True}))


def _race_worker(url: str, seconds: float) -> None:
    work_queue(study_at(url), lambda: POINTS, FakeTrainer(seconds))


def test_a_lost_point_is_claimed_before_the_rest(tmp_path):
    study = study_at(f"sqlite:///{tmp_path / 'q.db'}")
    assert ensure_queue(study, POINTS) == 4
    assert ensure_queue(study, POINTS) == 0  # idempotent by point id
    first = claim(study)
    assert first.user_attrs["point"] == "p0"
    study.tell(first, state=TrialState.FAIL)  # its worker died without a word
    assert ensure_queue(study, POINTS) == 1
    nxt = claim(study)
    assert nxt.user_attrs["point"] == "p0" and nxt.user_attrs["requeued_from"] == first.number


@pytest.mark.slow
def test_racing_refills_train_each_point_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    study = study_at(url)
    lost = propose(study)  # a point lost with a dead worker ...
    lost.set_user_attr("point", "p1")
    study.tell(lost, state=TrialState.FAIL)
    # ... seen by two workers refilling at the same moment: both queue it again.
    gate = threading.Barrier(2)
    racers = [
        threading.Thread(target=lambda: (gate.wait(), ensure_queue(study_at(url), POINTS)))
        for _ in range(2)
    ]
    for r in racers:
        r.start()
    for r in racers:
        r.join()
    for p in POINTS:  # and, for certain, every other point queued twice
        study.enqueue_trial(p.params, user_attrs={**p.attrs, "point": p.id})
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_race_worker, args=(url, 0.2)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    frame = trials_frame(study_at(url))
    done = frame[frame["state"] == "COMPLETE"]
    assert sorted(done["value"]) == [0.0, 1.0, 2.0, 3.0]  # each point trained exactly once
    dup = frame[frame["status"] == "duplicate"]
    assert len(dup) >= 4 and (dup["state"] == "PRUNED").all()
    assert dup["reason"].str.match(r"its point is trial \d+'s").all()


@pytest.mark.slow
def test_a_stale_trial_says_why_and_that_its_point_was_trained(tmp_path, monkeypatch):
    import optuna

    monkeypatch.setenv("SCALER_HEARTBEAT", "1,2")
    url = f"sqlite:///{tmp_path / 'q.db'}"
    study = study_at(url)
    ensure_queue(study, POINTS[:1])
    victim = claim(study)  # claimed, one heartbeat, then silence (SIGKILL)
    victim.set_user_attr("worker", "host:4242")
    study._storage.record_heartbeat(victim._trial_id)
    time.sleep(3)
    work_queue(study, lambda: POINTS[:1], FakeTrainer())
    frame = trials_frame(study).set_index("number")
    row = frame.loc[victim.number]
    assert row["state"] == "FAIL" and row["status"] == "stale"
    redone = frame[frame["state"] == "COMPLETE"].index[0]
    assert row["reason"] == (
        "worker host:4242 sent no heartbeat for over 2 s (the process died?); "
        f"trained again as trial {redone}"
    )
    stored = study.trials[victim.number].user_attrs  # on the trial itself, not only the study
    assert stored["status"] == "stale" and stored["reason"].startswith("worker host:4242 sent")
    assert optuna.trial.TrialState.COMPLETE in {t.state for t in study.get_trials()}


@pytest.mark.parametrize(
    "url, secret",
    [
        ("postgresql://scaler:s3cret@db/x", "s3cret"),
        ("postgresql://scaler@db/x?password=s3cret&sslmode=require", "s3cret"),
        ("postgresql+psycopg://scaler@db/x?sslmode=require&PASSWORD=s3cret", "s3cret"),
        ("postgresql://scaler@db/x?sslpassword=k3y", "k3y"),
        ("postgresql://scaler:p%40ss@db/x", "p@ss"),
    ],
)
def test_every_credential_form_is_masked(url, secret):
    assert secret not in mask_url(url) and "***" in mask_url(url)
    message = f"connection to {url} failed: password {secret} rejected ({secret})"
    assert secret not in mask_text(message, url)
    assert "sslmode=require" in mask_url(url) or "sslmode" not in url


def test_a_password_in_the_query_is_never_printed(cli):
    url = "postgresql://scaler@127.0.0.1:1/x?password=s3cret&connect_timeout=2"
    code, out, err = cli("studies", "--storage", url, "--json")
    assert code == 2 and err.count("\n") == 1 and "cannot be opened" in err
    assert "s3cret" not in out + err and "password=***" in err


def test_scaler_storage_is_the_default_storage(cli, tmp_path, monkeypatch):
    shutil.copy(V01 / "v01.db", tmp_path / "elsewhere.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCALER_STORAGE", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    code, out, _ = cli("studies", "--json")
    assert code == 0 and {r["study"] for r in json.loads(out)} == {"search-v01", "sweep-v01"}
    code, _, err = cli("export", "search-v01", "--out", "e.json")
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["at_budget"]["trial"] == 1
    assert not (tmp_path / "studies").exists()  # nothing fell back to studies/NAME.db


@pytest.mark.slow
def test_a_claimed_trial_goes_stale_even_before_it_runs(tmp_path, monkeypatch):
    """A worker killed between its claim and its first beat must not leave a trial running
    for ever (optuna never fails a running trial without any heartbeat as stale)."""
    import optuna

    monkeypatch.setenv("SCALER_HEARTBEAT", "1,2")
    study = study_at(f"sqlite:///{tmp_path / 'q.db'}")
    ensure_queue(study, POINTS[:1])
    claimed = claim(study)  # ... and the worker dies here
    time.sleep(3)
    with warnings_silenced():
        optuna.storages.fail_stale_trials(study)
    assert study.get_trials()[claimed.number].state == TrialState.FAIL


def test_a_points_runs_store_their_cpu_thread_count():
    from types import SimpleNamespace

    from scaler.records import TrialRecord, record_runs

    class Trial:
        user_attrs: dict = {}

        def set_user_attr(self, key, value):
            self.user_attrs[key] = value

    run = SimpleNamespace(
        top1=50.0,
        top5=90.0,
        seed=0,
        val_correct=[True, False],
        wall_time=1.0,
        images_per_s=10.0,
        loss_curve=[1.0],
        variants=[],  # scored the default way only
    )
    trial = Trial()
    record_runs(trial, [run, run], test=False, threads=2)
    assert TrialRecord.from_trial(trial).threads == 2
