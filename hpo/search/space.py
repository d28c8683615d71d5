"""One search-space declaration (`ParamSpec`s from the study file) in each backend's terms.

The same space must mean the same set of values everywhere: Optuna's bounds are inclusive,
Ray's `randint` upper bound is exclusive and Ray quantizes to multiples of `q` (Optuna steps
from `low`), so the conversions below correct for both. optuna and ray are imported lazily:
importing this module costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hpo.attrs import MODEL_PREFIX
from hpo.spec import ParamSpec

if TYPE_CHECKING:  # pragma: no cover - typing only
    import optuna
    from optuna.distributions import BaseDistribution


def suggest(trial: optuna.Trial, space: Iterable[ParamSpec]) -> dict[str, Any]:
    """Ask `trial` for one value per dimension; returns {name: value} in the space's order."""
    params: dict[str, Any] = {}
    for param in space:
        if param.type == "float":
            params[param.name] = trial.suggest_float(
                param.name, param.low, param.high, log=param.log, step=param.step
            )
        elif param.type == "int":
            params[param.name] = trial.suggest_int(
                param.name, param.low, param.high, step=param.step or 1, log=param.log
            )
        else:
            params[param.name] = trial.suggest_categorical(param.name, list(param.choices))
    return params


def to_optuna_distributions(space: Iterable[ParamSpec]) -> dict[str, BaseDistribution]:
    """The distributions `suggest` draws from (for `study.enqueue_trial`, `add_trial`, Ray's OptunaSearch)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    distributions: dict[str, BaseDistribution] = {}
    for param in space:
        if param.type == "float":
            distributions[param.name] = FloatDistribution(
                param.low, param.high, log=param.log, step=param.step
            )
        elif param.type == "int":
            distributions[param.name] = IntDistribution(
                param.low, param.high, log=param.log, step=param.step or 1
            )
        else:
            distributions[param.name] = CategoricalDistribution(list(param.choices))
    return distributions


def to_ray_param_space(space: Iterable[ParamSpec]) -> dict[str, Any]:
    """A Ray Tune `param_space` drawing from exactly the values `suggest` can return."""
    from ray import tune

    param_space: dict[str, Any] = {}
    for param in space:
        param_space[param.name] = _ray_domain(tune, param)
    return param_space


def _ray_domain(tune: Any, param: ParamSpec) -> Any:
    if param.type == "categorical":
        return tune.choice(list(param.choices))
    if param.step is not None and not (param.type == "int" and param.step == 1):
        if not _is_multiple(param.low, param.step):
            # Ray rounds to multiples of q; Optuna's grid starts at low. Enumerate Optuna's grid.
            return tune.choice(grid_values(param))
        if param.type == "int":
            return tune.qrandint(param.low, param.high, param.step)  # both bounds inclusive
        return tune.quniform(param.low, param.high, param.step)
    if param.type == "int":
        # Ray's integer upper bound is exclusive; the study file's is inclusive.
        if param.log:
            return tune.lograndint(param.low, param.high + 1)
        return tune.randint(param.low, param.high + 1)
    if param.log:
        return tune.loguniform(param.low, param.high)
    return tune.uniform(param.low, param.high)


def _is_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return math.isclose(ratio, round(ratio), rel_tol=0, abs_tol=1e-9)


def is_gridable(param: ParamSpec) -> bool:
    """Whether the dimension has finitely many values (for the grid sampler)."""
    return param.type in ("categorical", "int") or param.step is not None


def grid_values(param: ParamSpec) -> list[Any]:
    """Every value of a finite dimension, low to high; ValueError for a continuous one."""
    if param.type == "categorical":
        return list(param.choices)
    if not is_gridable(param):
        raise ValueError(
            f"{param.name}: a continuous float has no grid; give it a step or use categorical"
        )
    step = param.step or 1
    count = int(math.floor((param.high - param.low) / step + 1e-9)) + 1
    values = [param.low + index * step for index in range(count)]
    if param.type == "float":
        # Avoid 0.30000000000000004 from accumulated steps.
        digits = max(0, -math.floor(math.log10(abs(step)))) + 6 if step else 6
        values = [round(value, digits) for value in values]
    return values


def to_grid_search_space(space: Iterable[ParamSpec]) -> dict[str, list[Any]]:
    """The `search_space` of optuna's GridSampler for `space` (every dimension must be finite)."""
    return {param.name: grid_values(param) for param in space}


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainingArguments overrides, model-config overrides with the `model.` prefix removed)."""
    training: dict[str, Any] = {}
    model: dict[str, Any] = {}
    for name, value in params.items():
        if name.startswith(MODEL_PREFIX):
            model[name[len(MODEL_PREFIX) :]] = value
        else:
            training[name] = value
    return training, model
