"""The full validation: one pass over the file, section by section, into a `StudySpec`.

Two passes. The shape pass needs no heavy library: unknown or misspelt keys, wrong types,
the training field names, the space's definitions, component names. When it finds a problem,
the full pass skips the model section (transformers, torch, a user's factory: seconds) and
reports every other problem, so a one-key typo costs a fraction of a second. A file with the
right shape goes through every check, the model built on the meta device included.

Sections are read in the order later ones depend on: the model's config before the data it
must fit and the space that names its attributes; the training fields before the space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hpo.errors import StudyFileError
from hpo.search import components
from hpo.spec import BACKENDS, TASKS, ModelSpec, StudySpec
from hpo.study.keys import (
    DATA_KEYS,
    DATA_SOURCES,
    KEEP_CHOICES,
    MODEL_KEYS,
    MODEL_SOURCES,
    TOP_LEVEL_KEYS,
    study_name,
)
from hpo.study.reader import Reader
from hpo.study.sections.components import component_shape
from hpo.study.sections.data import read_data
from hpo.study.sections.enqueue import read_enqueue
from hpo.study.sections.hub import read_push_best_to_hub
from hpo.study.sections.metrics import check_objective_metrics, read_metrics
from hpo.study.sections.model import BuiltModel, check_model_ends, read_model
from hpo.study.sections.ray import read_ray
from hpo.study.sections.run import (
    read_budget,
    read_objective,
    read_placement,
    read_workers,
    warn_about_budget,
)
from hpo.study.sections.search import read_search
from hpo.study.sections.space import check_search_fits_space, read_space
from hpo.study.sections.space_function import check_space_function, read_space_function
from hpo.study.sections.storage import read_storage
from hpo.study.sections.tasks import check_data_params
from hpo.study.sections.training import (
    check_eval_grid,
    check_output_dir,
    check_training_values,
    read_training,
)
from hpo.study.sections.warm_start import read_warm_start


def validate(
    raw: dict[str, Any],
    source: str,
    *,
    storage: str | None,
    n_trials: int | None,
    workers: int | None,
    on_shape_ok: Callable[[str, int, dict[str, Any]], None] | None = None,
) -> StudySpec:
    """The study in `raw`, with the command line's overrides; a StudyFileError lists every problem.

    `on_shape_ok(backend, workers, raw)` is called once the file's shape is right, before the
    checks that import torch: `hpo run` starts its workers' imports there.
    """
    reader = Reader(raw)
    problems = reader.problems
    problems.unknown_keys(raw, TOP_LEVEL_KEYS, "")
    name = study_name(raw.get("name"), problems)
    backend = reader.choice(raw.get("backend", "optuna"), "backend", BACKENDS)
    worker_count = read_workers(reader, workers, backend)
    placement = read_placement(reader, workers)
    keep = reader.choice(raw.get("keep", "best"), "keep", KEEP_CHOICES)
    objective = read_objective(reader)
    budget = read_budget(reader, n_trials)
    storage_url = read_storage(
        raw.get("storage"), storage, name or "study", problems, workers=worker_count
    )
    _check_shape(reader, backend)
    shape_ok = not problems
    if not shape_ok:
        # The file must be fixed anyway: report what the light checks find now, and leave
        # the model (transformers, torch, a user's factory module: seconds) for the next run.
        model, built_model = _model_unchecked(reader), BuiltModel()
    else:
        if on_shape_ok is not None:
            on_shape_ok(backend, worker_count, raw)
        model, built_model = read_model(reader)
    data = read_data(reader, model, built_model)
    training, field_names = read_training(reader)
    metrics = read_metrics(reader)
    check_objective_metrics(reader, objective, metrics, training)
    space = read_space(reader, built_model, field_names)
    space_function = read_space_function(reader)
    space_function_runs = False  # imported and dry-run without a problem: enqueue replays it
    if space_function is not None and shape_ok:
        # Imports the user's module and runs it: after the shape pass, like the model factory.
        before = len(problems)
        check_space_function(reader, space_function, training, built_model, field_names)
        space_function_runs = len(problems) == before
    check_training_values(reader, training, space, field_names)
    check_eval_grid(reader, training, space)
    check_output_dir(reader, training, name or "study")
    check_model_ends(reader, built_model, space)
    check_data_params(reader, model.task, space)
    sampler, pruner, scheduler = read_search(reader, backend, objective, training, space)
    check_search_fits_space(reader, sampler, scheduler, space, space_function)
    # `workers: auto` on Ray: as many trials at once as the cluster's resources allow.
    ray = read_ray(reader, None if placement.auto else worker_count)
    if backend == "ray" and placement.trial_processes > 1:
        problems.add(
            "trial_processes",
            f"{placement.trial_processes} processes per trial run only on `backend: optuna`; "
            "on Ray a trial is one actor (use ray.resources_per_trial for its CPUs and GPUs)",
        )
    push_best_to_hub = read_push_best_to_hub(reader)
    enqueue = read_enqueue(
        reader,
        space,
        backend=backend,
        sampler=sampler.name,
        budget=budget,
        space_function=space_function,
        replay=space_function_runs,
    )
    warm_start = read_warm_start(reader, name, storage_url)
    warn_about_budget(reader, budget)
    if problems:
        raise StudyFileError(source, problems.lines)
    return StudySpec(
        name=name,
        storage=storage_url,
        backend=backend,
        objective=objective,
        budget=budget,
        workers=worker_count,
        sampler=sampler,
        pruner=pruner,
        scheduler=scheduler,
        ray=ray,
        model=model,
        data=data,
        training=training,
        space=space,
        space_function=space_function,
        keep=keep,
        placement=placement,
        metrics=metrics,
        source_path=source,
        push_best_to_hub=push_best_to_hub,
        enqueue=enqueue,
        warm_start=warm_start,
        warnings=tuple(reader.warnings),
    )


def _check_shape(reader: Reader, backend: str) -> None:
    """The checks of the shape pass that the sections repeat later with more to go on:
    section keys, training field names and the space's definitions (model.* names are judged
    against the built config later). Imports nothing heavy: `trainer.args` has no torch."""
    problems = reader.problems
    model = reader.mapping("model", required=True)
    problems.unknown_keys(model, MODEL_KEYS, "model")
    problems.exactly_one_of(model, MODEL_SOURCES, "model")
    data = reader.mapping("data", required=True)
    problems.unknown_keys(data, DATA_KEYS, "data")
    problems.exactly_one_of(data, DATA_SOURCES, "data")
    training, field_names = read_training(reader)
    space = read_space(reader, BuiltModel(), field_names)
    read_space_function(reader)
    check_training_values(reader, training, space, field_names)
    registries: dict[str, Mapping[str, str] | tuple[str, ...]] = (
        {"sampler": components.RAY_SAMPLERS, "scheduler": components.SCHEDULERS}
        if backend == "ray"
        else {"sampler": components.SAMPLERS, "pruner": components.PRUNERS}
    )
    for kind, registry in registries.items():
        if reader.raw.get(kind) is not None:
            component_shape(reader, kind, reader.raw[kind], registry)


def _model_unchecked(reader: Reader) -> ModelSpec:
    """The model section's task, for the data checks, without building anything."""
    model = reader.raw.get("model")
    task = model.get("task", TASKS[0]) if isinstance(model, dict) else TASKS[0]
    return ModelSpec(task=task if task in TASKS else TASKS[0])
