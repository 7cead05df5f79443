"""Everything scaler needs from optuna beyond its public API, in one place.

optuna's public API has no way to claim a waiting trial atomically, to address a trial by its
storage id, or to send a heartbeat by hand; the work queue (:mod:`scaler.runner`) needs all
three. Each function here names the private attribute it uses and why. The versions this was
checked against are :data:`KNOWN_OPTUNA` (tests/test_optuna_api.py fails on any other major
version: read this module against the new optuna, then add it there).
"""

from __future__ import annotations

from typing import Any

# optuna major versions whose private attributes below were read and tested.
KNOWN_OPTUNA = ("4.", "5.")


def storage_of(study) -> Any:
    """The storage behind ``study``.

    Private: ``Study._storage``. optuna hands out no public accessor for a study's storage, and
    heartbeats and atomic claims are storage calls.
    """
    return study._storage


def trial_id(trial) -> int:
    """The storage id of a ``Trial`` or ``FrozenTrial`` (not its number).

    Private: ``Trial._trial_id`` / ``FrozenTrial._trial_id``. Storage calls (state changes,
    heartbeats) and ``optuna.Trial(study, trial_id)`` take the id, never the number.
    """
    return trial._trial_id


def has_heartbeat(study) -> bool:
    """Whether ``study``'s storage keeps heartbeats (an RDB storage opened with an interval)."""
    return hasattr(storage_of(study), "record_heartbeat")


def beat(study, trial) -> None:
    """Record one heartbeat of the running ``trial`` now (nothing on a storage without them).

    optuna sends heartbeats only from ``study.optimize``; a claimed or asked trial needs its
    own, and optuna never fails a RUNNING trial with no heartbeat at all as stale.
    """
    storage = storage_of(study)
    if hasattr(storage, "record_heartbeat"):
        storage.record_heartbeat(trial_id(trial))


def _engine(storage) -> Any | None:
    """The SQLAlchemy engine of an RDB storage, or None (an in-memory storage).

    Private: ``_CachedStorage._backend`` (optuna wraps an RDBStorage in a cache) and
    ``RDBStorage.engine`` (public attribute, undocumented).
    """
    return getattr(getattr(storage, "_backend", storage), "engine", None)


def _take(study, tid: int) -> bool:
    """WAITING → RUNNING for one trial, won by exactly one caller on every database.

    optuna's own transition reads the state, then writes it, under a row lock SQLite ignores:
    two workers on one SQLite file could both take a trial. One conditional UPDATE cannot be
    won twice. Private: ``optuna.storages._rdb.models.TrialModel`` (optuna's trials table).
    """
    import datetime

    from optuna.trial import TrialState

    storage = storage_of(study)
    engine = _engine(storage)
    if engine is None:  # not a database (in memory): one process, no race
        return storage.set_trial_state_values(tid, state=TrialState.RUNNING)
    import sqlalchemy
    from optuna.storages._rdb import models

    trial = models.TrialModel
    take = (
        sqlalchemy.update(trial)
        .where(trial.trial_id == tid, trial.state == TrialState.WAITING)
        .values(state=TrialState.RUNNING, datetime_start=datetime.datetime.now())
    )
    with engine.begin() as connection:
        return connection.execute(take).rowcount == 1


def claim(study, waiting) -> Any | None:
    """The WAITING ``FrozenTrial`` ``waiting`` made RUNNING as an ``optuna.Trial`` of ``study``,
    with its first heartbeat sent; None when another worker took it first.

    ``optuna.Trial(study, trial_id)`` is how optuna itself makes a trial from a stored one
    (``Study.ask`` does the same after its own, non-atomic, claim).
    """
    import optuna

    tid = trial_id(waiting)
    if not _take(study, tid):
        return None
    trial = optuna.Trial(study, tid)
    beat(study, trial)
    return trial


def stale_trials(study) -> list[Any]:
    """The RUNNING trials of ``study`` whose heartbeat is older than the grace period.

    Private: ``BaseHeartbeat._get_stale_trial_ids`` and ``Study._study_id``; optuna's public
    ``fail_stale_trials`` fails them at once, leaving no room to record why first.
    """
    from optuna.trial import TrialState

    storage = storage_of(study)
    if not hasattr(storage, "_get_stale_trial_ids") or not storage.get_heartbeat_interval():
        return []
    ids = set(storage._get_stale_trial_ids(study._study_id))
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if trial_id(t) in ids]


def fail_with(study, trial, attrs: dict[str, Any]) -> bool:
    """RUNNING → FAIL for ``trial`` with user ``attrs`` written in the same transaction; True
    for the one winner. optuna writes no finished trial: failing first would lose the record,
    writing first could mark a trial its live worker then completes. Private: ``TrialModel``
    and ``TrialUserAttributeModel`` (optuna's tables), as in :func:`_take`."""
    import datetime
    import json

    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    engine = _engine(storage_of(study))  # never None: only an RDB storage has heartbeats
    tid, table, attr = trial_id(trial), models.TrialModel, models.TrialUserAttributeModel
    fail = (
        sqlalchemy.update(table)
        .where(table.trial_id == tid, table.state == TrialState.RUNNING)
        .values(state=TrialState.FAIL, datetime_complete=datetime.datetime.now())
    )
    with engine.begin() as connection:
        if connection.execute(fail).rowcount != 1:
            return False
        for key, value in attrs.items():
            mine = (attr.trial_id == tid) & (attr.key == key)
            connection.execute(sqlalchemy.delete(attr).where(mine))
            row = {"trial_id": tid, "key": key, "value_json": json.dumps(value)}
            connection.execute(sqlalchemy.insert(attr).values(**row))
    return True
