"""The budget of an Optuna study, counted in the storage: it holds across workers, machines
and reruns.

`n_trials` counts finished trials (COMPLETE + PRUNED) over the whole study; a worker starts a
trial only while finished + running < n_trials. Interrupted trials (Ctrl-C) are neither
failures nor finished: their retry finishes them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.attrs import FAIL_REASON_ATTR, INTERRUPTED
from hpo.spec import StudySpec

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class TrialCounts:
    """A study's trials by state; `failed` leaves out the interrupted ones."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0  # FAIL trials, interrupted ones excluded
    interrupted: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


def count_trials(study: optuna.Study) -> TrialCounts:
    """The study's trials by state, counted in SQL: every worker asks before every trial, and
    loading the trials through optuna would cost more with each trial of the study."""
    from hpo.storage.optuna_compat import rdb_engine_of, study_id_of
    from hpo.storage.resilient import call_with_retry

    engine = rdb_engine_of(study)
    if engine is None:  # not an RDB storage: count through optuna
        return _count_loaded_trials(study)
    url = engine.url.render_as_string(hide_password=False)
    # The storage may be restarting: counted again once it is back.
    rows = call_with_retry(_count_rows, engine, url, study_id_of(study), url=url)
    by_state = {getattr(state, "name", state): n for state, n, _ in rows}
    interrupted = sum(
        int(n or 0) for state, _, n in rows if getattr(state, "name", state) == "FAIL"
    )
    return TrialCounts(
        complete=by_state.get("COMPLETE", 0),
        pruned=by_state.get("PRUNED", 0),
        failed=by_state.get("FAIL", 0) - interrupted,
        interrupted=interrupted,
        running=by_state.get("RUNNING", 0),
        waiting=by_state.get("WAITING", 0),
    )


def _count_rows(engine: Any, url: str, study_id: int) -> list[Any]:
    """(state, trials, interrupted ones) of the study, in one round trip: the trials by state,
    and how many FAIL ones were interrupted (a trial has at most one fail_reason attr, so the
    outer join adds no rows)."""
    import json

    import sqlalchemy

    from hpo.storage.optuna_compat import check_schema_once

    with engine.connect() as connection:
        # The SQL is written for optuna's schema (checked once per database and process).
        check_schema_once(connection, url)
        return connection.execute(
            sqlalchemy.text(
                "SELECT t.state, COUNT(*), "
                "SUM(CASE WHEN a.value_json = :v THEN 1 ELSE 0 END) "
                "FROM trials t LEFT JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id AND a.key = :k "
                "WHERE t.study_id = :s GROUP BY t.state"
            ),
            {"s": study_id, "k": FAIL_REASON_ATTR, "v": json.dumps(INTERRUPTED)},
        ).all()


def _count_loaded_trials(study: optuna.Study) -> TrialCounts:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    interrupted = sum(
        1
        for t in trials
        if t.state == TrialState.FAIL and t.user_attrs.get(FAIL_REASON_ATTR) == INTERRUPTED
    )
    return TrialCounts(
        complete=states[TrialState.COMPLETE],
        pruned=states[TrialState.PRUNED],
        failed=states[TrialState.FAIL] - interrupted,
        interrupted=interrupted,
        running=states[TrialState.RUNNING],
        waiting=states[TrialState.WAITING],
    )


def stop_reason(
    spec: StudySpec, counts: TrialCounts, *, deadline: float | None, now: float
) -> str | None:
    """Why no new trial may start (None: one may, if a slot is free)."""
    budget = spec.budget
    if budget.n_trials is not None and counts.finished >= budget.n_trials:
        return f"budget reached: {counts.finished} finished trials (n_trials={budget.n_trials})"
    if failures_exceeded(spec, counts):
        return too_many_failures_message(spec, counts)
    if deadline is not None and now >= deadline:
        return f"timeout reached ({budget.timeout_s:g} s)"
    return None


def max_failed_trials(spec: StudySpec) -> int | None:
    """The study's max_failed_trials; unset, n_trials: a study whose every trial fails must
    stop some time, not ask for trials forever."""
    budget = spec.budget
    return budget.max_failed_trials if budget.max_failed_trials is not None else budget.n_trials


def failures_exceeded(spec: StudySpec, counts: TrialCounts) -> bool:
    """Whether more trials failed than the study allows (the run then stops with EXIT_FAILED)."""
    limit = max_failed_trials(spec)
    return limit is not None and counts.failed > limit


def too_many_failures_message(spec: StudySpec, counts: TrialCounts) -> str:
    """What `hpo run` says when failures stopped the study, and what to do about it."""
    return (
        f"stopped: {counts.failed} trials failed, more than budget.max_failed_trials="
        f"{max_failed_trials(spec)}. The reasons are in each trial's "
        f"'{FAIL_REASON_ATTR}' user attr (`hpo status`, the dashboard); fix the cause and "
        "run again to continue the study, or raise max_failed_trials"
    )


def slot_free(spec: StudySpec, counts: TrialCounts) -> bool:
    """Whether one more trial fits in n_trials, counting the ones running now."""
    n_trials = spec.budget.n_trials
    return n_trials is None or counts.finished + counts.running < n_trials
