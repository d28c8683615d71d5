"""Ray schedulers and Optuna pruners counted in the same unit: the trainer's global step.

A study file means one thing by a number of steps everywhere: Optuna's `min_resource: 40` is
step 40, and so is a Ray scheduler's `grace_period: 40`. Ray's schedulers count in their
`time_attr`, Tune's `training_iteration` (one per report) unless told otherwise, so hpo sets
`time_attr: step` (the global step every Ray report carries) and, when the study knows its
length, `max_t: max_steps`. A study may still name `time_attr: training_iteration`.

A value beyond the run's length leaves the scheduler or pruner inert: nothing is ever stopped,
and nothing says so. Those values are refused.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from hpo.attrs import STEP_KEY
from hpo.spec import ComponentSpec
from hpo.study.reader import Reader, is_int, is_number

ITERATIONS = "training_iteration"
# Options counted in the scheduler's time_attr.
SCHEDULER_TIMES = ("grace_period", "max_t", "perturbation_interval", "min_time_slice")
# Optuna pruner options counted in steps (the step a trial reports at).
PRUNER_STEPS = ("min_resource", "n_warmup_steps")


def in_steps(scheduler: ComponentSpec, training: Mapping[str, Any]) -> ComponentSpec:
    """The scheduler with `time_attr: step` and `max_t: max_steps` where it left them out."""
    from hpo.search import components

    names = components.option_names("scheduler", scheduler.name)
    options = dict(scheduler.options)
    if "time_attr" in names:
        options.setdefault("time_attr", STEP_KEY)
    max_steps = _max_steps(training)
    if "max_t" in names and options.get("time_attr") == STEP_KEY and max_steps is not None:
        options.setdefault("max_t", max_steps)
    return dataclasses.replace(scheduler, options=options)


def check_scheduler_horizon(
    reader: Reader, scheduler: ComponentSpec, training: Mapping[str, Any]
) -> None:
    """Refuse any time past the end of every trial, or a grace period past max_t."""
    options = scheduler.options
    unit = options.get("time_attr")
    horizon = _horizon(unit, training)
    beyond_the_end = set()
    for key in ("grace_period", "perturbation_interval"):
        value = options.get(key)
        if horizon is not None and is_number(value) and value > horizon[0]:
            length, what = horizon
            beyond_the_end.add(key)
            reader.problems.add(
                f"scheduler.{key}",
                f"{value} {unit}, but a trial ends at {unit} {length} ({what}), so the "
                f"scheduler never acts; expected {key} <= {length}",
            )
    grace, max_t = options.get("grace_period"), options.get("max_t")
    if "grace_period" not in beyond_the_end and is_number(grace) and is_number(max_t):
        if grace > max_t:
            reader.problems.add(
                "scheduler.grace_period",
                f"{grace} > max_t {max_t}: no trial is judged before it ends; "
                "expected grace_period <= max_t",
            )


def check_pruner_horizon(
    reader: Reader, pruner: ComponentSpec, training: Mapping[str, Any], path: str = "pruner"
) -> None:
    """Refuse a pruner whose first judgement comes after max_steps."""
    max_steps = _max_steps(training)
    if max_steps is None:
        return
    for key in PRUNER_STEPS:
        value = pruner.options.get(key)
        if is_number(value) and value > max_steps:
            reader.problems.add(
                f"{path}.{key}",
                f"{value} > max_steps {max_steps}: trials report at their global step, so no "
                f"trial would ever be pruned; expected {key} <= {max_steps}",
            )
    wrapped = pruner.options.get("wrapped_pruner")
    if isinstance(wrapped, ComponentSpec):
        check_pruner_horizon(reader, wrapped, training, f"{path}.wrapped_pruner")


def _max_steps(training: Mapping[str, Any]) -> int | None:
    max_steps = training.get("max_steps")
    return max_steps if is_int(max_steps) and max_steps > 0 else None


def _horizon(unit: Any, training: Mapping[str, Any]) -> tuple[int, str] | None:
    """(the last value of `unit` a trial reports, how it follows), when the study says."""
    max_steps = _max_steps(training)
    if max_steps is None:
        return None
    if unit == STEP_KEY:
        return max_steps, f"max_steps {max_steps}"
    eval_steps = training.get("eval_steps")
    if unit == ITERATIONS and training.get("eval_strategy") == "steps" and is_int(eval_steps):
        if eval_steps >= 1:
            reports = math.ceil(max_steps / eval_steps)
            return reports, f"{reports} reports: max_steps {max_steps} / eval_steps {eval_steps}"
    return None
