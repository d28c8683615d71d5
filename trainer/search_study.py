"""What both backends of `hyperparameter_search` share (trainer/search.py, search_ray.py): the
study's default storage and name, opening a SQLite storage for several processes, a trial's
args and folder, and the metrics of a trial's last evaluation."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from trainer.args import field_names
from trainer.callbacks import TrainerCallback

STORAGE_FILE = "hp_search.db"


def default_storage(output_dir: str) -> str:
    """The study's storage when none is given: a SQLite file in output_dir."""
    return f"sqlite:///{os.path.abspath(os.path.join(output_dir, STORAGE_FILE))}"


def default_study_name(output_dir: str) -> str:
    return os.path.basename(os.path.abspath(output_dir)) or "hyperparameter_search"


class LastEvaluation(TrainerCallback):
    """Remembers the metrics of the last evaluation of the current trial."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] | None = None

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any):
        self.metrics = dict(metrics or {})


def trial_args(template: Any, params: dict[str, Any], run_dir: str) -> Any:
    """A copy of the args for one trial: its folder and the params that are args fields."""
    fields = {key: value for key, value in params.items() if key in field_names(template)}
    return dataclasses.replace(template, output_dir=run_dir, **fields)


SQLITE_BUSY_TIMEOUT_S = 60  # several processes on one file wait for its lock, not fail


def open_storage(storage: Any) -> Any:
    """An optuna storage; a SQLite URL gets its folder, write-ahead logging (readers such as
    `hpo status` do not block the trials' writes) and a busy timeout, so that several
    processes running the same script share one study. Other storages pass through."""
    import optuna

    if not (isinstance(storage, str) and storage.startswith("sqlite:///")):
        return storage
    import sqlite3

    path = storage[len("sqlite:///") :]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs)
        except Exception as error:
            if attempt == 4 or not _lost_create_race(error):
                raise
            time.sleep(0.2 * (attempt + 1))  # the winner is creating the schema now
    raise AssertionError("unreachable")


def _lost_create_race(error: Exception) -> bool:
    """Whether another process created optuna's schema at the same moment: optuna creates it
    check-then-create, so the loser sees "table ... already exists" or a duplicate row in
    `alembic_version` (an IntegrityError); its next try finds the schema made."""
    import sqlalchemy

    if isinstance(error, sqlalchemy.exc.IntegrityError):
        return True
    return "already exists" in str(error).lower()
