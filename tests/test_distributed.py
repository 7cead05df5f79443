"""Many workers on one study, crash safety and secrets, on SQLite and a real PostgreSQL.

The PostgreSQL cases need a server: .ci/run starts one on loopback and sets
SCALER_TEST_POSTGRES to its URL; without it they are skipped with that reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from conftest import TINY_ARGS, TINY_DATA, TINY_PROXY

from scaler import searches as S
from scaler.results import trials_frame
from scaler.studies import load_study

PG = os.environ.get("SCALER_TEST_POSTGRES")
needs_pg = pytest.mark.skipif(not PG, reason="set SCALER_TEST_POSTGRES to a PostgreSQL URL")
# Every test here starts worker processes that train: minutes in all.
pytestmark = pytest.mark.slow
BACKENDS = ["sqlite", pytest.param("postgresql", marks=needs_pg)]

# Tiny proxy runs (a later --images wins) on the small embedded set (the data is not what these
# tests are about); the grid is α ∈ {1.0, 1.2, 1.4} x β ∈ {1.0, 1.1}: six distinct networks.
PROXY = [*TINY_ARGS, "--data", TINY_DATA]
GRID = [
    "--alpha-range",
    "1.0:1.4",
    "--alpha-step",
    "0.2",
    "--beta-range",
    "1.0:1.1",
    "--beta-step",
    "0.1",
]


def _env() -> dict[str, str]:
    """The subprocesses' environment, read when they start: the session's made-up throughput
    cache (conftest sets it after this module is imported) keeps them from timing B0."""
    return {**os.environ, "SCALER_HEARTBEAT": "1,4", "PYTHONWARNINGS": "ignore"}


@pytest.fixture
def storage(request, tmp_path):
    if request.param == "postgresql":
        return PG
    return f"sqlite:///{tmp_path / 'dist.db'}"


def worker(url: str, study: str, *extra: str, cwd=None) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "scaler",
        "search",
        "--storage",
        url,
        "--study",
        study,
        *PROXY,
        "--no-confirm",  # these tests are about sharing the search's queue
        *extra,
    ]
    return subprocess.Popen(
        cmd, env=_env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def _point(attrs: dict) -> tuple[str, float, float]:
    return attrs["role"], round(attrs["alpha"], 6), round(attrs["beta"], 6)


def assert_each_point_trained_once(url: str, study: str, cfg: S.SearchConfig) -> None:
    frame = trials_frame(load_study(study, url))
    done = frame[frame["state"].isin(["COMPLETE", "PRUNED"])]
    wanted = {_point(p.attrs) for p in S.queued_points(cfg)}
    covered = {
        (r, round(a, 6), round(b, 6))
        for r, a, b in zip(done["role"], done["alpha"], done["beta"], strict=True)
    }
    assert wanted <= covered, wanted - covered
    trained = done[done["status"] == "trained"]
    assert trained["network_key"].is_unique, trained[["number", "network_key"]]
    assert set(done["status"]) <= {"trained", "reused", "infeasible"}


def grid_config(images: int) -> S.SearchConfig:
    return S.SearchConfig(
        budget=2.0,
        data=TINY_DATA,
        proxy="quick",
        proxy_overrides=(*TINY_PROXY, ("images", images)),
        alpha_range=(1.0, 1.4),
        alpha_step=0.2,
        beta_range=(1.0, 1.1),
        beta_step=0.1,
    )


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
def test_two_workers_share_a_grid(storage):
    study = f"two-{uuid.uuid4().hex[:8]}"
    procs = [worker(storage, study, "--images", "64", *GRID) for _ in range(2)]
    outs = [finish(p) for p in procs]
    assert_each_point_trained_once(storage, study, grid_config(64))
    frame = trials_frame(load_study(study, storage))
    workers = set(load_study(study, storage).trials_dataframe()["user_attrs_worker"].dropna())
    assert len(workers) == 2, workers  # both did work
    assert len(frame) == len(S.queued_points(grid_config(64)))  # no point queued twice
    if "@" in storage:
        password = storage.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert all(password not in o for o in outs)


def test_workers_option_runs_processes_on_one_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    out = finish(worker(url, "local", "--images", "64", "--workers", "2", *GRID))
    assert "[worker 0]" in out or "[worker 1]" in out
    assert_each_point_trained_once(url, "local", grid_config(64))


def test_sweep_workers_option_runs_two_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'sw.db'}"
    cmd = [sys.executable, "-m", "scaler", "sweep", "width-by-baseline", "--widths", "1,1.4,1.8"]
    cmd += ["--baselines", "1:1,2:1", "--storage", url, "--study", "sw", "--workers", "2"]
    cmd += [*PROXY, "--images", "128"]  # runs longer than a worker takes to start: both train
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    trials = load_study("sw", url).get_trials()
    assert sorted(t.user_attrs["status"] for t in trials) == ["trained"] * 6
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # two processes shared it
    assert "[worker 0]" in run.stderr and "[worker 1]" in run.stderr


@needs_pg
def test_postgres_password_kept_off_the_command_line(tmp_path):
    password = PG.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    bare = PG.replace(f":{password}@", "@")  # postgresql://scaler@host:port/db
    cases = [  # (--storage, extra environment)
        (bare, {"PGPASSWORD": password}),
        (None, {"SCALER_STORAGE": PG}),
        (f"{bare}?password={password}", {}),
    ]
    for url, env in cases:
        cmd = [sys.executable, "-m", "scaler", "studies", "--json"]
        cmd += ["--storage", url] if url else []
        run = subprocess.run(
            cmd, env={**_env(), **env}, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert run.returncode == 0, run.stderr
        assert password not in run.stdout + run.stderr
        assert all(row["storage"].startswith("postgresql://") for row in json.loads(run.stdout))


# Images per run of the killed-worker test: enough that a run lasts well over the 0.2 s the
# test polls at, so it finds the victim training its second trial.
KILL_IMAGES = 384


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
def test_killed_worker_loses_nothing(storage):
    study = f"kill-{uuid.uuid4().hex[:8]}"
    extra = [
        "--images",
        str(KILL_IMAGES),
        "--alpha-range",
        "1.0:1.2",
        "--alpha-step",
        "0.2",
        "--beta-range",
        "1.1:1.1",
    ]
    victim = worker(storage, study, *extra)
    # Wait until the victim has finished one trial and is training another.
    deadline = time.monotonic() + 300
    finished_before: dict[int, float] = {}
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            st = load_study(study, storage)
        except ValueError:
            continue
        trials = st.get_trials()
        done = {t.number: t.value for t in trials if t.state.name == "COMPLETE"}
        training = [
            t for t in trials if t.state.name == "RUNNING" and "network_key" in t.user_attrs
        ]
        if done and training:
            finished_before = done
            break
    assert finished_before, "the victim never got to a second trial"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    finish(worker(storage, study, *extra))  # the next run retries the stale trial
    frame = trials_frame(load_study(study, storage))
    for number, value in finished_before.items():  # finished trials are never lost
        assert frame.set_index("number").loc[number, "value"] == value
    lost = frame[frame["state"] == "FAIL"]
    assert len(lost) == 1 and lost.iloc[0]["status"] == "stale"
    # The record says why, and that its point is done now (not "requeued on resume").
    redone = frame[(frame["state"] == "COMPLETE") & (frame["role"] == lost.iloc[0]["role"])]
    assert "sent no heartbeat" in lost.iloc[0]["reason"]
    assert f"trained again as trial {redone.iloc[0]['number']}" in lost.iloc[0]["reason"]
    cfg = S.SearchConfig(
        budget=2.0,
        data=TINY_DATA,
        proxy="quick",
        proxy_overrides=(*TINY_PROXY, ("images", KILL_IMAGES)),
        alpha_range=(1.0, 1.2),
        alpha_step=0.2,
        beta_range=(1.1, 1.1),
    )
    assert_each_point_trained_once(storage, study, cfg)


@needs_pg
def test_no_password_anywhere(tmp_path):
    password = PG.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    study = f"secret-{uuid.uuid4().hex[:8]}"
    out = finish(
        worker(
            PG,
            study,
            "--images",
            "64",
            "--alpha-range",
            "1.2:1.2",
            "--beta-range",
            "1.1:1.1",
            cwd=tmp_path,
        )
    )
    exported = tmp_path / "c.json"
    out += finish(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scaler",
                "export",
                study,
                "--storage",
                PG,
                "--out",
                str(exported),
            ],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    )
    out += finish(
        subprocess.Popen(
            [sys.executable, "-m", "scaler", "studies", "--storage", PG, "--json"],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    )
    st = load_study(study, PG)
    stored = json.dumps([st.user_attrs] + [t.user_attrs for t in st.get_trials()], default=str)
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert study in out and "***" in exported.read_text()
    for text in (out, stored, written):
        assert password not in text
    wrong = PG.replace(password, "wrong-" + password[:3])
    proc = subprocess.run(
        [sys.executable, "-m", "scaler", "studies", "--storage", wrong],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "wrong-" not in proc.stderr + proc.stdout and password not in proc.stderr


def _search_with_a_killed_worker(tmp_path, kill: str, *extra: str):
    """``scaler search --workers 2`` on the base and one point, where worker ``kill`` kills
    itself with SIGKILL as its first trial starts ("0,1": both); (run, study frame)."""
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    cmd = [sys.executable, "-m", "scaler", "search", "--storage", url, "--study", "killed"]
    cmd += [*PROXY, "--no-confirm", "--alpha-range", "1.2:1.2", "--beta-range", "1.1:1.1"]
    cmd += ["--workers", "2", *extra]
    env = {**_env(), "SCALER_HEARTBEAT": "1,3", "SCALER_TEST_KILL_WORKER": kill}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return run, trials_frame(load_study("killed", url), ("point",))


def test_a_worker_killed_mid_trial_is_reported_and_its_point_trained_again(tmp_path):
    run, frame = _search_with_a_killed_worker(tmp_path, "1")
    assert run.returncode == 0, run.stderr[-3000:]  # the other worker finished the study
    assert "Traceback" not in run.stderr and "exited with an error" not in run.stderr
    stale = frame[frame["state"] == "FAIL"]
    assert len(stale) == 1, frame[["number", "state", "status", "reason"]]
    row = stale.iloc[0]
    redone = frame[(frame["state"] == "COMPLETE") & (frame["point"] == row["point"])]
    again = int(redone["number"].min())
    # The record on the trial itself: status stale, which worker, why, and who trained it again.
    trial = load_study("killed", f"sqlite:///{tmp_path / 'killed.db'}").trials[row["number"]]
    assert trial.user_attrs["status"] == "stale"
    assert trial.user_attrs["reason"].startswith("worker 1 (")
    assert "sent no heartbeat for over 3 s (the process died?)" in trial.user_attrs["reason"]
    assert row["status"] == "stale" and f"trained again as trial {again}" in row["reason"]
    line = f"worker 1 was killed by SIGKILL during trial #{row['number']}; trial #{again} "
    notes = [x for x in run.stderr.splitlines() if x.startswith("Note: worker 1")]
    assert notes == [f"Note: {line}trained its point again"], run.stderr[-3000:]


def test_workers_that_all_die_leave_work_undone_with_exit_code_3(tmp_path):
    run, frame = _search_with_a_killed_worker(tmp_path, "0,1")
    assert run.returncode == 3, run.stderr[-3000:]
    lines = [x for x in run.stderr.splitlines() if x.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "worker 0 was killed by SIGKILL during trial #" in lines[0]
    assert "work is left undone: run the same command again" in lines[0]
