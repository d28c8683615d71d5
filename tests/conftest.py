"""Shared fixtures: real services (PostgreSQL, a local Ray), started once where they are costly."""

from __future__ import annotations

import os
import uuid

import pytest

# Plain `assert`s in the shared helpers report their values like the tests' own do.
pytest.register_assert_rewrite("helpers")

PG_ADMIN_URL = os.environ.get(
    "HPO_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    name = f"hpo_test_{uuid.uuid4().hex[:12]}"
    # pre-ping: a test may restart the server, which drops the pooled connection.
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError as error:  # pragma: no cover - CI starts postgres
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole test session (it takes ~10 s to start)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        # address="local": never join a cluster that a `ray start` elsewhere left behind.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
