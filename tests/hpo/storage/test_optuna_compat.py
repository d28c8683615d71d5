"""hpo.storage.optuna_compat against the installed optuna: a new optuna that changes what hpo
relies on fails here, loudly, instead of giving wrong answers at run time."""

from __future__ import annotations

import datetime
import time

import optuna
import pytest
import sqlalchemy
from helpers.stored_studies import build_study, set_schema_revision
from optuna.trial import TrialState

from hpo.errors import HpoError
from hpo.storage import optuna_compat
from hpo.storage.rdb import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

# --- Optuna's schema --------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path):
    """A SQLite storage created by the installed optuna, holding one study."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    build_study(url)
    return url


def check(url: str) -> None:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            optuna_compat.check_schema_revision(connection, "the test storage")
    finally:
        engine.dispose()


def test_the_readable_revision_is_the_installed_optunas_head(sqlite_url):
    storage = optuna.storages.RDBStorage(sqlite_url)
    assert optuna_compat.SCHEMA_HEAD_REVISION == storage.get_head_version()
    assert storage.get_current_version() == storage.get_head_version()
    # walk_revisions order: newest first.
    assert optuna_compat.OPTUNA_SCHEMA_REVISIONS == tuple(reversed(storage.get_all_versions()))
    assert set(optuna_compat.READABLE_SCHEMA_REVISIONS) <= set(
        optuna_compat.OPTUNA_SCHEMA_REVISIONS
    )


def test_every_table_and_column_the_reader_names_exists(sqlite_url):
    engine = sqlalchemy.create_engine(sqlite_url)
    try:
        schema = sqlalchemy.inspect(engine)
        for table, columns in optuna_compat.SCHEMA_COLUMNS_READ.items():
            present = {column["name"] for column in schema.get_columns(table)}
            assert set(columns) <= present, (table, set(columns) - present)
    finally:
        engine.dispose()


def test_a_storage_created_by_optuna_passes_the_check(sqlite_url):
    check(sqlite_url)


def test_a_newer_revision_fails_with_found_expected_and_what_to_do(sqlite_url):
    set_schema_revision(sqlite_url, "v9.9.9.z")
    with pytest.raises(HpoError) as caught:
        check(sqlite_url)
    message = str(caught.value)
    assert "the test storage is at optuna schema revision 'v9.9.9.z'" in message
    assert repr(optuna_compat.SCHEMA_HEAD_REVISION) in message
    assert "upgrade hpo" in message


def test_an_older_revision_fails_and_names_optuna_storage_upgrade(sqlite_url):
    set_schema_revision(sqlite_url, "v2.6.0.a")
    with pytest.raises(HpoError) as caught:
        check(sqlite_url)
    message = str(caught.value)
    assert "'v2.6.0.a'" in message and repr(optuna_compat.SCHEMA_HEAD_REVISION) in message
    assert "optuna storage upgrade --storage" in message


# --- private Python API -----------------------------------------------------------------------


@pytest.fixture
def rdb_study(tmp_path) -> optuna.Study:
    """A study in a real SQLite file, loaded the way the workers load it (through the URL's
    RDBStorage, which optuna wraps in its cache)."""
    url = f"sqlite:///{tmp_path / 'optuna_compat.db'}"
    optuna.create_study(study_name="compat", storage=open_storage(url))
    optuna.create_study(study_name="other", storage=url)  # a second study: ids must not mix
    return optuna.load_study(study_name="compat", storage=url)


def test_storage_of_is_the_storage_the_study_writes_through(rdb_study):
    storage = optuna_compat.storage_of(rdb_study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert storage.get_study_id_from_name("compat") == optuna_compat.study_id_of(rdb_study)


def test_study_id_of_is_the_id_its_storage_knows_it_by(rdb_study):
    storage = optuna_compat.storage_of(rdb_study)
    study_id = optuna_compat.study_id_of(rdb_study)
    assert isinstance(study_id, int)
    assert storage.get_study_name_from_id(study_id) == "compat"


def test_trial_id_of_a_trial_and_of_its_frozen_copy(rdb_study):
    trial = rdb_study.ask()
    trial_id = optuna_compat.trial_id_of(trial)
    storage = optuna_compat.storage_of(rdb_study)
    assert storage.get_trial_number_from_id(trial_id) == trial.number
    frozen = rdb_study.get_trials()[trial.number]
    assert optuna_compat.trial_id_of(frozen) == trial_id


def test_frozen_trial_of_is_what_ask_read_including_system_attrs(rdb_study):
    rdb_study.enqueue_trial({"x": 0.5})  # the WAITING trial carries system attrs, as a retry does
    trial = rdb_study.ask()
    frozen = optuna_compat.frozen_trial_of(trial)
    assert isinstance(frozen, optuna.trial.FrozenTrial)
    assert frozen.number == trial.number
    assert frozen.system_attrs["fixed_params"] == {"x": 0.5}
    trial.report(1.5, 4)  # the Trial keeps its copy up to date with its own writes
    assert optuna_compat.frozen_trial_of(trial).intermediate_values == {4: 1.5}


def test_rdb_engine_of_reaches_the_engine_behind_optuna_s_cache(rdb_study):
    engine = optuna_compat.rdb_engine_of(rdb_study)
    assert engine is not None
    with engine.connect() as connection:
        count = connection.exec_driver_sql(
            "SELECT COUNT(*) FROM studies WHERE study_id = ?",
            (optuna_compat.study_id_of(rdb_study),),
        ).scalar()
    assert count == 1


def test_rdb_engine_of_an_in_memory_study_is_none():
    assert optuna_compat.rdb_engine_of(optuna.create_study()) is None


def test_stale_trial_ids_lists_running_trials_without_a_recent_heartbeat(tmp_path):
    url = f"sqlite:///{tmp_path / 'stale.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="stale", storage=storage)
    study_id = storage.get_study_id_from_name("stale")
    beating, silent, finished = study.ask(), study.ask(), study.ask()
    study.tell(finished, 1.0)
    storage.record_heartbeat(optuna_compat.trial_id_of(silent))
    assert optuna_compat.stale_trial_ids(storage, study_id) == []
    time.sleep(2.2)  # past the grace period
    storage.record_heartbeat(optuna_compat.trial_id_of(beating))
    assert optuna_compat.stale_trial_ids(storage, study_id) == [optuna_compat.trial_id_of(silent)]
    storage.engine.dispose()


def test_claim_waiting_trial_moves_it_to_running_as_optuna_would_once(tmp_path):
    # Written through plain optuna (no hpo storage), read back through plain optuna.
    url = f"sqlite:///{tmp_path / 'claim.db'}"
    study = optuna.create_study(study_name="claim", storage=url)
    study.enqueue_trial({"x": 0.5})
    (waiting,) = study.get_trials()
    engine = sqlalchemy.create_engine(url)
    try:
        assert optuna_compat.claim_waiting_trial(engine, waiting._trial_id)
        assert not optuna_compat.claim_waiting_trial(engine, waiting._trial_id)
    finally:
        engine.dispose()
    (claimed,) = optuna.load_study(study_name="claim", storage=url).get_trials()
    assert claimed.state == TrialState.RUNNING
    # optuna stores naive UTC and shows local time: the start is now, in local time.
    assert abs((claimed.datetime_start - datetime.datetime.now()).total_seconds()) < 120
    assert claimed.system_attrs["fixed_params"] == {"x": 0.5}


def test_the_private_storage_calls_of_optuna_s_cache_are_the_ones_hpo_retries():
    import inspect
    import re

    from optuna.storages import _cached_storage

    source = inspect.getsource(_cached_storage)
    called = set(re.findall(r"self\._backend\.(_[a-z_]+)\(", source))
    assert called == set(optuna_compat.CACHED_STORAGE_BACKEND_CALLS)
    for name in called:
        assert callable(getattr(optuna.storages.RDBStorage, name))


def test_a_renamed_private_attribute_says_which_and_where_to_fix_it():
    with pytest.raises(
        optuna_compat.OptunaChanged, match=r"object\._study_id is gone.*optuna_compat"
    ):
        optuna_compat.study_id_of(object())


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_the_retry_mark_hpo_reads_is_optuna_s_public_one(rdb_study):
    # The worker tells a retry by RetryHeartbeatStaleTrialCallback.retried_trial_number on the
    # frozen trial; hpo.storage.rdb's retry callback must produce what that function reads.
    from hpo.storage.rdb import RetryStaleTrial

    first = rdb_study.ask()
    first.suggest_float("x", 0, 1)
    rdb_study.tell(first, state=TrialState.FAIL)
    RetryStaleTrial()(rdb_study, rdb_study.get_trials()[first.number])
    retry = rdb_study.ask()
    number = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(
        optuna_compat.frozen_trial_of(retry)
    )
    assert number == first.number


def test_clear_user_attr_sets_a_finished_trials_attr_to_none(rdb_study, tmp_path):
    trial = rdb_study.ask()
    trial.set_user_attr("last_checkpoint", "/runs/trial-0000/checkpoint-8")
    trial.set_user_attr("output_dir", "/runs/trial-0000")
    rdb_study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # why this function exists
        rdb_study._storage.set_trial_user_attr(trial._trial_id, "last_checkpoint", None)
    trial_id = optuna_compat.trial_id_of(trial)
    assert optuna_compat.clear_user_attr(rdb_study, trial_id, "last_checkpoint")
    url = f"sqlite:///{tmp_path / 'optuna_compat.db'}"
    (reread,) = optuna.load_study(study_name="compat", storage=url).get_trials()
    assert reread.user_attrs == {"last_checkpoint": None, "output_dir": "/runs/trial-0000"}
    assert reread.state == TrialState.COMPLETE


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_set_user_attrs_writes_them_all_in_one_commit(kind, tmp_path, request):
    # A worker records a trial's output folder, worker and devices (and a save's checkpoint
    # paths) together: one transaction instead of one per attr, read back by optuna as usual.
    url = (
        f"sqlite:///{tmp_path / 'attrs.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    storage = open_storage(url)
    study = optuna.create_study(study_name="attrs", storage=storage)
    trial = study.ask()
    commits, statements = [], []
    sqlalchemy.event.listen(storage.engine, "commit", lambda connection: commits.append(1))
    sqlalchemy.event.listen(
        storage.engine, "before_cursor_execute", lambda *args: statements.append(args[2])
    )
    attrs = {"output_dir": "/runs/trial-0000", "worker": "host:1", "devices": "cpu"}
    optuna_compat.set_user_attrs(trial, attrs)
    assert len(commits) == 1
    # One read of the trial (a finished one is refused) and one upsert for all three attrs.
    assert len(statements) == 2, statements
    assert trial.user_attrs == attrs  # the Trial's own copy, as set_user_attr keeps it
    stored = optuna.load_study(study_name="attrs", storage=url).trials[0]
    assert stored.user_attrs == attrs
    # Written again: existing keys are updated, new ones added, the others left alone.
    optuna_compat.set_user_attrs(trial, {"devices": "0", "progress": {"step": 4}})
    stored = optuna.load_study(study_name="attrs", storage=url).trials[0]
    assert stored.user_attrs == {**attrs, "devices": "0", "progress": {"step": 4}}
    storage.engine.dispose()


def test_set_user_attrs_refuses_a_finished_trial_like_set_user_attr(rdb_study):
    trial = rdb_study.ask()
    rdb_study.tell(trial, 1.0)
    with pytest.raises(RuntimeError):  # optuna's UpdateFinishedTrialError
        optuna_compat.set_user_attrs(trial, {"late": 1})


def test_set_user_attrs_falls_back_to_one_write_each_on_other_storages():
    study = optuna.create_study()  # in memory: not hpo's storage
    trial = study.ask()
    optuna_compat.set_user_attrs(trial, {"a": 1, "b": [2]})
    assert study.trials[0].user_attrs == {"a": 1, "b": [2]}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_best_finished_value_is_optuna_s_best_value_in_one_query(
    kind, direction, tmp_path, request
):
    url = (
        f"sqlite:///{tmp_path / 'best.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    storage = open_storage(url)
    study = optuna.create_study(study_name="best", storage=storage, direction=direction)
    assert optuna_compat.best_finished_value(study, direction) is None  # nothing finished
    for value in (2.5, 0.5, 1.5):
        study.tell(study.ask(), value)
    study.tell(study.ask(), state=TrialState.PRUNED)  # not COMPLETE: never the best
    study.ask()  # RUNNING
    statements = []
    sqlalchemy.event.listen(
        storage.engine, "before_cursor_execute", lambda *args: statements.append(args[2])
    )
    assert optuna_compat.best_finished_value(study, direction) == study.best_value
    assert study.best_value == (0.5 if direction == "minimize" else 2.5)
    assert len(statements) > 2  # optuna's best_value: the best trial, read whole
    statements.clear()
    optuna_compat.best_finished_value(study, direction)
    assert len(statements) == 1
    storage.engine.dispose()


def test_best_finished_value_of_an_in_memory_study_is_optuna_s():
    study = optuna.create_study(direction="maximize")
    assert optuna_compat.best_finished_value(study, "maximize") is None
    study.tell(study.ask(), 3.0)
    assert optuna_compat.best_finished_value(study, "maximize") == 3.0
