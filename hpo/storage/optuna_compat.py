"""Every use of Optuna's private API or of its database schema, in one place.

Optuna's public API has no way to do some things hpo needs (a study's id inside its storage,
a trial's id, counting trials in one SQL query, reading the schema directly for a fast
`hpo status`). Each such use is a small function here, and tests/hpo/storage/test_optuna_compat.py
checks every one against the installed optuna, so that a new optuna version that breaks one
fails that test loudly instead of failing a study at run time. The schema's revisions and
columns are listed here; the longer queries over them (`hpo status`, the budget count) are in
the sibling hpo.storage.optuna_sql.

This module imports optuna only inside functions: `hpo status` imports it without loading optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo.attrs import WARM_START_ATTR

if TYPE_CHECKING:
    import optuna

# --- Optuna's schema (read with plain SQL by hpo.storage.optuna_sql) ---------------------------

# Optuna's RDB storage migrates its tables with alembic and records the revision a database is
# at in the one-row table `alembic_version` (optuna/storages/_rdb/alembic/versions/). Oldest
# first; the test compares this chain with the installed optuna's.
SCHEMA_REVISION_TABLE = "alembic_version"
OPTUNA_SCHEMA_REVISIONS = (
    "v0.9.0.a",
    "v1.2.0.a",
    "v1.3.0.a",
    "v2.4.0.a",
    "v2.6.0.a",
    "v3.0.0.a",
    "v3.0.0.b",
    "v3.0.0.c",
    "v3.0.0.d",
    "v3.2.0.a",
)
# The revisions hpo.storage.optuna_sql's SQL is written for. v3.0.0.d added the last column it
# needs (trial_values.value_type, for +-inf); v3.2.0.a only added an index. A database at any
# other revision is refused: the same SQL could return wrong numbers there.
READABLE_SCHEMA_REVISIONS = ("v3.0.0.d", "v3.2.0.a")
SCHEMA_HEAD_REVISION = READABLE_SCHEMA_REVISIONS[-1]

# Every table and column hpo.storage.optuna_sql's SQL names (optuna/storages/_rdb/models.py).
# The test checks each one exists in a storage the installed optuna creates.
SCHEMA_COLUMNS_READ: dict[str, tuple[str, ...]] = {
    "studies": ("study_id", "study_name"),
    "study_directions": ("study_id", "objective", "direction"),
    "study_user_attributes": ("study_id", "key", "value_json"),
    "trials": ("trial_id", "study_id", "number", "state", "datetime_start"),
    "trial_values": ("trial_id", "objective", "value", "value_type"),
    "trial_params": ("param_id", "trial_id", "param_name", "param_value", "distribution_json"),
    "trial_user_attributes": ("trial_user_attribute_id", "trial_id", "key", "value_json"),
    "trial_intermediate_values": (
        "trial_id",
        "step",
        "intermediate_value",
        "intermediate_value_type",
    ),
    "trial_heartbeats": ("trial_id", "heartbeat"),
}


def check_schema_revision(connection: Any, storage: str) -> None:
    """Raise HpoError unless the database behind `connection` is at a readable revision.

    `connection` is an open SQLAlchemy connection; `storage` names the database in the
    message (a masked URL). A missing `alembic_version` table raises the driver's error, which
    the caller reports as "no optuna study there".
    """
    import sqlalchemy

    from hpo.errors import HpoError

    statement = sqlalchemy.text(f"SELECT version_num FROM {SCHEMA_REVISION_TABLE}")
    found = [str(revision) for revision in connection.execute(statement).scalars()]
    if len(found) == 1 and found[0] in READABLE_SCHEMA_REVISIONS:
        return
    expected = " or ".join(repr(r) for r in READABLE_SCHEMA_REVISIONS)
    at = repr(found[0]) if len(found) == 1 else f"{found!r} (expected one row)"
    known_older = len(found) == 1 and found[0] in OPTUNA_SCHEMA_REVISIONS
    advice = (
        "It was created by an older optuna: back it up, then upgrade it with "
        "`optuna storage upgrade --storage URL`."
        if known_older
        else "It was written by an optuna newer than this hpo knows: upgrade hpo, or run "
        f"the study with an optuna whose schema is {SCHEMA_HEAD_REVISION!r}."
    )
    raise HpoError(
        f"{storage} is at optuna schema revision {at}, but hpo reads only revision {expected} "
        f"({SCHEMA_REVISION_TABLE} table); reading it could give wrong numbers. {advice}"
    )


# Databases (URLs) this process found readable. A database's revision does not change under a
# running study, so the budget count (before every trial) and the progress line (every second)
# check it once, not at every query.
_READABLE_DATABASES: set[str] = set()


def check_schema_once(connection: Any, url: str) -> None:
    """`check_schema_revision` on `connection` to the database at `url`, the first time this
    process reads that database; a refused database is checked again next time."""
    if url in _READABLE_DATABASES:
        return
    from hpo.storage.urls import mask_url

    check_schema_revision(connection, mask_url(url))
    _READABLE_DATABASES.add(url)


# --- Optuna's private Python API --------------------------------------------------------------
#
# Optuna keeps a study's storage, its id and a trial's id on private attributes and has no
# public getter for them; hpo needs them to write a trial it did not get from a callback
# (a dead worker's trial, a trial given back), to count trials in SQL, and to read the trial
# `study.ask()` already loaded. Each function below reads one such attribute, and says so
# loudly (OptunaChanged) when an optuna release renamed it, instead of a bare AttributeError
# deep inside a worker.
#
# What was checked and kept here rather than replaced by a public API:
# - `optuna.storages.fail_stale_trials(study)` fails stale trials, but it can neither write our
#   `fail_reason` attr (optuna refuses to change a finished trial's attrs, and the function
#   sets FAIL first) nor say which trials it failed (it returns None): `hpo.storage.rdb`'s
#   sweep does both, so it calls `stale_trial_ids` and then optuna's public storage methods.
# - `RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen_trial)` is public, and the
#   worker uses it; it takes a FrozenTrial, which a `Trial` only exposes privately
#   (`frozen_trial_of`).


class OptunaChanged(RuntimeError):
    """The installed optuna no longer has a private attribute hpo relies on."""


def _private(owner: object, attribute: str) -> Any:
    try:
        return getattr(owner, attribute)
    except AttributeError:
        import optuna

        raise OptunaChanged(
            f"optuna {optuna.__version__}: {type(owner).__name__}.{attribute} is gone; "
            "hpo.storage.optuna_compat needs updating for this optuna release"
        ) from None


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a Study writes through (for an RDB URL, optuna's cache around it)."""
    return _private(study, "_storage")


def study_id_of(study: optuna.Study) -> int:
    """The study's id in its storage (what the storage's methods and tables key on)."""
    return _private(study, "_study_id")


def trial_id_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """A trial's id in its storage (unique across studies; `trial.number` is per study)."""
    return _private(trial, "_trial_id")


def frozen_trial_of(trial: optuna.Trial) -> optuna.trial.FrozenTrial:
    """The FrozenTrial that `study.ask()` read for `trial`, kept up to date by the Trial's own
    writes: its system attrs (a retry's mark) without reading the storage again."""
    return _private(trial, "_cached_frozen_trial")


def uncached(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The storage under optuna's cache wrapper (`_CachedStorage._backend`, which optuna puts
    around every RDBStorage a Study or Trial writes through); any other storage as it is."""
    from optuna.storages._cached_storage import _CachedStorage

    return _private(storage, "_backend") if isinstance(storage, _CachedStorage) else storage


def rdb_engine_of(study: optuna.Study) -> Any:
    """The SQLAlchemy engine under the study's storage, also through optuna's cache wrapper;
    None when the storage is not an RDB storage."""
    from optuna.storages import RDBStorage

    storage = uncached(storage_of(study))
    return storage.engine if isinstance(storage, RDBStorage) else None


def write_user_attrs(storage: optuna.storages.RDBStorage, trial_id: int, attrs: dict) -> None:
    """Several user attrs of a running trial in one transaction: one commit instead of one per
    attr (`RDBStorage.set_trial_user_attr` commits each).

    The same check and upsert as optuna's own write (`_set_trial_attr_without_commit`): the
    trial is read once to refuse a finished one, then on SQLite and PostgreSQL every attr goes
    in one multi-row upsert, where optuna reads the trial and upserts once per attr. Other
    databases get optuna's per-attr write, inside the one transaction.
    """
    import json
    import sqlite3

    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    dialect = storage.engine.name
    one_statement = dialect == "postgresql" or (
        dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0)
    )
    with _create_scoped_session(_private(storage, "scoped_session"), True) as session:
        if not one_statement:
            write_one = _private(storage, "_set_trial_attr_without_commit")
            for key, value in attrs.items():
                write_one(session, models.TrialUserAttributeModel, trial_id, key, value)
            return
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        storage.check_trial_is_updatable(trial_id, trial.state)
        rows = [
            {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
            for key, value in attrs.items()
        ]
        session.execute(_upsert(dialect, models.TrialUserAttributeModel, rows))


def _upsert(dialect: str, table: Any, rows: list[dict[str, Any]]) -> Any:
    """INSERT rows ... ON CONFLICT (trial_id, key) DO UPDATE value_json, for SQLite/PostgreSQL."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        # Same call, another dialect's Insert class (both have on_conflict_do_update).
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(table).values(rows)
    return statement.on_conflict_do_update(
        index_elements=[table.trial_id, table.key],
        set_={"value_json": statement.excluded.value_json},
    )


def set_user_attrs(trial: optuna.Trial, attrs: dict) -> None:
    """`trial.set_user_attr` for each of `attrs`, in one storage write where the storage is
    hpo's (`ResilientRDBStorage.set_trial_user_attrs`); one write per attr elsewhere."""
    write_all = getattr(uncached(trial.storage), "set_trial_user_attrs", None)
    if write_all is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    write_all(trial_id_of(trial), attrs)
    frozen_trial_of(trial).user_attrs.update(attrs)  # what Trial.set_user_attr keeps too


def stale_trial_ids(storage: optuna.storages.RDBStorage, study_id: int) -> list[int]:
    """The ids of the study's RUNNING trials whose heartbeat is older than the grace period.

    Only meaningful with heartbeats on (`storage.get_heartbeat_interval()` not None).
    """
    return list(_private(storage, "_get_stale_trial_ids")(study_id))


def best_finished_value(study: optuna.Study, direction: str) -> float | None:
    """The best finite value of the study's COMPLETE trials (first objective); None before one.
    Warm-start copies (`WARM_START_ATTR`) are left out: they were not trained here.

    One aggregate query of optuna's `trials` and `trial_values` tables on an RDB storage:
    optuna's `study.best_value` reads the whole best trial (six queries). Infinite values are
    left out; they could only make a caller keep what it could have skipped. Elsewhere
    (in-memory, journal storages) it is optuna's `best_value`.
    """
    from sqlalchemy import text

    engine = rdb_engine_of(study)
    if engine is None:
        try:
            return float(study.best_value)
        except ValueError:  # no COMPLETE trial yet
            return None
    best = "MAX" if direction == "maximize" else "MIN"
    with engine.connect() as connection:
        value = connection.execute(
            text(
                f"SELECT {best}(v.value) FROM trial_values v"
                " JOIN trials t ON t.trial_id = v.trial_id"
                " WHERE t.study_id = :study_id AND t.state = 'COMPLETE' AND v.objective = 0"
                " AND v.value_type = 'FINITE' AND NOT EXISTS (SELECT 1 FROM"
                " trial_user_attributes w WHERE w.trial_id = t.trial_id AND w.key = :warm)"
            ),
            {"study_id": study_id_of(study), "warm": WARM_START_ATTR},
        ).scalar()
    return None if value is None else float(value)


def clear_user_attr(study: optuna.Study, trial_id: int, key: str) -> bool:
    """Set a trial's user attr `key` to None, even when the trial has finished.

    Optuna refuses every write to a finished trial, but retention must not leave a finished
    trial naming a checkpoint it deletes; so this writes the schema's `trial_user_attributes`
    row (a JSON `null`) directly. Returns False where the storage is not an RDB one.
    """
    from sqlalchemy import text

    engine = rdb_engine_of(study)
    if engine is None:
        return False
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE trial_user_attributes SET value_json = 'null' "
                "WHERE trial_id = :trial_id AND key = :key"
            ),
            {"trial_id": trial_id, "key": key},
        )
    return True


# The private RDBStorage methods that optuna's _CachedStorage (which every RDB study reads and
# writes through) calls besides the public storage API. hpo.storage.resilient retries these as
# well as the public ones, or a lost connection would escape through them; the test checks the
# list against the installed optuna's _CachedStorage.
CACHED_STORAGE_BACKEND_CALLS = (
    "_create_new_trial",
    "_set_trial_param",
    "_get_best_trial_id",
    "_get_trials",
    "_get_stale_trial_ids",
)


def claim_waiting_trial(engine: Any, trial_id: int) -> bool:
    """Move a WAITING trial to RUNNING, in one compare-and-set statement; False when it was
    not WAITING any more (another worker claimed it first, or it finished).

    optuna's `set_trial_state_values` reads the state, then writes it. Its row lock means
    nothing to SQLite, where two workers can both read WAITING before either writes: both then
    train the same trial, and the slower one dies telling it (UpdateFinishedTrialError). Here
    the database decides: the UPDATE matches the row only while it is WAITING. Writes optuna's
    `trials` table as optuna does (state, and `datetime_start` in naive UTC).
    """
    import datetime

    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    table = models.TrialModel.__table__
    statement = (
        sqlalchemy.update(table)
        .where(table.c.trial_id == trial_id, table.c.state == TrialState.WAITING)
        .values(
            state=TrialState.RUNNING,
            datetime_start=datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None),
        )
    )
    with engine.begin() as connection:
        return connection.execute(statement).rowcount == 1
