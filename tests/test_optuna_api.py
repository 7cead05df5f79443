"""scaler/optuna_api.py: the optuna versions it was read against, and each function at work."""

from __future__ import annotations

import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from scaler import optuna_api as A
from scaler.studies import open_storage, warnings_silenced


def test_optuna_is_a_version_the_adapter_was_checked_against():
    assert optuna.__version__.startswith(A.KNOWN_OPTUNA), (
        f"optuna {optuna.__version__} is a major version scaler/optuna_api.py was not checked "
        f"against ({', '.join(A.KNOWN_OPTUNA)}): read each private attribute it names against "
        "the new optuna, run tests/test_optuna_api.py and tests/test_runner.py, then add it to "
        "KNOWN_OPTUNA"
    )


@pytest.fixture(params=["memory", "sqlite"])
def study(request, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALER_HEARTBEAT", "1,2")  # stale after 2 s without a heartbeat
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if request.param == "memory":
        return optuna.create_study(direction="maximize")
    return optuna.create_study(
        storage=open_storage(f"sqlite:///{tmp_path / 'a.db'}"), direction="maximize"
    )


def _ask(study):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Heartbeat of storage is supposed to be used with ..."
        return study.ask()


def test_storage_of_and_trial_id_address_the_stored_trial(study):
    study.enqueue_trial({}, user_attrs={"point": "p"})
    frozen = study.get_trials(deepcopy=False)[0]
    storage = A.storage_of(study)
    assert storage.get_trial(A.trial_id(frozen)).user_attrs == {"point": "p"}
    assert storage.get_trial(A.trial_id(frozen)).number == frozen.number
    assert A.trial_id(_ask(study)) == A.trial_id(frozen)  # ask took the waiting trial


def test_claim_takes_a_waiting_trial_once(study):
    study.enqueue_trial({}, user_attrs={"point": "p"})
    (waiting,) = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    trial = A.claim(study, waiting)
    assert isinstance(trial, optuna.Trial) and trial.number == waiting.number
    assert trial.user_attrs == {"point": "p"}
    assert study.get_trials(deepcopy=False)[0].state == TrialState.RUNNING
    assert A.claim(study, waiting) is None  # already taken: a second claimer loses


def test_claim_and_beat_send_heartbeats_where_the_storage_keeps_them(study, request):
    study.enqueue_trial({})
    claimed = A.claim(study, study.get_trials(deepcopy=False)[0])
    beaten = _ask(study)
    A.beat(study, beaten)  # on a storage without heartbeats: nothing, never an error
    silent = _ask(study)  # optuna never fails a trial that sent no heartbeat at all
    assert A.has_heartbeat(study) == (request.node.callspec.params["study"] == "sqlite")
    time.sleep(3)  # past the grace period
    with warnings_silenced():
        optuna.storages.fail_stale_trials(study)
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    stale = TrialState.FAIL if A.has_heartbeat(study) else TrialState.RUNNING
    assert states == {
        claimed.number: stale,
        beaten.number: stale,
        silent.number: TrialState.RUNNING,
    }
