"""Faults of the test PostgreSQL server: a restart, and every connection to a database dropped.

`restart_postgres` always leaves the server running and accepting connections (other tests,
and other people's, share it), however the restart went.
"""

from __future__ import annotations

import subprocess
import time

import sqlalchemy

CLUSTER = ("15", "main")
READY_TIMEOUT_S = 120.0


def restart_postgres() -> None:
    """`pg_ctlcluster 15 main restart`, then wait until the server accepts connections."""
    try:
        subprocess.run(["pg_ctlcluster", *CLUSTER, "restart"], check=True, timeout=120)
    finally:
        ensure_postgres_running()


def ensure_postgres_running() -> None:
    end = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < end:
        ready = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"])
        if ready.returncode == 0:
            return
        subprocess.run(["pg_ctlcluster", *CLUSTER, "start"], capture_output=True)
        time.sleep(0.5)
    raise AssertionError("PostgreSQL did not come back within 120 s")


def drop_connections(url: str) -> int:
    """Terminate every connection to the database of `url` (pg_terminate_backend), but the
    one asking; returns how many were dropped."""
    database = sqlalchemy.engine.make_url(url).database
    admin = sqlalchemy.create_engine(url.rsplit("/", 1)[0] + "/postgres")
    try:
        with admin.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            ).all()
    finally:
        admin.dispose()
    return len(rows)
