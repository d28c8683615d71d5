"""Opening an optuna RDB storage that several processes share on one SQLite file: the one
opener of `Trainer.hyperparameter_search` (trainer/search_study.py) and of hpo's storages
(hpo/storage/rdb.py, which adds its heartbeats, retries and engine options around it).

Three things make one file safe for many processes: its folder exists, it runs in
write-ahead logging (readers such as `hpo status` or the dashboard do not block the trials'
writes), and every connection waits for the write lock instead of failing at once. And a
fresh database's schema is created by whichever process gets there first: the others retry.

Imports sqlite3 and sqlalchemy only when called, and never optuna: the caller opens.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

# SQLite lets one writer at a time; the others wait this long for the lock instead of failing
# at once with "database is locked" (the driver's default is 5 s, too short for N workers).
SQLITE_BUSY_TIMEOUT_S = 60
# How many times opening a fresh database is tried while other processes create its schema.
CREATE_RACE_TRIES = 5

_Opened = TypeVar("_Opened")


def prepare_sqlite_file(path: str | os.PathLike[str]) -> None:
    """Create the file's folder and switch the file to write-ahead logging. The mode is stored
    in the file, so once is enough."""
    import sqlite3

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        for attempt in range(CREATE_RACE_TRIES):
            try:
                # Reading the mode takes no write lock: a file already in WAL is left alone.
                if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                # Switching needs the file to itself; SQLite answers "locked" at once, without
                # waiting out the busy timeout, when waiting could deadlock with a reader that
                # opened the fresh file at the same moment. Another try finds it free.
                if "locked" not in str(error) or attempt + 1 == CREATE_RACE_TRIES:
                    raise
                time.sleep(0.2 * (attempt + 1))
    finally:
        connection.close()


def sqlite_engine_kwargs() -> dict[str, Any]:
    """SQLAlchemy engine options for a SQLite file shared by several processes."""
    return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}


def open_retrying_create_race(open_once: Callable[[], _Opened]) -> _Opened:
    """`open_once()`, tried again (up to CREATE_RACE_TRIES in all) while it fails because
    another process is creating the database's schema; any other error is raised at once."""
    for attempt in range(CREATE_RACE_TRIES):
        try:
            return open_once()
        except Exception as error:
            if attempt + 1 == CREATE_RACE_TRIES or not lost_create_race(error):
                raise
            time.sleep(0.2 * (attempt + 1))  # the winner is creating the schema now
    raise AssertionError("unreachable")


def lost_create_race(error: Exception) -> bool:
    """Whether opening failed because another process created optuna's schema at that instant.

    Optuna creates its tables check-then-create, so two processes opening a fresh database
    together collide: "table ... already exists", or a duplicate row in `alembic_version`
    (an IntegrityError). The loser's next try finds the schema made.
    """
    import sqlalchemy

    if isinstance(error, sqlalchemy.exc.IntegrityError):
        return True
    return "already exists" in str(getattr(error, "orig", None) or error).lower()
