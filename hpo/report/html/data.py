"""A study's trials for the report, read through optuna, and how the report thins them out.

Every figure of the report is drawn from the same list of frozen trials, so both backends'
studies (the Ray mirror writes optuna trials too) give the same report. Figures that would hold
too many points take an even sample (`thin`) and say so in their title.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from hpo.attrs import WORKER_ATTR

T = TypeVar("T")


@dataclasses.dataclass
class StudyData:
    name: str
    storage: str  # masked: it is printed in the report
    directions: list[str]
    metrics: list[str]
    trials: list[Any]  # optuna FrozenTrials, in trial-number order

    @property
    def is_multi(self) -> bool:
        return len(self.directions) > 1

    def with_state(self, *states: str) -> list[Any]:
        return [t for t in self.trials if t.state.name in states]

    @property
    def complete(self) -> list[Any]:
        return self.with_state("COMPLETE")


def load_study_data(ref: Any) -> StudyData:
    """The study named by `ref` (a StudyRef or StudySpec); raises HpoError if there is none."""
    import optuna

    from hpo.storage import reader
    from hpo.storage.rdb import open_storage
    from hpo.storage.urls import mask_url

    # The reader's checks give the one-line errors (no file, no such study, old schema).
    summary = reader.status(ref.storage, ref.name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=ref.name, storage=open_storage(ref.storage))
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return StudyData(
        name=ref.name,
        storage=mask_url(ref.storage),
        directions=summary["directions"],
        metrics=metric_names(getattr(ref, "raw", {}) or {}, len(summary["directions"])),
        trials=trials,
    )


def metric_names(raw: Mapping[str, Any], count: int) -> list[str]:
    objective = raw.get("objective") if isinstance(raw, Mapping) else None
    metric = objective.get("metric") if isinstance(objective, Mapping) else None
    names = metric if isinstance(metric, list) else [metric] if metric else []
    if len(names) != count:
        names = ["value"] if count == 1 else [f"objective {i}" for i in range(count)]
    return [str(name) for name in names]


def thin(items: Sequence[T], limit: int, *, keep: Sequence[T] = ()) -> list[T]:
    """At most `limit` of `items`, evenly spread and in order, always including `keep` (the
    same objects: trials, which are not hashable)."""
    if len(items) <= limit:
        return list(items)
    kept = {id(item) for item in keep}
    room = max(limit - len(kept), 1)
    stride = len(items) / room
    chosen = {int(i * stride) for i in range(room)}
    return [item for i, item in enumerate(items) if i in chosen or id(item) in kept]


def sampled_note(shown: int, total: int, what: str = "trials") -> str:
    """The words a figure adds to its title when it shows a sample."""
    return "" if shown >= total else f" (an even sample: {shown:,} of {total:,} {what})"


def worker_lanes(trials: Sequence[Any]) -> dict[int, str]:
    """Each trial's worker by trial number. The Optuna backend records it; otherwise (Ray) a
    trial takes the first slot free when it started, so the timeline still shows the lanes."""
    lanes: dict[int, str] = {}
    slot_free_at: list[Any] = []  # per slot: when its last trial ended
    for trial in sorted(trials, key=lambda t: (t.datetime_start is None, t.datetime_start)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker:
            lanes[trial.number] = str(worker)
            continue
        start = trial.datetime_start
        end = trial.datetime_complete or start
        free = next((i for i, at in enumerate(slot_free_at) if start and at and at <= start), None)
        if free is None:
            free = len(slot_free_at)
            slot_free_at.append(end)
        else:
            slot_free_at[free] = end
        lanes[trial.number] = f"slot {free + 1}"
    return lanes


def best_first(data: StudyData, trials: Sequence[Any]) -> list[Any]:
    """Complete trials, best first by the first objective (the Pareto front first if multi)."""
    sign = -1.0 if data.directions[0] == "maximize" else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))
