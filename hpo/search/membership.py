"""Whether a configuration lies inside a search space, and why not, in the space's own terms.

Used where configurations come from outside the sampler: the study file's `enqueue:` entries
(checked at validation) and the trials of an earlier study offered as a warm start. The rules
are those of the distributions `hpo.search.space` builds (Optuna's, both bounds inclusive, a
step counted from `low`); written out here so that the answer can say which bound or which
choice a value missed, and so that validation needs no optuna import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

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
    space does not have, a value outside its range, and (`complete`) a parameter of the space
    it lacks."""
    params = {param.name: param for param in space}
    fitted: dict[str, Any] = {}
    reasons = []
    for name, value in config.items():
        param = params.get(name)
        if param is None:
            reasons.append(f"{name} is not a parameter of the space")
            continue
        fitted[name], reason = fit_value(param, value)
        if reason is not None:
            reasons.append(reason)
    missing = [name for name in params if name not in config]
    if complete and missing:
        reasons.append(f"no value for {', '.join(missing)}")
    return fitted, reasons
