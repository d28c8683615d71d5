"""Samplers, pruners and schedulers by the names a study file uses, built from their options.

The study validator and the backends share these builders, so that what validation accepted
is exactly what runs. Each library is imported only when one of its components is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from hpo.spec import ComponentSpec, ParamSpec

SAMPLERS = {
    "tpe": "optuna.samplers:TPESampler",
    "random": "optuna.samplers:RandomSampler",
    "cmaes": "optuna.samplers:CmaEsSampler",
    "gp": "optuna.samplers:GPSampler",
    "nsga2": "optuna.samplers:NSGAIISampler",
    "qmc": "optuna.samplers:QMCSampler",
    "grid": "optuna.samplers:GridSampler",
}
PRUNERS = {
    "median": "optuna.pruners:MedianPruner",
    "percentile": "optuna.pruners:PercentilePruner",
    "successive_halving": "optuna.pruners:SuccessiveHalvingPruner",
    "hyperband": "optuna.pruners:HyperbandPruner",
    "patient": "optuna.pruners:PatientPruner",
    "threshold": "optuna.pruners:ThresholdPruner",
    "wilcoxon": "optuna.pruners:WilcoxonPruner",
    "none": "optuna.pruners:NopPruner",
}
SCHEDULERS = {
    "asha": "ray.tune.schedulers:ASHAScheduler",
    "hyperband": "ray.tune.schedulers:HyperBandScheduler",
    "pbt": "ray.tune.schedulers:PopulationBasedTraining",
    "pb2": "ray.tune.schedulers.pb2:PB2",
    "median": "ray.tune.schedulers:MedianStoppingRule",
}
# Schedulers whose trials continue from another trial's checkpoint with mutated params.
POPULATION_SCHEDULERS = ("pbt", "pb2")
# The samplers Ray's search accepts: random (Tune's own variant generator) or TPE (OptunaSearch).
RAY_SAMPLERS = ("random", "tpe")
# Optuna samplers that handle several objectives; cmaes does not.
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "gp", "nsga2", "qmc", "grid")

# Packages a component needs at run time that its constructor does not check.
REQUIREMENTS = {
    ("sampler", "cmaes"): ("cmaes",),
    ("sampler", "gp"): ("scipy", "torch"),
    ("sampler", "qmc"): ("scipy",),
    ("pruner", "wilcoxon"): ("scipy",),
    ("scheduler", "pb2"): ("sklearn",),
}
_PIP_NAMES = {"sklearn": "scikit-learn"}

# Constructor parameters the backend fills in; a study file must not set them.
FILLED_BY_BACKEND = {
    ("sampler", "grid"): {"search_space": "built from `space`"},
    ("scheduler", "*"): {
        "metric": "set from objective.metric",
        "mode": "set from objective.direction",
    },
}

REGISTRIES = {"sampler": SAMPLERS, "pruner": PRUNERS, "scheduler": SCHEDULERS}


def component_class(kind: str, name: str) -> type:
    """The class behind `name` in the `kind` registry (imports its library)."""
    module_name, class_name = REGISTRIES[kind][name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def option_names(kind: str, name: str) -> list[str]:
    """The options a study file may give: the constructor's parameters minus the backend's."""
    filled = set(FILLED_BY_BACKEND.get((kind, name), {})) | set(
        FILLED_BY_BACKEND.get((kind, "*"), {})
    )
    parameters = inspect.signature(component_class(kind, name)).parameters.values()
    return [
        p.name
        for p in parameters
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in filled
    ]


def backend_filled(kind: str, name: str) -> dict[str, str]:
    """Options the backend sets itself, with why (for error messages)."""
    return {**FILLED_BY_BACKEND.get((kind, "*"), {}), **FILLED_BY_BACKEND.get((kind, name), {})}


def missing_packages(kind: str, name: str) -> list[str]:
    """pip names of the packages `name` needs that are not installed here."""
    needed = REQUIREMENTS.get((kind, name), ())
    return [_PIP_NAMES.get(m, m) for m in needed if importlib.util.find_spec(m) is None]


def build_sampler(
    spec: ComponentSpec, *, space: Iterable[ParamSpec] = (), seed_offset: int = 0
) -> Any:
    """An Optuna sampler; each worker passes its index as `seed_offset` so seeds differ."""
    options = dict(spec.options)
    if seed_offset and options.get("seed") is not None:
        options["seed"] = int(options["seed"]) + seed_offset
    if spec.name == "grid":
        from hpo.search.space import to_grid_search_space

        options["search_space"] = to_grid_search_space(space)
    return component_class("sampler", spec.name)(**options)


def build_pruner(spec: ComponentSpec) -> Any:
    """An Optuna pruner; `patient` wraps the pruner given as its `wrapped_pruner` option."""
    options = dict(spec.options)
    if spec.name == "patient":
        wrapped = options.get("wrapped_pruner")
        options["wrapped_pruner"] = None if wrapped is None else build_pruner(wrapped)
    return component_class("pruner", spec.name)(**options)


def build_scheduler(
    spec: ComponentSpec, *, metric: str, mode: str, space: Iterable[ParamSpec] = ()
) -> Any:
    """A Ray Tune scheduler for `metric` ("min" | "max"); PBT/PB2 mutate the training params
    of `space` unless the study names `hyperparam_mutations` / `hyperparam_bounds`."""
    options = dict(spec.options)
    # A population member continues from another's checkpoint, so the architecture (model.*)
    # cannot change under it: by default only training params are mutated.
    space = tuple(p for p in space if not p.is_model_param)
    numeric = [p for p in space if p.type != "categorical"]
    if spec.name == "pbt" and "hyperparam_mutations" not in options:
        from hpo.search.space import to_ray_param_space

        options["hyperparam_mutations"] = to_ray_param_space(space)
    elif spec.name == "pbt":
        options["hyperparam_mutations"] = _lists(options["hyperparam_mutations"])
    if spec.name == "pb2" and "hyperparam_bounds" not in options:
        options["hyperparam_bounds"] = {p.name: [p.low, p.high] for p in numeric}
    return component_class("scheduler", spec.name)(metric=metric, mode=mode, **options)


def _lists(mutations: Mapping[str, Any]) -> dict[str, Any]:
    return {name: list(values) for name, values in mutations.items()}
