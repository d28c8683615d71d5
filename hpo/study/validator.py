"""The full validation: one pass over the file, section by section, into a `StudySpec`.

Sections are read in the order later ones depend on: the model's config before the data it
must fit and the space that names its attributes; the training fields before the space.
"""

from __future__ import annotations

from typing import Any

from hpo.errors import StudyFileError
from hpo.spec import BACKENDS, StudySpec
from hpo.study.keys import KEEP_CHOICES, TOP_LEVEL_KEYS, study_name
from hpo.study.reader import Reader
from hpo.study.sections.data import read_data
from hpo.study.sections.hub import read_push_best_to_hub
from hpo.study.sections.model import check_model_ends, read_model
from hpo.study.sections.ray import read_ray
from hpo.study.sections.run import read_budget, read_objective, read_workers, warn_about_budget
from hpo.study.sections.search import read_search
from hpo.study.sections.space import read_space
from hpo.study.sections.storage import read_storage
from hpo.study.sections.training import check_training_values, read_training


def validate(
    raw: dict[str, Any],
    source: str,
    *,
    storage: str | None,
    n_trials: int | None,
    workers: int | None,
) -> StudySpec:
    """The study in `raw`, with the command line's overrides; a StudyFileError lists every problem."""
    reader = Reader(raw)
    problems = reader.problems
    problems.unknown_keys(raw, TOP_LEVEL_KEYS, "")
    name = study_name(raw.get("name"), problems)
    backend = reader.choice(raw.get("backend", "optuna"), "backend", BACKENDS)
    worker_count = read_workers(reader, workers)
    keep = reader.choice(raw.get("keep", "best"), "keep", KEEP_CHOICES)
    objective = read_objective(reader)
    budget = read_budget(reader, n_trials)
    storage_url = read_storage(
        raw.get("storage"), storage, name or "study", problems, workers=worker_count
    )
    model, built_model = read_model(reader)
    data = read_data(reader, model, built_model)
    training, field_names = read_training(reader)
    space = read_space(reader, built_model, field_names)
    check_training_values(reader, training, space, field_names)
    check_model_ends(reader, built_model, space)
    sampler, pruner, scheduler = read_search(reader, backend, objective, training, space)
    ray = read_ray(reader, worker_count)
    push_best_to_hub = read_push_best_to_hub(reader)
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
        keep=keep,
        source_path=source,
        push_best_to_hub=push_best_to_hub,
        warnings=tuple(reader.warnings),
    )
