"""What the Ray backend starts a study from: the warm-start copies and the `enqueue:` entries (`hpo.backends.warm_start`), handed to
a new searcher as `SearchStarts`. Imports no ray: `tuner` imports it at the top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpo.spec import StudySpec


@dataclass(frozen=True)
class SearchStarts:
    """What a new searcher starts from: the `enqueue:` entries to evaluate first, and the
    finished trials (warm-start copies, optuna FrozenTrials) that seed TPE."""

    points: list[dict[str, Any]] = field(default_factory=list)
    evaluated: list[Any] = field(default_factory=list)


def start_study(
    spec: StudySpec,
    rerun: Any,
    stored_attrs: dict[str, Any] | None,
    warm: Any,
    *,
    restoring: bool,
) -> SearchStarts:
    """Record the study file, add the warm-start copies to the storage and mark the new
    `enqueue:` entries queued (each once per study); returns what a new searcher starts
    from: those entries, and every warm-start copy the study holds. A restored experiment
    keeps its own searcher: the entries then wait for a new one."""
    import optuna

    from hpo.backends import warm_start
    from hpo.storage.rdb import open_storage

    storage = open_storage(spec.storage)
    study = optuna.load_study(study_name=spec.name, storage=storage)
    lines, queued = warm_start.start_study(
        spec, study, storage.engine, rerun, stored_attrs, warm, queue=False, enqueue=not restoring
    )
    if restoring and rerun.space_changes:
        lines.append(
            "note: a restored Ray experiment keeps the space it was started with; the new "
            "space applies to the next experiment (once this one's budget is met)"
        )
    for line in lines:
        print(line)
    evaluated = warm_start.warm_start_copies(study.get_trials(deepcopy=False))
    if evaluated and spec.sampler.name != "tpe":
        print(f"note: sampler {spec.sampler.name} does not learn from the warm-start trials")
    return SearchStarts(points=queued, evaluated=evaluated)
