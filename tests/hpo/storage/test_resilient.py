"""hpo.storage.resilient: storage calls that outlive a database restart, and a WAITING trial
that only one worker can claim.

The restarts are real: `pg_ctlcluster 15 main restart` and `pg_terminate_backend` on the test
server (helpers/postgres.py leaves it running whatever happens).
"""

from __future__ import annotations

import multiprocessing
import threading

import optuna
import pytest
from helpers.postgres import drop_connections, restart_postgres
from optuna.trial import TrialState

from hpo.storage.rdb import open_storage
from hpo.storage.resilient import StorageUnavailable, call_with_retry, is_connection_error

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --- claiming a WAITING trial -------------------------------------------------------------------

ROUNDS = 30
CLAIMANTS = 4


def _claimant(url: str, trial_ids: list[int], barrier, results) -> None:
    try:
        storage = open_storage(url)
        for trial_id in trial_ids:
            barrier.wait()
            results.put((trial_id, storage.set_trial_state_values(trial_id, TrialState.RUNNING)))
    except BaseException as error:  # the test fails with it, instead of its peers waiting
        barrier.abort()
        results.put(("error", repr(error)))
        raise


def test_processes_racing_for_one_waiting_trial_never_both_claim_it(tmp_path):
    # What two workers' study.ask() do at the same instant on SQLite: both pop the same WAITING
    # trial. optuna reads the state then writes it, and SQLite ignores its row lock, so before
    # the compare-and-set both could win (and the slower worker died telling the trial).
    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = optuna.create_study(storage=open_storage(url), study_name="race")
    for _ in range(ROUNDS):
        study.enqueue_trial({})
    trial_ids = [t._trial_id for t in study.get_trials()]
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(CLAIMANTS), context.Queue()
    processes = [
        context.Process(target=_claimant, args=(url, trial_ids, barrier, results))
        for _ in range(CLAIMANTS)
    ]
    for process in processes:
        process.start()
    claims = [results.get(timeout=300) for _ in range(ROUNDS * CLAIMANTS)]
    assert not [claim for claim in claims if claim[0] == "error"], claims
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    winners = {trial_id: 0 for trial_id in trial_ids}
    for trial_id, won in claims:
        winners[trial_id] += bool(won)
    assert list(winners.values()) == [1] * ROUNDS, winners
    assert {t.state for t in study.get_trials()} == {TrialState.RUNNING}
    assert all(t.datetime_start is not None for t in study.get_trials())


def test_a_claimed_trial_cannot_be_claimed_again(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'claim.db'}")
    study = optuna.create_study(storage=storage, study_name="claim")
    study.enqueue_trial({})
    trial = study.ask()  # pops the queued trial through the compare-and-set
    assert trial.number == 0 and study.get_trials()[0].state == TrialState.RUNNING
    assert not storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING)
    study.tell(trial, 1.0)
    assert study.get_trials()[0].state == TrialState.COMPLETE


# --- retries ------------------------------------------------------------------------------------


def test_every_storage_method_that_reaches_the_database_is_retried():
    from hpo.storage.resilient import RETRIED_METHODS, ResilientRDBStorage

    # What an optuna release adds to its storage API must be added to the list.
    public = {name for name in dir(optuna.storages.BaseStorage) if not name.startswith("_")}
    no_database = {"remove_session", "check_trial_is_updatable"}
    own = {"set_trial_state_values"}  # retried inside ResilientRDBStorage's own method
    assert public - no_database - own <= set(RETRIED_METHODS)
    assert "record_heartbeat" in RETRIED_METHODS  # the heartbeat API, beside BaseStorage
    for name in RETRIED_METHODS:
        assert getattr(ResilientRDBStorage, name) is not getattr(optuna.storages.RDBStorage, name)


def test_a_statement_error_is_not_retried(tmp_path):
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    calls = []

    def broken():
        calls.append(1)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT * FROM missing_table"))

    with pytest.raises(sqlalchemy.exc.OperationalError) as raised:
        call_with_retry(broken)
    assert not is_connection_error(raised.value)
    assert calls == [1]


@pytest.mark.slow
def test_storage_calls_wait_out_a_postgresql_restart_and_dropped_connections(pg_url):
    storage = open_storage(pg_url, workers=2)
    study = optuna.create_study(storage=storage, study_name="outage")
    trial = study.ask()
    done = threading.Event()
    errors: list[BaseException] = []
    written: list[int] = []

    def keep_writing() -> None:
        step = 0
        while not done.is_set():
            try:
                trial.report(float(step), step)
                storage.record_heartbeat(trial._trial_id)
                written.append(step)
            except BaseException as error:  # any error is what this test is about
                errors.append(error)
                return
            step += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        drop_connections(pg_url)
        restart_postgres()
        drop_connections(pg_url)
        before = len(written)
        while len(written) < before + 5 and not errors and writer.is_alive():
            done.wait(0.1)
    finally:
        done.set()
        writer.join(timeout=300)
    assert not errors, repr(errors[0])
    study.tell(trial, 1.0)  # the pool's connections are all from before the restart
    frozen = study.get_trials()[0]
    assert frozen.state == TrialState.COMPLETE
    assert sorted(frozen.intermediate_values) == written


@pytest.mark.slow
def test_a_storage_gone_longer_than_the_limit_raises_a_clear_error(pg_url, monkeypatch):
    monkeypatch.setenv("HPO_STORAGE_OUTAGE_S", "1")
    url = pg_url.replace("postgres@", "postgres:s3cret-pw@", 1).replace(":5432", ":1")
    storage_like = optuna.storages.RDBStorage  # any call that needs the server

    with pytest.raises(StorageUnavailable) as raised:
        call_with_retry(storage_like, url, url=url)
    message = str(raised.value)
    assert "unreachable for" in message and "127.0.0.1:1" in message
    assert "Connection refused" in message  # what the driver said, not optuna's wrapper
    assert "s3cret-pw" not in message
