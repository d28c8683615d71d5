"""The `space` section: each parameter's name (a training field or model.<attribute>), range
and conditions (`when:`, checked in `space_conditions.py`), or a Python space function
(`space: package.module:function`, dry-run in `space_function.py`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from hpo.attrs import DATA_PREFIX, MODEL_PREFIX, SEARCHABLE_DATA_PARAMS
from hpo.spec import ComponentSpec, ParamSpec
from hpo.study.keys import PARAM_KEYS, UNSEARCHABLE_PARAMS
from hpo.study.problems import did_you_mean
from hpo.study.reader import Reader, is_int, is_number
from hpo.study.sections.model import BuiltModel, config_keys
from hpo.study.sections.space_conditions import check_conditions, read_when


def read_space(
    reader: Reader, built: BuiltModel, field_names: frozenset[str]
) -> tuple[ParamSpec, ...]:
    """The well-formed parameters; a problem for each name or definition that is not.
    () for a Python space (`space: package.module:function`)."""
    raw = reader.raw
    if isinstance(raw.get("space"), str):
        return ()
    section = reader.mapping("space", required=True)
    if "space" in raw and isinstance(raw["space"], dict) and not section:
        reader.problems.add("space", "empty; expected at least one parameter to search")
    params = []
    for name, definition in section.items():
        check_param_name(reader, name, built, field_names)
        param = _param(reader, name, definition)
        if param is not None:
            params.append(param)
    check_conditions(reader, tuple(params), {str(name) for name in section})
    return tuple(params)


def check_param_name(
    reader: Reader,
    name: str,
    built: BuiltModel,
    field_names: frozenset[str],
    path: str | None = None,
) -> None:
    """A problem at `path` (default space.<name>) unless `name` can be searched."""
    path = path or f"space.{name}"
    config = built.config
    if name in UNSEARCHABLE_PARAMS:
        where = "model:" if name == "model.trust_remote_code" else "training:"
        reader.problems.add(
            path,
            "decides which code runs, which credentials are used or where files go, so it is "
            f"never searched; if you mean it, set it as a fixed key of {where}",
        )
        return
    if name.startswith(DATA_PREFIX):  # per-trial data settings; the task is checked with data
        if name not in SEARCHABLE_DATA_PARAMS:
            searchable = ", ".join(SEARCHABLE_DATA_PARAMS)
            reader.problems.add(path, f"not a searchable data setting; expected {searchable}")
        return
    if name.startswith(MODEL_PREFIX):
        attribute = name[len(MODEL_PREFIX) :]
        if not attribute:
            reader.problems.add(path, "expected model.<config attribute>, e.g. model.n_layer")
        elif config is not None and not hasattr(config, attribute):
            model_type = getattr(config, "model_type", "model")
            hint = did_you_mean(attribute, config_keys(config))
            reader.problems.add(
                path, f"{attribute!r} is not an attribute of a {model_type} config{hint}"
            )
    elif name not in field_names:
        hint = did_you_mean(name, sorted(field_names))
        reader.problems.add(
            path, f"neither a TrainingArguments field nor model.<config attribute>{hint}"
        )


def _param(reader: Reader, name: str, definition: Any) -> ParamSpec | None:
    path = f"space.{name}"
    problems = reader.problems
    if not isinstance(definition, dict) or not definition:
        problems.found(path, definition, "{type: float|int|categorical, ...}")
        return None
    kind = definition.get("type")
    if not isinstance(kind, str) or kind not in PARAM_KEYS:
        expected = "one of float, int, categorical"
        if kind is None:
            problems.add(f"{path}.type", f"missing; expected {expected}")
        else:
            problems.found(f"{path}.type", kind, expected, did_you_mean(kind, PARAM_KEYS))
        return None
    allowed = PARAM_KEYS[kind]
    for key in definition:
        if key not in allowed:
            other = [t for t, keys in PARAM_KEYS.items() if key in keys and t != kind]
            note = (
                f"; {key} applies to type {' / '.join(other)}"
                if other
                else did_you_mean(key, allowed)
            )
            problems.add(
                f"{path}.{key}",
                f"unknown key for type {kind}; expected one of {', '.join(allowed)}{note}",
            )
    when = read_when(reader, name, definition.get("when"))
    if kind == "categorical":
        param = _categorical(reader, name, definition.get("choices"))
    else:
        param = _numeric(reader, name, kind, definition)
    return None if param is None else dataclasses.replace(param, when=when)


def _categorical(reader: Reader, name: str, choices: Any) -> ParamSpec | None:
    path = f"space.{name}.choices"
    problems = reader.problems
    if choices is None:
        problems.add(path, "missing; expected a non-empty list of values")
        return None
    if not isinstance(choices, list) or not choices:
        problems.found(path, choices, "a non-empty list of values")
        return None
    ok = True
    for index, choice in enumerate(choices):
        if choice is not None and not isinstance(choice, (bool, int, float, str)):
            problems.found(f"{path}[{index}]", choice, "a number, text, true/false or null")
            ok = False
    if ok and len({repr(c) for c in choices}) != len(choices):
        problems.found(path, choices, "distinct values")
        ok = False
    return ParamSpec(name=name, type="categorical", choices=tuple(choices)) if ok else None


def _numeric(
    reader: Reader, name: str, kind: str, definition: Mapping[str, Any]
) -> ParamSpec | None:
    path = f"space.{name}"
    problems = reader.problems
    is_ok = is_int if kind == "int" else is_number
    expected = "an integer" if kind == "int" else "a number"
    bounds = {}
    for key in ("low", "high"):
        value = definition.get(key)
        if value is None:
            problems.add(f"{path}.{key}", f"missing; expected {expected}")
        elif not is_ok(value) or (kind == "float" and not math.isfinite(value)):
            problems.found(f"{path}.{key}", value, expected)
        else:
            bounds[key] = value
    log = definition.get("log", False)
    if not isinstance(log, bool):
        problems.found(f"{path}.log", log, "true or false")
        log = False
    step = definition.get("step")
    if step is not None and (not is_ok(step) or step <= 0):
        problems.found(f"{path}.step", step, f"{expected} > 0")
        step = None
    if len(bounds) < 2:
        return None
    low, high = bounds["low"], bounds["high"]
    problems_before = len(problems)
    if low > high:
        problems.add(path, f"low {low!r} > high {high!r}; expected low <= high")
    if log and low <= 0:
        problems.add(
            f"{path}.low", f"found {low!r} with log: true; expected low > 0 on a log scale"
        )
    if log and step is not None and not (kind == "int" and step == 1):
        problems.add(f"{path}.step", f"found {step!r} with log: true; a log scale takes no step")
    if low == high:
        problems.add(
            path,
            f"low == high ({low!r}): a parameter that cannot vary belongs in training: "
            "(or model.config:), not in space",
        )
    elif step is not None and low < high and step > high - low:
        problems.add(
            f"{path}.step",
            f"{step!r} exceeds the range {low!r}..{high!r}, so the only value is {low!r}; "
            "expected a step <= high - low",
        )
    if len(problems) > problems_before:
        return None
    if kind == "float":
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    return ParamSpec(name=name, type=kind, low=low, high=high, log=log, step=step)


def check_search_fits_space(
    reader: Reader,
    sampler: ComponentSpec,
    scheduler: ComponentSpec | None,
    space: tuple[ParamSpec, ...],
    space_function: str | None,
) -> None:
    """The searches that need every param in every trial, refused for a define-by-run space
    (`when:` or a Python space): a grid is the product of fixed value lists, and PBT / PB2
    mutate each param of a running trial on its own, which would break its conditions."""
    conditional = [p.name for p in space if p.is_conditional]
    if space_function is None and not conditional:
        return
    what = (
        f"a Python space ({space_function})"
        if space_function is not None
        else f"conditional params ({', '.join(conditional)})"
    )
    if sampler.name == "grid":
        reader.problems.add(
            "sampler.name",
            f"grid needs a fixed list of values for every param, and {what} vary by trial; "
            "use tpe or random",
        )
    if scheduler is not None and scheduler.name in ("pbt", "pb2"):
        reader.problems.add(
            "scheduler.name",
            f"{scheduler.name} mutates each param of a running trial on its own, which {what} "
            "do not allow; use asha, or a flat space",
        )
