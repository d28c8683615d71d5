"""An optuna trial whose `params` are what a Python space function returned for it.

The trainer applies `trial.params` (fields onto the TrainingArguments, `model.*` to
model_init), as Transformers' trainer applies `hp_space`'s dict. Under a Python space those
are the function's returned dict, not the names it suggested; everything else (report,
should_prune, number, study, user attrs) is the real trial's, so pruning and the storage work
as for a declared space. Imports optuna: import this module only where a trial exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna


class ReturnedParamsTrial(optuna.trial.BaseTrial):
    """`trial` with `params` replaced by `returned`."""

    def __init__(self, trial: optuna.trial.BaseTrial, returned: Mapping[str, Any]) -> None:
        self._trial = trial
        self._returned = dict(returned)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._returned)

    @property
    def distributions(self) -> dict[str, Any]:
        return self._trial.distributions

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self._trial.user_attrs

    @property
    def datetime_start(self) -> Any:
        return self._trial.datetime_start

    @property
    def number(self) -> int:
        return self._trial.number

    def report(self, value: float, step: int) -> None:
        self._trial.report(value, step)

    def should_prune(self) -> bool:
        return self._trial.should_prune()

    def set_user_attr(self, key: str, value: Any) -> None:
        self._trial.set_user_attr(key, value)

    def set_constraint(self, key: str, value: float) -> None:
        self._trial.set_constraint(key, value)

    def suggest_float(self, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_float(*args, **kwargs)

    def suggest_int(self, *args: Any, **kwargs: Any) -> int:
        return self._trial.suggest_int(*args, **kwargs)

    def suggest_categorical(self, *args: Any, **kwargs: Any) -> Any:
        return self._trial.suggest_categorical(*args, **kwargs)

    def suggest_uniform(self, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_uniform(*args, **kwargs)

    def suggest_loguniform(self, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_loguniform(*args, **kwargs)

    def suggest_discrete_uniform(self, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_discrete_uniform(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # study, system_attrs, ... of the real trial
        return getattr(self._trial, name)
