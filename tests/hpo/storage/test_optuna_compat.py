"""hpo.storage.optuna_compat against the installed optuna: a new optuna that changes what hpo
relies on fails here, loudly, instead of giving wrong answers at run time."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy
from helpers.stored_studies import build_study, set_schema_revision

from hpo.errors import HpoError
from hpo.storage import optuna_compat

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
