"""Whether a configuration lies inside a search space, and why not, in the space's own terms.

Used where configurations come from outside the sampler: the study file's `enqueue:` entries
(checked at validation) and the trials of an earlier study offered as a warm start; a Python
space is known only by running it, so `fit_replayed` replays its function on the configuration
and judges it by the distributions it suggested from. The rules are those of the distributions `hpo.search.space` builds (Optuna's, both bounds inclusive, a
step counted from `low`); written out here so that the answer can say which bound or which
choice a value missed, and so that validation needs no optuna import.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from hpo.errors import HpoError
from hpo.search.space import describe_when, in_dependency_order, is_active
from hpo.spec import ParamSpec

# A value on a float grid may carry rounding from its decimal form (0.1 + 2 * 0.1).
_GRID_TOLERANCE = 1e-9


def fit_value(param: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """(the value as the space holds it, None) when `value` is one of `param`'s values, else
    (value, why not: e.g. "learning_rate=0.5 > high=0.1")."""
    name = param.name
    if param.type == "categorical":
        for choice in param.choices:
            # YAML's true is also 1: a bool only matches a bool.
            if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
                return choice, None
        return value, f"{name}={value!r} is not among the choices {list(param.choices)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if param.type == "int" else "a number"
        return value, f"{name}={value!r} is not {kind}"
    if param.type == "int":
        if isinstance(value, float) and not value.is_integer():
            return value, f"{name}={value!r} is not an integer"
        value = int(value)
    elif not math.isfinite(value):
        return value, f"{name}={value!r} is not a finite number"
    if value < param.low:
        return value, f"{name}={value!r} < low={param.low!r}"
    if value > param.high:
        return value, f"{name}={value!r} > high={param.high!r}"
    step = param.step if param.step is not None else (1 if param.type == "int" else None)
    if step is not None and not param.log:
        steps = (value - param.low) / step
        if abs(steps - round(steps)) > _GRID_TOLERANCE * max(1.0, abs(steps)):
            return value, (
                f"{name}={value!r} is not on the grid low={param.low!r} + k * step={step!r}"
            )
    return (float(value) if param.type == "float" else value), None


def fit_config(
    config: Mapping[str, Any], space: Iterable[ParamSpec], *, complete: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """(the configuration as the space holds it, every reason it does not fit): a name the
    space does not have, a value outside its range, a conditional param given where its
    `when` does not hold, and (`complete`) a param of the space it lacks. A conditional param
    whose `when` does not hold is not lacking: the trial never had it. The one answer to
    "could this configuration be one trial of the space" (`when` judged on the fitted values)."""
    space = tuple(space)
    names = {param.name for param in space}
    fitted: dict[str, Any] = {}
    reasons = [f"{name} is not a parameter of the space" for name in config if name not in names]
    missing, rejected = [], set()
    for param in in_dependency_order(space):
        # A child of a rejected value is not judged again: the parent's reason says it all.
        judged = not any(parent in rejected for parent, _ in param.when)
        active = is_active(param, fitted)
        if param.name not in config:
            if active:
                missing.append(param.name)
            continue
        value, reason = fit_value(param, config[param.name])
        if reason is not None:
            rejected.add(param.name)
            reasons.append(reason)
        elif not active and judged:
            rejected.add(param.name)
            reasons.append(
                f"{param.name} is given, but exists only when {describe_when(param)} "
                f"(here {_parents_here(param, config)})"
            )
        elif active:
            fitted[param.name] = value
    if complete and missing:
        reasons.append(f"no value for {', '.join(missing)}")
    # In the configuration's own order, as given.
    return {name: fitted[name] for name in config if name in fitted}, reasons


def _parents_here(param: ParamSpec, config: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{parent}={config[parent]!r}" if parent in config else f"no {parent}"
        for parent, _ in param.when
    )


def fit_replayed(
    ref: str, config: Mapping[str, Any], *, what: str
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the configuration as the function's distributions hold it, those distributions, every
    reason it is not one trial of the function): a Python space cannot be judged without
    running it, so the function is replayed on a FixedTrial of `config`; it must suggest
    exactly the params of `config` (a param it suggests but `config` lacks makes it raise),
    each value inside the distribution it was suggested from (`fit_config`'s rules and texts).
    """
    from hpo.search.python_space import replay

    try:
        with warnings.catch_warnings():
            # FixedTrial warns of a value outside its distribution; fit_config says which bound.
            warnings.simplefilter("ignore", UserWarning)
            _, distributions = replay(ref, config, what=what)
    except HpoError as error:
        return dict(config), {}, [str(error)]
    fitted, reasons = fit_config(config, [param_of(n, d) for n, d in distributions.items()])
    return fitted, distributions, reasons


def param_of(name: str, distribution: Any) -> ParamSpec:
    """An optuna distribution as the `ParamSpec` that `to_optuna_distributions` turns into it."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return ParamSpec(name, "categorical", choices=tuple(distribution.choices))
    kind = "int" if isinstance(distribution, IntDistribution) else "float"
    return ParamSpec(
        name,
        kind,
        distribution.low,
        distribution.high,
        log=distribution.log,
        step=distribution.step,
    )
