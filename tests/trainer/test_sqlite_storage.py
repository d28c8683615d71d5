"""trainer.sqlite_storage: the SQLite opener that `hyperparameter_search` and hpo's storages
share, on real SQLite files."""

from __future__ import annotations

import pytest


def test_losing_the_race_to_create_a_fresh_studys_schema_is_recognised(tmp_path):
    # Two processes opening one fresh SQLite file: optuna creates its schema check-then-create,
    # and the loser fails on the duplicate alembic_version row (or "table already exists").
    # Those failures are retried by open_storage; any other error is not.
    import sqlalchemy

    from trainer.search_study import open_storage
    from trainer.sqlite_storage import lost_create_race

    url = f"sqlite:///{tmp_path / 'race.db'}"
    open_storage(url)  # the winner made the schema
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        with pytest.raises(sqlalchemy.exc.IntegrityError) as duplicate:
            connection.exec_driver_sql(
                "INSERT INTO alembic_version (version_num) VALUES (?)", (version,)
            )
        with pytest.raises(sqlalchemy.exc.OperationalError) as exists:
            connection.exec_driver_sql("CREATE TABLE studies (x INTEGER)")
        with pytest.raises(sqlalchemy.exc.OperationalError) as other:
            connection.exec_driver_sql("SELECT * FROM no_such_table")
    engine.dispose()
    assert lost_create_race(duplicate.value)
    assert lost_create_race(exists.value)
    assert not lost_create_race(other.value)


def test_prepare_sqlite_file_makes_the_folder_and_turns_on_wal(tmp_path):
    import sqlite3

    from trainer.sqlite_storage import prepare_sqlite_file

    path = tmp_path / "deep" / "er" / "study.db"
    prepare_sqlite_file(path)
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()


def test_only_a_lost_create_race_is_retried(tmp_path):

    import sqlalchemy

    from trainer.sqlite_storage import CREATE_RACE_TRIES, open_retrying_create_race

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'errors.db'}")
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlalchemy.exc.IntegrityError) as race:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlalchemy.exc.OperationalError) as other:
            connection.exec_driver_sql("SELECT * FROM no_such_table")
    engine.dispose()

    calls = []

    def lose_twice_then_open():
        calls.append(1)
        if len(calls) <= 2:
            raise race.value
        return "opened"

    assert open_retrying_create_race(lose_twice_then_open) == "opened"
    assert len(calls) == 3

    calls.clear()

    def always_lose():
        calls.append(1)
        raise race.value

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        open_retrying_create_race(always_lose)
    assert len(calls) == CREATE_RACE_TRIES

    calls.clear()

    def fail_otherwise():
        calls.append(1)
        raise other.value

    with pytest.raises(sqlalchemy.exc.OperationalError):
        open_retrying_create_race(fail_otherwise)
    assert len(calls) == 1
