"""Sampler, pruner and scheduler: the file's choices for its backend, checked, or the defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpo.spec import ComponentSpec, ObjectiveSpec, ParamSpec
from hpo.study.defaults import default_pruner, default_sampler, default_scheduler
from hpo.study.problems import did_you_mean
from hpo.study.reader import Reader, is_number
from hpo.study.sections.components import check_built, read_component
from hpo.study.sections.horizons import check_pruner_horizon, check_scheduler_horizon, in_steps


def read_search(
    reader: Reader,
    backend: str,
    objective: ObjectiveSpec,
    training: dict[str, Any],
    space: tuple[ParamSpec, ...],
) -> tuple[ComponentSpec, ComponentSpec, ComponentSpec | None]:
    """(sampler, pruner, scheduler): the file's choices, checked, or the defaults."""
    if backend == "ray":
        sampler, pruner, scheduler = _ray_search(reader, objective, training, space)
    else:
        sampler, pruner, scheduler = _optuna_search(reader, objective, training)
    if sampler is not None:
        _check_sampler(reader, sampler, objective, space)
    return sampler or default_sampler(), pruner or ComponentSpec("none"), scheduler


def _optuna_search(
    reader: Reader, objective: ObjectiveSpec, training: dict[str, Any]
) -> tuple[ComponentSpec | None, ComponentSpec | None, None]:
    from hpo.search import components

    raw = reader.raw
    sampler: ComponentSpec | None = default_sampler()
    if raw.get("sampler") is not None:
        sampler = read_component(reader, "sampler", raw["sampler"], components.SAMPLERS)
    pruner: ComponentSpec | None = default_pruner(training)
    if raw.get("pruner") is not None:
        pruner = read_component(reader, "pruner", raw["pruner"], components.PRUNERS)
    if raw.get("scheduler") is not None:
        reader.warnings.append("scheduler: ignored by backend optuna, which prunes with `pruner`")
    if pruner is None or pruner.name == "none":
        return sampler, pruner, None
    check_pruner_horizon(reader, pruner, training)
    check_built(reader, "pruner", pruner, lambda: components.build_pruner(pruner))
    if objective.is_multi:
        reader.warnings.append(
            f"pruner: {pruner.name} switched off: Optuna cannot prune multi-objective studies"
        )
        return sampler, ComponentSpec("none"), None
    if training.get("eval_strategy", "no") == "no":
        reader.warnings.append(
            "pruner: training.eval_strategy is 'no', so trials report no intermediate "
            "values and nothing is pruned"
        )
    return sampler, pruner, None


def _ray_search(
    reader: Reader, objective: ObjectiveSpec, training: dict[str, Any], space: tuple[ParamSpec, ...]
) -> tuple[ComponentSpec | None, ComponentSpec | None, ComponentSpec | None]:
    from hpo.search import components

    raw = reader.raw
    scheduler: ComponentSpec | None = default_scheduler(training)
    if raw.get("scheduler") is not None:
        scheduler = read_component(reader, "scheduler", raw["scheduler"], components.SCHEDULERS)
    if scheduler is not None:
        scheduler = in_steps(scheduler, training)
        check_scheduler_horizon(reader, scheduler, training)
        _check_scheduler(reader, scheduler, objective, space)
    # Population-based schedulers explore by themselves; a model-based search would fight them.
    population_based = scheduler is not None and scheduler.name in ("pbt", "pb2")
    sampler: ComponentSpec | None = (
        ComponentSpec("random", {"seed": 0}) if population_based else default_sampler()
    )
    if raw.get("sampler") is not None:
        sampler = read_component(reader, "sampler", raw["sampler"], components.RAY_SAMPLERS)
    if raw.get("pruner") is not None:
        reader.warnings.append("pruner: ignored by backend ray, whose scheduler stops trials")
    if objective.is_multi:
        reader.problems.add(
            "objective", "backend ray takes one metric; its schedulers compare a single value"
        )
    return sampler, ComponentSpec("none"), scheduler


def _check_sampler(
    reader: Reader, sampler: ComponentSpec, objective: ObjectiveSpec, space: tuple[ParamSpec, ...]
) -> None:
    from hpo.search import components
    from hpo.search.space import is_gridable

    if sampler.name == "grid":
        for param in space:
            if not is_gridable(param):
                reader.problems.add(
                    f"space.{param.name}",
                    "a continuous float cannot be searched by sampler grid; give it a step or make it categorical",
                )
    if objective.is_multi and sampler.name not in components.MULTI_OBJECTIVE_SAMPLERS:
        reader.problems.add(
            "sampler.name",
            f"{sampler.name} handles one objective; for several use one of {', '.join(components.MULTI_OBJECTIVE_SAMPLERS)}",
        )
    if sampler.name in components.SAMPLERS:
        check_built(
            reader, "sampler", sampler, lambda: components.build_sampler(sampler, space=space)
        )


def _check_scheduler(
    reader: Reader,
    scheduler: ComponentSpec,
    objective: ObjectiveSpec,
    space: tuple[ParamSpec, ...],
) -> None:
    from hpo.search import components

    problems = reader.problems
    names = {p.name for p in space}
    if scheduler.name == "pbt":
        mutations = scheduler.options.get("hyperparam_mutations")
        # (An empty space is a Python space: `check_search_fits_space` refuses PBT there.)
        if mutations is None and space and not any(not p.is_model_param for p in space):
            problems.add(
                "scheduler",
                "pbt mutates training params, and space has none; add one (e.g. learning_rate)",
            )
        if mutations is not None:
            _check_named_values(
                reader,
                mutations,
                "scheduler.hyperparam_mutations",
                names,
                _mutation_values_ok,
                "a non-empty list of values",
            )
    if scheduler.name == "pb2":
        bounds = scheduler.options.get("hyperparam_bounds")
        if bounds is not None:
            _check_named_values(
                reader,
                bounds,
                "scheduler.hyperparam_bounds",
                names,
                _bounds_ok,
                "[low, high] with low < high",
            )
        elif space and not any(p.type != "categorical" and not p.is_model_param for p in space):
            problems.add("scheduler", "pb2 needs a numeric training param in space to tune")
    if "time_attr" in scheduler.options and not isinstance(scheduler.options["time_attr"], str):
        problems.found(
            "scheduler.time_attr",
            scheduler.options["time_attr"],
            "a reported metric name, e.g. training_iteration",
        )
    mode = "min" if objective.directions[0] == "minimize" else "max"
    check_built(
        reader,
        "scheduler",
        scheduler,
        lambda: components.build_scheduler(
            scheduler, metric=objective.metrics[0], mode=mode, space=space
        ),
    )


def _check_named_values(
    reader: Reader,
    value: Any,
    path: str,
    names: set[str],
    ok: Callable[[Any], bool],
    expected: str,
) -> None:
    """A mapping from space params to values, each value accepted by `ok`."""
    if not isinstance(value, dict) or not value:
        reader.problems.found(path, value, "a mapping of space params to values")
        return
    for key, values in value.items():
        if key not in names:
            reader.problems.add(f"{path}.{key}", f"not a param of space{did_you_mean(key, names)}")
        if not ok(values):
            reader.problems.found(f"{path}.{key}", values, expected)


def _mutation_values_ok(values: Any) -> bool:
    return isinstance(values, list) and len(values) > 0


def _bounds_ok(values: Any) -> bool:
    return (
        isinstance(values, list)
        and len(values) == 2
        and all(is_number(v) for v in values)
        and values[0] < values[1]
    )
