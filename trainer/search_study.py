"""What both backends of `hyperparameter_search` share (trainer/search.py, search_ray.py): the
study's default storage and name, opening it, a trial's args and folder, and the metrics of a
trial's last evaluation."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from trainer.args import field_names
from trainer.callbacks import TrainerCallback
from trainer.sqlite_storage import (
    open_retrying_create_race,
    prepare_sqlite_file,
    sqlite_engine_kwargs,
)

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


def open_storage(storage: Any) -> Any:
    """An optuna storage; a SQLite URL is opened for several processes
    (`trainer.sqlite_storage`), so that several processes running the same script share one
    study. Other storages pass through."""
    import optuna

    if not (isinstance(storage, str) and storage.startswith("sqlite:///")):
        return storage
    prepare_sqlite_file(storage[len("sqlite:///") :])
    return open_retrying_create_race(
        lambda: optuna.storages.RDBStorage(storage, engine_kwargs=sqlite_engine_kwargs())
    )
