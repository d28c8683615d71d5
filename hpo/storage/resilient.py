"""Storage calls that outlive a database restart or a dropped connection.

A PostgreSQL restart (or `pg_terminate_backend`) fails the query in flight and every
connection attempt until the server is back, a few seconds later. `pool_pre_ping` only swaps
a connection that is already dead when it is checked out: it cannot save a query cut off
mid-way, nor connect to a server that is still starting. So every call hpo makes into a
study's storage goes through `call_with_retry`: a call that failed on the connection is tried
again with backoff for up to `outage_limit_s()` seconds, and only then raises
`StorageUnavailable`. One wrapper at the storage boundary, not a try/except around each call:

- `ResilientRDBStorage` is optuna's RDBStorage with every public method retried (optuna's
  Study, Trial and the heartbeat thread all go through it);
- hpo's own SQL (the budget count, the stale-trial sweep, the ask lock) calls `call_with_retry`.

Claiming a WAITING trial is a compare-and-set (`optuna_compat.claim_waiting_trial`): optuna
reads the state and then writes it, and on SQLite two workers can both read WAITING before
either writes, so both would train the same trial.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
from optuna.trial import TrialState

from hpo.errors import HpoError
from hpo.storage.optuna_compat import CACHED_STORAGE_BACKEND_CALLS
from hpo.storage.urls import mask_url, scrub_passwords

T = TypeVar("T")

# How long a storage call keeps retrying a lost connection before it gives up. A database
# restart takes seconds; a longer outage is not a blip, and the run says so.
DEFAULT_OUTAGE_LIMIT_S = 120.0
OUTAGE_LIMIT_ENV = "HPO_STORAGE_OUTAGE_S"
# Pauses between tries, then the last one repeated: quick for a dropped connection, gentle
# on a server that is starting.
BACKOFF_S = (0.1, 0.3, 1.0, 2.0, 4.0)

# Driver messages of an error in the statement itself, which no retry can fix (SQLite reports
# them as OperationalError like a lost connection).
_NOT_TRANSIENT = ("no such table", "no such column", "syntax error", "has no column")


class StorageUnavailable(HpoError):
    """The storage could not be reached for longer than the outage limit."""


def outage_limit_s() -> float:
    """Seconds a call retries a lost storage (HPO_STORAGE_OUTAGE_S, default 120)."""
    try:
        return max(0.0, float(os.environ.get(OUTAGE_LIMIT_ENV, DEFAULT_OUTAGE_LIMIT_S)))
    except ValueError:
        return DEFAULT_OUTAGE_LIMIT_S


def is_connection_error(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is the database connection failing, not the query.

    optuna wraps SQLAlchemy's errors in StorageInternalError ("... e.g. exceeding max length",
    misleading for a restart), so the whole chain of causes is looked at.
    """
    import sqlalchemy

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            message = str(current).lower()
            return not any(marker in message for marker in _NOT_TRANSIENT)
        current = current.__cause__ or current.__context__
    return False


def _driver_message(error: BaseException) -> str:
    """The first line of what the database driver said, under optuna's and SQLAlchemy's
    wrappers (optuna's own message blames the data)."""
    import sqlalchemy

    current: BaseException | None = error
    while current is not None:
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.orig is not None:
            current = current.orig
            break
        if current.__cause__ is None:
            break
        current = current.__cause__
    lines = str(current).strip().splitlines()
    return lines[0].strip() if lines else type(current).__name__


# Calls inside a retried call (optuna's get_n_trials calls get_all_trials) are not retried
# again: only the outermost one waits, so an outage costs one limit, not a product of them.
_depth = threading.local()


def call_with_retry(function: Callable[..., T], *args: Any, url: str = "", **kwargs: Any) -> T:
    """`function(*args, **kwargs)`, tried again while it fails on the storage's connection.

    Raises StorageUnavailable (naming the masked `url`) once the outage lasted longer than
    `outage_limit_s()`; any other error is raised at once.
    """
    if getattr(_depth, "value", 0):
        return function(*args, **kwargs)
    started = time.monotonic()
    attempt = 0
    _depth.value = 1
    try:
        while True:
            try:
                return function(*args, **kwargs)
            except Exception as error:
                if not is_connection_error(error):
                    raise
                waited = time.monotonic() - started
                if waited >= outage_limit_s():
                    reason = scrub_passwords(_driver_message(error), url)
                    raise StorageUnavailable(
                        f"storage {mask_url(url) if url else ''} unreachable for {waited:.0f} s "
                        f"({reason}); check the database server, then run again to continue"
                    ) from None
                if attempt == 0:
                    print(
                        f"hpo: storage connection lost (pid {os.getpid()}); retrying for up to "
                        f"{outage_limit_s():.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1
    finally:
        _depth.value = 0


# The storage methods hpo reaches through optuna (BaseStorage's public API; optuna's cache in
# front of the storage also calls a few private ones, CACHED_STORAGE_BACKEND_CALLS).
RETRIED_METHODS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "get_trial_params",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "record_heartbeat",
)


class ResilientRDBStorage(optuna.storages.RDBStorage):
    """optuna's RDBStorage whose calls survive a database restart (`call_with_retry`), and
    whose WAITING -> RUNNING claim is a compare-and-set."""

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        from hpo.storage.optuna_compat import claim_waiting_trial

        if state == TrialState.RUNNING and values is None:
            return call_with_retry(claim_waiting_trial, self.engine, trial_id, url=self.url)
        parent = super().set_trial_state_values
        tried = [False]

        def finish() -> bool:
            try:
                return parent(trial_id, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                # A retry of a commit whose answer was lost with the connection: the first
                # try did finish the trial, as asked.
                if tried[0] and super(ResilientRDBStorage, self).get_trial(trial_id).state == state:
                    return True
                raise
            finally:
                tried[0] = True

        return call_with_retry(finish, url=self.url)

    def set_trial_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """Several user attrs in one commit (`optuna_compat.set_user_attrs` calls it)."""
        from hpo.storage.optuna_compat import write_user_attrs

        call_with_retry(write_user_attrs, self, trial_id, attrs, url=self.url)


def _retried(name: str) -> Callable[..., Any]:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def retried(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return call_with_retry(method, self, *args, url=self.url, **kwargs)

    return retried


for _name in RETRIED_METHODS + CACHED_STORAGE_BACKEND_CALLS:
    setattr(ResilientRDBStorage, _name, _retried(_name))
