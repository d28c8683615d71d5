"""One search-space declaration (`ParamSpec`s from the study file) in each backend's terms.

A param with `when` (a conditional param) exists only in the trials where its parents took
one of the named values: `suggest` asks the parents first and the child only then
(define-by-run); `hpo.search.membership.fit_config` answers whether a params dict could have
come from the space, conditions included, and why not. A parent may itself be conditional
(the validator refuses cycles): a child of an absent parent is absent.

The same space must mean the same set of values everywhere: Optuna's bounds are inclusive,
Ray's `randint` upper bound is exclusive and Ray quantizes to multiples of `q` (Optuna steps
from `low`), so the conversions below correct for both. optuna and ray are imported lazily:
importing this module costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from hpo.attrs import MODEL_PREFIX
from hpo.spec import ParamSpec, StudySpec

if TYPE_CHECKING:  # pragma: no cover - typing only
    import optuna
    from optuna.distributions import BaseDistribution


def suggest(trial: optuna.Trial, space: Iterable[ParamSpec]) -> dict[str, Any]:
    """Ask `trial` for a value of each param whose conditions hold, parents before children;
    returns {name: value} in that order."""
    params: dict[str, Any] = {}
    for param in in_dependency_order(space):
        if not is_active(param, params):
            continue
        if param.type == "float":
            low, high = _bounds(param)
            params[param.name] = trial.suggest_float(
                param.name, low, high, log=param.log, step=param.step
            )
        elif param.type == "int":
            low, high = _bounds(param)
            params[param.name] = trial.suggest_int(
                param.name, low, high, step=cast(int, param.step or 1), log=param.log
            )
        else:
            params[param.name] = trial.suggest_categorical(param.name, list(param.choices))
    return params


def suggest_trial(trial: optuna.Trial, spec: StudySpec) -> dict[str, Any]:
    """Suggest one trial's params of the study: its declared space, or its Python space
    function called on the trial (returns what the function returned)."""
    if spec.space_function is None:
        return suggest(trial, spec.space)
    from hpo.search.python_space import load_space_function, returned_params

    return returned_params(spec.space_function, load_space_function(spec.space_function)(trial))


def define_by_run(spec: StudySpec) -> Any:
    """The study's space as the define-by-run callable of Ray's `OptunaSearch(space=...)`."""
    if spec.space_function is None:
        return DefineByRun(spec.space)
    from hpo.search.python_space import SpaceFunction

    return SpaceFunction(spec.space_function)


class DefineByRun:
    """`suggest` over a space as a picklable callable: Ray's `OptunaSearch(space=...)` takes
    a define-by-run function, and Tune pickles the searcher (with it) into its experiment
    state. Returns None, so the Ray config holds exactly the params suggested."""

    def __init__(self, space: Iterable[ParamSpec]) -> None:
        self.space = tuple(space)

    def __call__(self, trial: Any) -> None:
        suggest(trial, self.space)


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps true/false apart from 1/0 (YAML has both; Python equates them)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def is_active(param: ParamSpec, params: Mapping[str, Any]) -> bool:
    """Whether `param` exists in a trial whose params (so far) are `params`."""
    return all(
        parent in params and any(same_value(params[parent], value) for value in values)
        for parent, values in param.when
    )


def in_dependency_order(space: Iterable[ParamSpec]) -> list[ParamSpec]:
    """The space with every param after the parents its `when` names, otherwise in the
    file's order. ValueError on a cycle (the validator reports cycles before this runs)."""
    pending = list(space)
    names = {param.name for param in pending}
    ordered: list[ParamSpec] = []
    placed: set[str] = set()
    while pending:
        ready = [
            p
            for p in pending
            if all(parent in placed or parent not in names for parent, _ in p.when)
        ]
        if not ready:
            raise ValueError(f"the conditions of {[p.name for p in pending]} form a cycle")
        for param in ready:
            ordered.append(param)
            placed.add(param.name)
        pending = [p for p in pending if p.name not in placed]
    return ordered


def describe_when(param: ParamSpec) -> str:
    """`when` in words: "optim is adamw_torch and warmup_steps is one of [0, 10]"."""
    parts = []
    for parent, values in param.when:
        shown = repr(values[0]) if len(values) == 1 else f"one of {list(values)!r}"
        parts.append(f"{parent} is {shown}")
    return " and ".join(parts)


def describe_range(param: ParamSpec) -> str:
    if param.type == "categorical":
        return f"choices {list(param.choices)!r}"
    step = f" step {param.step!r}" if param.step is not None else ""
    return f"{param.type} {param.low!r}..{param.high!r}{step}"


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
            low, high = _bounds(param)
            distributions[param.name] = FloatDistribution(low, high, log=param.log, step=param.step)
        elif param.type == "int":
            low, high = _bounds(param)
            distributions[param.name] = IntDistribution(
                low, high, log=param.log, step=cast(int, param.step or 1)
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
    low, high = _bounds(param)
    if param.step is not None and not (param.type == "int" and param.step == 1):
        if not _is_multiple(low, param.step):
            # Ray rounds to multiples of q; Optuna's grid starts at low. Enumerate Optuna's grid.
            return tune.choice(grid_values(param))
        if param.type == "int":
            return tune.qrandint(low, high, param.step)  # both bounds inclusive
        return tune.quniform(low, high, param.step)
    if param.type == "int":
        # Ray's integer upper bound is exclusive; the study file's is inclusive.
        if param.log:
            return tune.lograndint(low, high + 1)
        return tune.randint(low, high + 1)
    if param.log:
        return tune.loguniform(low, high)
    return tune.uniform(low, high)


def _bounds(param: ParamSpec) -> tuple[Any, Any]:
    """A numeric param's low and high (validation gave both; a categorical has neither).

    `Any`: an int param's bounds are ints and a float param's floats, which ParamSpec's one
    `float | int | None` field does not say."""
    assert param.low is not None and param.high is not None, param.name
    return param.low, param.high


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
    low, high = _bounds(param)
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    values = [low + index * step for index in range(count)]
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
