"""hpo.storage.rdb: opening storages for many workers, and sweeping the trials of dead workers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from helpers.stored_studies import SECRET, with_password
from optuna.trial import TrialState

from hpo.attrs import FAIL_REASON_ATTR
from hpo.errors import HpoError
from hpo.storage.rdb import open_storage, sweep_stale_trials

REPO = Path(__file__).resolve().parents[3]
optuna.logging.set_verbosity(optuna.logging.WARNING)


# --- opening -------------------------------------------------------------------------------


def test_open_storage_creates_the_sqlite_folder_with_wal_and_a_long_busy_timeout(tmp_path):
    path = tmp_path / "deep" / "er" / "study.db"
    storage = open_storage(f"sqlite:///{path}")
    assert path.is_file()
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        # The driver's default is 5000 ms; workers need to wait longer for the write lock.
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 30_000
    assert storage.get_heartbeat_interval() == 10


WRITER = textwrap.dedent(
    """
    import sys, optuna
    from hpo.storage.rdb import open_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="shared", storage=open_storage(sys.argv[1], workers=3))
    def objective(trial):
        x = trial.suggest_float("x", -1, 1)
        for step in range(3):
            trial.report(x * step, step)
        return x * x
    study.optimize(objective, n_trials=int(sys.argv[2]))
    """
)


def test_several_processes_write_one_sqlite_file_without_lock_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="shared", storage=open_storage(url))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, "10"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    trials = optuna.load_study(study_name="shared", storage=url).trials
    assert len(trials) == 30
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(30))


def test_postgres_pool_is_sized_to_the_workers_and_survives_dropped_connections(pg_url):
    storage = open_storage(with_password(pg_url), workers=4)
    assert storage.engine.pool.size() >= 4
    optuna.create_study(study_name="pg", storage=storage)
    # The server drops every connection of this database (a restart, an idle timeout):
    # pre-ping replaces the pooled one instead of failing the next call.
    admin = sqlalchemy.create_engine(
        sqlalchemy.engine.make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    database = sqlalchemy.engine.make_url(pg_url).database
    with admin.connect() as conn:
        killed = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ).scalar()
    admin.dispose()
    assert killed >= 1
    assert storage.get_study_id_from_name("pg") >= 0
    storage.engine.dispose()


def test_open_storage_error_names_the_storage_without_its_password():
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere"
    with pytest.raises(HpoError) as caught:
        open_storage(url)
    message = str(caught.value)
    assert SECRET not in message
    assert "postgresql://postgres:***@127.0.0.1:1/nowhere" in message


# --- stale trials ----------------------------------------------------------------------------

DOOMED_WORKER = textwrap.dedent(
    """
    import os, sys, time, optuna
    from hpo.storage.rdb import open_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, ready = sys.argv[1], sys.argv[2]
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="doomed", storage=storage)
    def objective(trial):
        trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        trial.suggest_categorical("per_device_train_batch_size", [8, 16, 32])
        trial.set_user_attr("output_dir", f"runs/doomed/trial-{trial.number}")
        for step in (50, 100, 150):
            trial.report(1.0 / step, step)
        with open(ready + ".tmp", "w") as f:  # renamed into place: never seen half-written
            f.write(str(trial.number))
        os.replace(ready + ".tmp", ready)
        time.sleep(600)  # killed here
    study.optimize(objective, n_trials=1)
    """
)


def _kill_a_worker_mid_trial(url: str, tmp_path: Path) -> int:
    ready = tmp_path / "ready"
    worker = subprocess.Popen(
        [sys.executable, "-c", DOOMED_WORKER, url, str(ready)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            pytest.fail(f"the worker never started its trial: {worker.communicate()[1]}")
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.communicate()
    return int(ready.read_text())


def _sweep_until_failed(storage, name: str) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        swept = sweep_stale_trials(storage, name)
        if swept:
            return swept
        time.sleep(0.5)
    pytest.fail("the killed worker's trial never went stale")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return with_password(request.getfixturevalue("pg_url"))


def test_a_killed_workers_trial_is_failed_and_queued_again_with_its_steps(any_url, tmp_path):
    storage = open_storage(any_url, heartbeat_interval=1, grace_period=2)
    optuna.create_study(study_name="doomed", storage=storage)
    number = _kill_a_worker_mid_trial(any_url, tmp_path)

    study = optuna.load_study(study_name="doomed", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.RUNNING]  # optuna has not noticed

    assert _sweep_until_failed(storage, "doomed") == [number]
    dead, retry = optuna.load_study(study_name="doomed", storage=storage).trials
    assert dead.state == TrialState.FAIL
    assert "heartbeat" in dead.user_attrs[FAIL_REASON_ATTR]
    assert retry.state == TrialState.WAITING
    assert retry.params == dead.params
    assert retry.intermediate_values == {50: 1 / 50, 100: 1 / 100, 150: 1 / 150}
    assert retry.user_attrs == {"output_dir": f"runs/doomed/trial-{number}"}
    assert retry.system_attrs["failed_trial"] == number
    # A second sweep (another process, a later tick) finds nothing more to do.
    assert sweep_stale_trials(storage, "doomed") == []
    assert len(optuna.load_study(study_name="doomed", storage=storage).trials) == 2
    storage.engine.dispose()


def test_the_next_worker_runs_the_retry_with_the_same_params_and_earlier_steps(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    optuna.create_study(study_name="doomed", storage=storage)
    _kill_a_worker_mid_trial(url, tmp_path)
    _sweep_until_failed(storage, "doomed")

    seen = {}

    def resume(trial: optuna.Trial) -> float:
        seen["lr"] = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        seen["output_dir"] = trial.user_attrs.get("output_dir")
        trial.report(1.0 / 200, 200)
        return 0.005

    study = optuna.load_study(study_name="doomed", storage=storage)
    study.optimize(resume, n_trials=1)
    dead, retried = study.trials
    assert retried.state == TrialState.COMPLETE
    assert seen["lr"] == dead.params["learning_rate"]
    assert seen["output_dir"] == dead.user_attrs["output_dir"]
    assert sorted(retried.intermediate_values) == [50, 100, 150, 200]


def test_sweep_is_a_no_op_without_heartbeats(tmp_path):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = optuna.storages.RDBStorage(url)
    study = optuna.create_study(study_name="plain", storage=plain)
    study.ask()
    assert sweep_stale_trials(plain, "plain") == []
    assert study.trials[0].state == TrialState.RUNNING


def test_sqlite_busy_timeout_is_in_the_connection(tmp_path):
    # The same check as SQLite does it: a second writer waits instead of failing at once.
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    storage = open_storage(url)
    optuna.create_study(study_name="locked", storage=storage)
    blocker = sqlite3.connect(
        tmp_path / "locked.db", timeout=0, isolation_level=None, check_same_thread=False
    )
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, lambda: blocker.execute("COMMIT")).start()
    study = optuna.load_study(study_name="locked", storage=storage)
    study.enqueue_trial({"x": 1.0})  # needs the write lock the blocker holds for 0.5 s
    assert len(study.trials) == 1
    blocker.close()


def test_a_bare_postgresql_url_uses_the_installed_driver(pg_url):
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3; users write the bare form.
    bare = sqlalchemy.engine.make_url(pg_url).set(drivername="postgresql")
    storage = open_storage(bare.render_as_string(hide_password=False))
    optuna.create_study(study_name="bare", storage=storage)
    assert storage.get_study_id_from_name("bare") >= 0
    storage.engine.dispose()


def test_retries_stop_at_max_retry_and_drop_the_dead_trials_fail_reason(tmp_path):
    from hpo.storage.rdb import RetryStaleTrial

    study = optuna.create_study(study_name="r", storage=f"sqlite:///{tmp_path / 'r.db'}")
    study.add_trial(
        optuna.create_trial(
            state=TrialState.FAIL,
            params={"x": 0.5},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
            user_attrs={"output_dir": "runs/r/trial-0", FAIL_REASON_ATTR: "heartbeat lost"},
            intermediate_values={10: 0.9},
        )
    )
    retry = RetryStaleTrial(max_retry=1)
    retry(study, study.trials[0])
    first_retry = study.trials[1]
    assert first_retry.state == TrialState.WAITING
    assert first_retry.user_attrs == {"output_dir": "runs/r/trial-0"}
    assert first_retry.intermediate_values == {10: 0.9}
    # The retry died too: with max_retry=1 it is not queued a second time.
    retry(study, first_retry)
    assert len(study.trials) == 2


# --- opening one fresh database from many openers at once -----------------------------------

OPENERS = 4


def test_openers_of_one_fresh_database_together_all_succeed(tmp_path):
    # Optuna creates its schema check-then-create. A barrier in front of the first CREATE TABLE
    # holds every opener until all of them have checked and found no tables, so all of them
    # collide every time (not only when the scheduler happens to interleave them): without
    # the retry in open_storage, every opener but one fails with "table ... already exists".
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    checked = threading.Barrier(OPENERS, timeout=120)
    waited = threading.local()

    def hold_the_first_create(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("CREATE TABLE") and not getattr(
            waited, "done", False
        ):
            waited.done = True  # a retry's CREATE (if any) runs unheld
            checked.wait()

    errors: list[BaseException] = []

    def open_one():
        try:
            open_storage(url).engine.dispose()
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            checked.abort()  # the others must not wait for an opener that failed early

    sqlalchemy.event.listen(
        sqlalchemy.engine.Engine, "before_cursor_execute", hold_the_first_create
    )
    try:
        openers = [threading.Thread(target=open_one) for _ in range(OPENERS)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(timeout=300)
    finally:
        sqlalchemy.event.remove(
            sqlalchemy.engine.Engine, "before_cursor_execute", hold_the_first_create
        )
    assert not [opener for opener in openers if opener.is_alive()]
    assert not errors, errors[0]
    study = optuna.create_study(study_name="fresh", storage=url)
    assert study.trials == []
