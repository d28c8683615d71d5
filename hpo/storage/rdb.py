"""Opening a study's RDB storage for many workers, and failing the trials of dead workers.

Imports optuna when called, never at import time.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

from hpo.attrs import FAIL_REASON_ATTR
from hpo.errors import HpoError
from hpo.storage.urls import mask_url, scrub_passwords, sqlite_path, with_driver
from trainer.sqlite_storage import (
    open_retrying_create_race,
    prepare_sqlite_file,
    sqlite_engine_kwargs,
)

if TYPE_CHECKING:
    import optuna


def engine_kwargs_for(url: str, workers: int = 1) -> dict[str, Any]:
    """SQLAlchemy engine options for a storage shared by `workers` processes."""
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return sqlite_engine_kwargs()
    if backend in ("postgresql", "mysql"):
        # Each worker runs its trial thread plus optuna's heartbeat thread, and the
        # orchestrator a sweeper: room for all of them, with a little to spare.
        return {
            "pool_pre_ping": True,  # a connection dropped by the server is replaced, not raised
            "pool_size": workers + 2,
            "max_overflow": workers + 2,
        }
    return {}


def open_storage(
    url: str,
    *,
    workers: int = 1,
    heartbeat_interval: int = 10,
    grace_period: int = 30,
    max_retry: int | None = 3,
    wait_for_server: bool = False,
) -> optuna.storages.RDBStorage:
    """The study's RDB storage with heartbeats on and stale trials retried.

    Every call into it outlives a database restart (`hpo.storage.resilient`). Opening it fails
    at once on an unreachable server, unless `wait_for_server` (a worker started while the
    run goes on: the server may be restarting) makes it wait out the outage limit too.

    A trial whose worker stops sending heartbeats for `grace_period` seconds is failed and
    re-queued as a WAITING copy with the same params, user attrs and intermediate values, so
    the orchestrator can resume it from its checkpoint. This is the only place that creates
    a SQLite file or its folder.
    """
    import optuna

    from hpo.storage.resilient import ResilientRDBStorage, call_with_retry

    path = sqlite_path(url)
    if path is not None:
        prepare_sqlite_file(path)
    with warnings.catch_warnings():
        # heartbeat_interval is marked experimental; we rely on it on purpose, and the
        # warning would print once per worker.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryStaleTrial(max_retry=max_retry, inherit_intermediate_values=True)
        try:
            storage = open_retrying_create_race(
                lambda: (call_with_retry if wait_for_server else _call)(
                    ResilientRDBStorage,
                    with_driver(url),
                    engine_kwargs=engine_kwargs_for(url, workers),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=retry,
                    url=url,
                )
            )
        except HpoError:
            raise  # StorageUnavailable: the server stayed away past the outage limit
        except Exception as error:
            reason = scrub_passwords(str(getattr(error, "orig", None) or error), url)
            raise HpoError(f"cannot open storage {mask_url(url)}: {reason.strip()}") from None
    if path is not None:
        _sync_at_checkpoints(storage.engine)
    return storage


def _call(function: Any, *args: Any, url: str, **kwargs: Any) -> Any:
    """`function(*args, **kwargs)`: `call_with_retry`'s signature, tried once."""
    return function(*args, **kwargs)


def _sync_at_checkpoints(engine: Any) -> None:
    """Every connection of `engine` runs with `PRAGMA synchronous=NORMAL`.

    Under WAL, NORMAL fsyncs at WAL checkpoints instead of at every commit; a commit is
    still atomic and the database never corrupts. A power loss (not a crashed process) may
    roll back the last commits, which the heartbeat and retries already handle. A trial
    commits a dozen times, so this is most of SQLite's per-trial write cost.
    """
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # the connections opened while creating the schema get it too


class RetryStaleTrial:
    """Optuna's RetryHeartbeatStaleTrialCallback, minus the failure reason of the dead trial.

    The WAITING copy inherits the user attrs (output_dir, checkpoints) it needs to resume,
    but not the `fail_reason` that belongs to the trial that died.
    """

    def __init__(self, max_retry: int | None = 3, inherit_intermediate_values: bool = True):
        import optuna
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        with warnings.catch_warnings():  # experimental by label only; we rely on it on purpose
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry, inherit_intermediate_values=inherit_intermediate_values
            )

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.deepcopy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != FAIL_REASON_ATTR}
        self._retry(study, trial)


def sweep_stale_trials(storage: optuna.storages.RDBStorage, study_name: str) -> list[int]:
    """Fail the study's RUNNING trials whose heartbeat is stale, and queue their retries.

    Optuna does this only when a worker asks for a new trial; the orchestrator calls this
    periodically so a dead worker's trial is noticed even when no trial starts. Safe to run
    from several processes: a trial is failed (and retried) by exactly one of them.
    Returns the numbers of the trials this call failed.

    Not `optuna.storages.fail_stale_trials`: that one cannot record the `fail_reason` (it fails
    the trial first, and a finished trial's attrs are read-only) and does not return the trials.
    """
    import optuna

    from hpo.storage.optuna_compat import stale_trial_ids
    from hpo.storage.resilient import call_with_retry

    if storage.get_heartbeat_interval() is None:
        return []
    study_id = storage.get_study_id_from_name(study_name)
    reason = (
        f"worker stopped sending heartbeats for over {_grace_of(storage)} s "
        "(killed, out of memory or machine lost)"
    )
    failed = [
        storage.get_trial(trial_id)
        for trial_id in call_with_retry(stale_trial_ids, storage, study_id, url=storage.url)
        if fail_with_reason(storage, trial_id, reason)
    ]
    callback = storage.get_heartbeat_stale_trial_callback()
    if failed and callback is not None:
        study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler()
        )
        for trial in failed:
            callback(study, trial)
    return [trial.number for trial in failed]


def fail_with_reason(storage: optuna.storages.BaseStorage, trial_id: int, reason: str) -> bool:
    """Record why a RUNNING trial failed (`fail_reason`), then mark it FAIL.

    In that order: optuna refuses to change a finished trial's attrs. Returns False when the
    trial had already finished (its worker ended it, or another process failed it first).
    """
    import optuna
    from optuna.trial import TrialState

    try:
        storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)
        return storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def _grace_of(storage: optuna.storages.RDBStorage) -> int:
    interval = storage.get_heartbeat_interval() or 0
    return storage.grace_period if storage.grace_period is not None else 2 * interval
