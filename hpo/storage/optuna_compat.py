"""Every use of Optuna's private API or of its database schema, in one place.

Optuna's public API has no way to do some things hpo needs (a study's id inside its storage,
a trial's id, counting trials in one SQL query, reading the schema directly for a fast
`hpo status`). Each such use is a small function here, and tests/hpo/storage/test_optuna_compat.py
checks every one against the installed optuna, so that a new optuna version that breaks one
fails that test loudly instead of failing a study at run time.

This module imports optuna only inside functions: `hpo status` imports it without loading optuna.
"""

from __future__ import annotations

from typing import Any

# --- Optuna's schema (read by hpo.storage.reader with plain SQL) ------------------------------

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
# The revisions hpo.storage.reader's SQL is written for. v3.0.0.d added the last column it
# needs (trial_values.value_type, for +-inf); v3.2.0.a only added an index. A database at any
# other revision is refused: the same SQL could return wrong numbers there.
READABLE_SCHEMA_REVISIONS = ("v3.0.0.d", "v3.2.0.a")
SCHEMA_HEAD_REVISION = READABLE_SCHEMA_REVISIONS[-1]

# Every table and column the reader's SQL names (optuna/storages/_rdb/models.py). The test
# checks each one exists in a storage the installed optuna creates.
SCHEMA_COLUMNS_READ: dict[str, tuple[str, ...]] = {
    "studies": ("study_id", "study_name"),
    "study_directions": ("study_id", "objective", "direction"),
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


# --- Optuna's private Python API --------------------------------------------------------------
