"""hpo's own queries of Optuna's database schema: those of the inspection commands and of the
budget count (the one-statement writes and reads that sit beside optuna's private API are in
hpo.storage.optuna_compat).

`hpo status` / `hpo best` (`hpo.storage.reader`) and the budget count that every worker
runs before every trial (`hpo.backends.optuna.budget`) read optuna's tables with plain SQL
through SQLAlchemy Core, since loading a study through optuna reads every trial with all its
params, attrs and intermediate values. This module imports neither optuna nor torch.

Schema facts used (optuna/storages/_rdb/models.py): enum columns hold the member *name*
('COMPLETE', 'MINIMIZE', 'FINITE', 'INF_NEG', ...); params are stored in optuna's internal
float form next to their distribution as JSON; attrs are JSON text. The tables, columns and
schema revisions this SQL is written for are listed in hpo.storage.optuna_compat, which checks
a database's revision before any query here runs; tests/hpo/storage/test_optuna_sql.py checks
the tables the queries name against a storage the installed optuna creates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from hpo.attrs import FAIL_REASON_ATTR, INTERRUPTED, PROGRESS_ATTR, STATES, WARM_START_ATTR
from hpo.errors import HpoError
from hpo.storage.optuna_compat import check_schema_once
from hpo.storage.urls import mask_url, scrub_passwords, sqlite_path, with_driver

_INT_DISTRIBUTIONS = ("IntDistribution", "IntUniformDistribution", "IntLogUniformDistribution")
# Sort keys that put -inf first and +inf last, as optuna does for stored values.
_INF_RANK = "CASE {col} WHEN 'INF_NEG' THEN -1 WHEN 'FINITE' THEN 0 ELSE 1 END"
# A trial that a warm start copied from an earlier study (bound as :warm): it was never
# trained here, so it is neither counted as COMPLETE nor ever the best trial.
_NOT_WARM_COPY = (
    "NOT EXISTS (SELECT 1 FROM trial_user_attributes w"
    " WHERE w.trial_id = t.trial_id AND w.key = :warm)"
)


def decode_param(internal: float, distribution_json: str) -> Any:
    """A param's user-facing value from optuna's stored float and distribution JSON."""
    distribution = json.loads(distribution_json)
    if "name" in distribution:
        kind, attrs = distribution["name"], distribution.get("attributes", {})
    else:  # optuna's abbreviated form: {"type": "categorical", "choices": [...]}
        kind, attrs = distribution["type"], distribution
    if kind in ("CategoricalDistribution", "categorical"):
        return attrs["choices"][int(internal)]
    if kind in _INT_DISTRIBUTIONS or kind == "int":
        return int(internal)
    return float(internal)


# --- The inspection commands (hpo.storage.reader: `hpo status`, `hpo best`) ------------------


class OptunaTables:
    """One connection to the storage, its schema revision checked, and the few queries the
    inspection commands need."""

    def __init__(self, url: str, *, check_schema: bool = True):
        self.url = url
        self.check_schema = check_schema

    def __enter__(self) -> OptunaTables:
        import sqlalchemy

        path = sqlite_path(self.url)
        if path is not None and not path.is_file():
            # Connecting would create an empty file; inspection never writes.
            raise HpoError(
                f"no storage at {mask_url(self.url)}: the file {path} does not exist. "
                "Check `storage:` in the study file (or --storage / HPO_STORAGE), "
                "or start the study with `hpo run`."
            )
        try:
            self._engine = sqlalchemy.create_engine(
                with_driver(self.url), poolclass=sqlalchemy.pool.NullPool
            )
            self._conn = self._engine.connect()
        except Exception as error:
            raise self._storage_error("cannot open storage", error) from None
        if not self.check_schema:
            return self
        try:
            with self._reading():
                check_schema_once(self._conn, self.url)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._conn.close()
        self._engine.dispose()

    def _storage_error(self, what: str, error: Exception) -> HpoError:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return HpoError(f"{what} {mask_url(self.url)}: {scrub_passwords(reason, self.url)}")

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Database errors as HpoErrors that say what to check, with passwords scrubbed."""
        try:
            yield
        except HpoError:
            raise
        except Exception as error:
            if _is_missing_table(error):
                raise NoTables(
                    f"{mask_url(self.url)} holds no optuna study (its tables are missing). "
                    "Check `storage:` in the study file (or --storage / HPO_STORAGE), "
                    "or start the study with `hpo run`."
                ) from None
            raise self._storage_error("cannot read optuna's tables in", error) from None

    def rows(self, sql: str, **params: Any) -> list[Any]:
        import sqlalchemy

        statement = sqlalchemy.text(sql)
        for name, value in params.items():
            if isinstance(value, (list, tuple)):
                statement = statement.bindparams(sqlalchemy.bindparam(name, expanding=True))
        with self._reading():
            return list(self._conn.execute(statement, params))

    def study_names(self) -> list[str]:
        return [row[0] for row in self.rows("SELECT study_name FROM studies ORDER BY study_name")]

    def has_study(self, study_name: str) -> bool:
        return bool(self.rows("SELECT 1 FROM studies WHERE study_name = :n", n=study_name))

    def study_user_attrs(self, study_name: str) -> dict[str, Any]:
        rows = self.rows(
            "SELECT a.key, a.value_json FROM study_user_attributes a"
            " JOIN studies s ON s.study_id = a.study_id WHERE s.study_name = :n",
            n=study_name,
        )
        return {key: json.loads(value) for key, value in rows}

    def study_id(self, study_name: str) -> int:
        rows = self.rows("SELECT study_id FROM studies WHERE study_name = :n", n=study_name)
        if rows:
            return int(rows[0][0])
        names = self.study_names()
        there = (
            "studies there: " + ", ".join(repr(n) for n in names)
            if names
            else "it holds no study yet"
        )
        raise HpoError(
            f"no study named {study_name!r} in {mask_url(self.url)}; {there}. "
            "Check `name:` and `storage:` in the study file (or --storage / HPO_STORAGE)."
        )

    def directions(self, study_id: int) -> list[str]:
        rows = self.rows(
            "SELECT direction FROM study_directions WHERE study_id = :s ORDER BY objective",
            s=study_id,
        )
        return [str(row[0]).lower() for row in rows]

    def counts(self, study_id: int) -> dict[str, int]:
        rows = self.rows(
            "SELECT state, COUNT(*) FROM trials WHERE study_id = :s GROUP BY state", s=study_id
        )
        counts = dict.fromkeys(STATES, 0)
        counts.update({str(state): int(n) for state, n in rows})
        return counts

    def warm_start_copies(self, study_id: int) -> int:
        rows = self.rows(
            "SELECT COUNT(*) FROM trials t JOIN trial_user_attributes w"
            " ON w.trial_id = t.trial_id AND w.key = :warm"
            " WHERE t.study_id = :s AND t.state = 'COMPLETE'",
            s=study_id,
            warm=WARM_START_ATTR,
        )
        return int(rows[0][0]) if rows else 0

    def best_complete(self, study_id: int, direction: str) -> dict[int, tuple[int, dict[str, Any]]]:
        """{trial_id: (number, {"value": v})} of the best complete trial (first objective;
        warm-start copies left out); empty before one."""
        order = "DESC" if direction == "maximize" else "ASC"
        rows = self.rows(
            "SELECT t.trial_id, t.number, v.value, v.value_type"
            " FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id"
            " WHERE t.study_id = :s AND t.state = 'COMPLETE' AND v.objective = 0"
            f" AND {_NOT_WARM_COPY}"
            f" ORDER BY {_INF_RANK.format(col='v.value_type')} {order}, v.value {order},"
            " t.number ASC LIMIT 1",
            s=study_id,
            warm=WARM_START_ATTR,
        )
        return {int(r[0]): (int(r[1]), {"value": _stored_float(r[2], r[3])}) for r in rows}

    def complete_values(
        self, study_id: int, objectives: int
    ) -> tuple[dict[int, list[float]], dict[int, int]]:
        """The values ({trial_id: [one per objective]}) and numbers ({trial_id: number}) of
        every complete trial, warm-start copies left out."""
        rows = self.rows(
            "SELECT t.trial_id, t.number, v.objective, v.value, v.value_type"
            " FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id"
            f" WHERE t.study_id = :s AND t.state = 'COMPLETE' AND {_NOT_WARM_COPY}",
            s=study_id,
            warm=WARM_START_ATTR,
        )
        values: dict[int, list[float]] = {}
        numbers: dict[int, int] = {}
        for trial_id, number, objective, value, value_type in rows:
            values.setdefault(trial_id, [math.nan] * objectives)[objective] = _stored_float(
                value, value_type
            )
            numbers[trial_id] = number
        return values, numbers

    def params(self, trial_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        rows = self.rows(
            "SELECT trial_id, param_name, param_value, distribution_json FROM trial_params"
            " WHERE trial_id IN :ids ORDER BY param_id",
            ids=list(trial_ids),
        )
        return _by_trial((row[0], row[1], decode_param(row[2], row[3])) for row in rows)

    def user_attrs(self, trial_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        rows = self.rows(
            "SELECT trial_id, key, value_json FROM trial_user_attributes"
            " WHERE trial_id IN :ids ORDER BY trial_user_attribute_id",
            ids=list(trial_ids),
        )
        return _by_trial((row[0], row[1], json.loads(row[2])) for row in rows)

    def running(self, study_id: int) -> list[dict[str, Any]]:
        # The last step of each running trial comes from the (trial_id, step) unique index,
        # so this stays cheap however many finished trials the study holds.
        rows = self.rows(
            "SELECT t.number, t.datetime_start, iv.step, iv.intermediate_value,"
            " iv.intermediate_value_type, hb.heartbeat, pa.value_json"
            " FROM trials t"
            " LEFT JOIN (SELECT trial_id, MAX(step) AS step FROM trial_intermediate_values"
            "   WHERE trial_id IN (SELECT trial_id FROM trials"
            "     WHERE study_id = :s AND state = 'RUNNING')"
            "   GROUP BY trial_id) last ON last.trial_id = t.trial_id"
            " LEFT JOIN trial_intermediate_values iv"
            "   ON iv.trial_id = last.trial_id AND iv.step = last.step"
            " LEFT JOIN trial_heartbeats hb ON hb.trial_id = t.trial_id"
            " LEFT JOIN trial_user_attributes pa"
            "   ON pa.trial_id = t.trial_id AND pa.key = :progress"
            " WHERE t.study_id = :s AND t.state = 'RUNNING' ORDER BY t.number",
            s=study_id,
            progress=PROGRESS_ATTR,
        )
        return [
            {
                "number": int(number),
                "last_step": None if step is None else int(step),
                "last_value": None if step is None else _stored_float(value, value_type),
                "started": _iso(started),
                "heartbeat": _iso(heartbeat),
                # {"step", "max_steps", "steps_per_s"}, written by the Optuna backend's worker
                PROGRESS_ATTR: json.loads(progress) if progress else None,
            }
            for number, started, step, value, value_type, heartbeat, progress in rows
        ]


# --- The budget count (hpo.backends.optuna.budget: every worker, before every trial) ----------


def count_trial_states(engine: Any, url: str, study_id: int) -> list[Any]:
    """(state, trials, interrupted ones, warm-start copies) of the study, in one round trip:
    the trials by state, how many FAIL ones were interrupted and how many are copies (a trial
    has at most one attr of each key, so the outer joins add no rows)."""
    import sqlalchemy

    with engine.connect() as connection:
        # The SQL is written for optuna's schema (checked once per database and process).
        check_schema_once(connection, url)
        return connection.execute(
            sqlalchemy.text(
                "SELECT t.state, COUNT(*), "
                "SUM(CASE WHEN a.value_json = :v THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN w.trial_id IS NULL THEN 0 ELSE 1 END) "
                "FROM trials t LEFT JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id AND a.key = :k "
                "LEFT JOIN trial_user_attributes w "
                "ON w.trial_id = t.trial_id AND w.key = :w "
                "WHERE t.study_id = :s GROUP BY t.state"
            ),
            {
                "s": study_id,
                "k": FAIL_REASON_ATTR,
                "v": json.dumps(INTERRUPTED),
                "w": WARM_START_ATTR,
            },
        ).all()


# --- Helpers ----------------------------------------------------------------------------------


def _by_trial(entries: Iterable[tuple[int, str, Any]]) -> dict[int, dict[str, Any]]:
    """`{trial_id: {name: value}}` from `(trial_id, name, value)` rows, keeping row order."""
    grouped: dict[int, dict[str, Any]] = {}
    for trial_id, name, value in entries:
        grouped.setdefault(trial_id, {})[name] = value
    return grouped


class NoTables(HpoError):
    """The storage holds no optuna tables (a database no study was created in)."""


def _is_missing_table(error: Exception) -> bool:
    message = str(getattr(error, "orig", None) or error).lower()
    # SQLite: "no such table: studies"; PostgreSQL: 'relation "studies" does not exist'.
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def _stored_float(value: float | None, value_type: Any) -> float:
    kind = str(value_type)
    if kind == "INF_POS":
        return math.inf
    if kind == "INF_NEG":
        return -math.inf
    if kind == "NAN":
        return math.nan
    return float(value)  # type: ignore[arg-type]


def _iso(moment: Any) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return moment.isoformat(sep=" ", timespec="seconds")
    return str(moment).split(".")[0]  # SQLite returns the text it stored
