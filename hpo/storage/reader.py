"""A study read straight from Optuna's RDB tables: the data behind `hpo status` / `hpo best`.

Loading a study through optuna reads every trial with all its params, attrs and
intermediate values (tens of seconds at 10,000 trials). Here each answer is a handful of
SQL queries through SQLAlchemy Core (`hpo.storage.optuna_sql`, which holds them with the rest
of hpo's SQL over optuna's schema), and this module imports neither optuna nor torch, so
the whole `hpo status` process stays well under a second. Answers are plain dicts (JSON as
they are); hpo.report.status turns them into text.
"""

from __future__ import annotations

from typing import Any

from hpo.attrs import BEST_CHECKPOINT_ATTR
from hpo.errors import HpoError
from hpo.storage.optuna_sql import NoTables, OptunaTables
from hpo.storage.urls import mask_url, sqlite_path

# ---------------------------------------------------------------------------------------------
# Public API


def status(url: str, study_name: str) -> dict[str, Any]:
    """Counts by state, the best trial (the Pareto front when multi-objective) and the
    running trials with their last reported step. `counts` leaves the warm-start copies out
    of COMPLETE; `warm_start` counts them."""
    with OptunaTables(url) as tables:
        study_id = tables.study_id(study_name)
        directions = tables.directions(study_id)
        counts = tables.counts(study_id)
        warm = tables.warm_start_copies(study_id)
        counts["COMPLETE"] -= warm
        front = _best_trials(tables, study_id, directions)
        best: Any = None
        if front:
            best = front if len(directions) > 1 else front[0]
        return {
            "study": study_name,
            "storage": mask_url(url),
            "directions": directions,
            "counts": counts,
            "warm_start": warm,
            "best": best,
            "running": tables.running(study_id),
        }


def best(url: str, study_name: str) -> dict[str, Any] | list[dict[str, Any]]:
    """The best trial: `number`, `value`, `params`, `checkpoint`, `user_attrs`.

    For a multi-objective study, the Pareto front: a list of such dicts with `values`.
    """
    with OptunaTables(url) as tables:
        study_id = tables.study_id(study_name)
        directions = tables.directions(study_id)
        front = _best_trials(tables, study_id, directions)
        if not front:
            counts = tables.counts(study_id)
            summary = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n) or "no trials"
            raise HpoError(
                f"study '{study_name}' in {mask_url(url)} has no complete trial yet "
                f"({summary}); run `hpo status` to follow it, or `hpo run` to continue it"
            )
        return front if len(directions) > 1 else front[0]


def study_user_attrs(url: str, study_name: str) -> dict[str, Any] | None:
    """The study's user attrs; None when the storage holds no such study, or nothing yet (a
    SQLite file or optuna's tables not there): read without creating either."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return None
    try:
        with OptunaTables(url) as tables:
            if not tables.has_study(study_name):
                return None
            return tables.study_user_attrs(study_name)
    except NoTables:
        return None


def study_names_or_none(url: str) -> list[str] | None:
    """The names of the studies in the storage; None when it holds no optuna tables yet."""
    try:
        return study_names(url)
    except NoTables:
        return None


def study_names(url: str, *, check_schema: bool = True) -> list[str]:
    """The names of every study in the storage.

    `check_schema=False` is for callers that read the trials through optuna itself (the
    dashboard): the revision check guards this module's own SQL, not theirs.
    """
    with OptunaTables(url, check_schema=check_schema) as tables:
        return tables.study_names()


def pareto_front(values: dict[int, list[float]], directions: list[str]) -> list[int]:
    """Keys of the non-dominated points. Sorting first means a point can only be dominated
    by one already kept, so the cost is points x front size, not points squared."""
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    points = sorted(
        (
            (tuple(s * v for s, v in zip(signs, vals, strict=True)), key)
            for key, vals in values.items()
        ),
        key=lambda item: item[0],
    )
    front: list[tuple[tuple[float, ...], int]] = []
    for point, key in points:
        dominated = any(
            all(a <= b for a, b in zip(kept, point, strict=True)) and kept != point
            for kept, _ in front
        )
        if not dominated:
            front.append((point, key))
    return [key for _, key in front]


def _best_trials(
    tables: OptunaTables, study_id: int, directions: list[str]
) -> list[dict[str, Any]]:
    """The best complete trial (single objective) or the Pareto front, with details."""
    if len(directions) == 1:
        chosen = tables.best_complete(study_id, directions[0])
    else:
        values, numbers = tables.complete_values(study_id, len(directions))
        front = pareto_front(values, directions)
        chosen = {tid: (numbers[tid], {"values": values[tid]}) for tid in front}
    if not chosen:
        return []
    params = tables.params(chosen)
    attrs = tables.user_attrs(chosen)
    trials = []
    for trial_id, (number, values_of) in sorted(chosen.items(), key=lambda item: item[1][0]):
        user_attrs = attrs.get(trial_id, {})
        trials.append(
            {
                "number": number,
                **values_of,
                "params": params.get(trial_id, {}),
                "checkpoint": user_attrs.get(BEST_CHECKPOINT_ATTR),
                "user_attrs": user_attrs,
            }
        )
    return trials
