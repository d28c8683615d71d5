"""One lock per study, held by a worker while it counts the budget and asks for a trial.

Without it, two workers that look at the budget in the same instant both see the last slot
free, both create a trial, and one has to give its trial back: an empty WAITING trial that
may outlive the run. With it, the count and the ask are one step for every worker of the
study, on this machine or (PostgreSQL) any other:

- SQLite: an exclusive `flock` on a file next to the database (SQLite is one machine's file);
- PostgreSQL: a session advisory lock keyed by the study's name;
- other databases: no lock (the worker's give-back check still keeps the budget exact).

A lock whose holder dies is released with it (the kernel closes the file; the server ends the
session), so a killed worker never blocks the others.
"""

from __future__ import annotations

import contextlib
import importlib.util
import zlib
from collections.abc import Iterator
from typing import Any

from hpo.storage.urls import sqlite_path


def locks_out_other_workers(url: Any) -> bool:
    """Whether `study_lock` on this database (a SQLAlchemy URL) makes the count and the ask
    one step for every worker: PostgreSQL, and SQLite on a POSIX system. Elsewhere it is no
    lock, and the worker checks the budget again after asking (`worker._claim`)."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        return True
    return backend == "sqlite" and importlib.util.find_spec("fcntl") is not None


@contextlib.contextmanager
def study_lock(engine: Any, study_name: str) -> Iterator[None]:
    """Hold the study's lock (see the module docstring) for the `with` block."""
    if not locks_out_other_workers(engine.url):
        yield  # no lock here: the worker re-checks the budget after asking
        return
    url = engine.url.render_as_string(hide_password=False)
    if engine.url.get_backend_name() == "postgresql":
        with _advisory_lock(engine, url, study_name):
            yield
    else:
        with _file_lock(url):
            yield


@contextlib.contextmanager
def _file_lock(url: str) -> Iterator[None]:
    import fcntl  # present: locks_out_other_workers checked for a POSIX system

    path = sqlite_path(url)
    if path is None:  # in-memory: one process anyway
        yield
        return
    with open(path.with_name(path.name + ".ask-lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(engine: Any, url: str, study_name: str) -> Iterator[None]:
    import sqlalchemy

    from hpo.storage.resilient import call_with_retry

    # A signed 64-bit key from the study's name; "hpo-ask:" keeps it apart from other users'
    # advisory locks on the same database.
    key = zlib.crc32(f"hpo-ask:{study_name}".encode()) | (0x4870 << 32)

    def acquire() -> Any:
        connection = engine.connect()
        try:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            connection.commit()
        except BaseException:
            connection.close()
            raise
        return connection

    connection = call_with_retry(acquire, url=url)
    try:
        yield
    finally:
        try:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            connection.commit()
        except Exception:
            # The connection died (a server restart dropped the lock with it), or it is in a
            # state nobody should reuse: never hand a connection that may hold the lock back
            # to the pool.
            connection.invalidate()
        finally:
            connection.close()
