"""The budget of an Optuna study, counted in the storage: it holds across workers, machines
and reruns.

`n_trials` counts finished trials (COMPLETE + PRUNED) over the whole study, leaving out the
COMPLETE copies a warm start added (`WARM_START_ATTR`: never trained here); a worker starts a
trial only while finished + running < n_trials. Interrupted trials (Ctrl-C) are neither
failures nor finished: their retry finishes them.

`max_failed_trials` counts the failures of this run (those before it are `failed_earlier`): a
rerun after fixing the cause starts afresh. It is exact across workers: a trial starts only
while the failures so far plus every running trial stay within the limit, so even if all of
them fail, one failure past the limit stops the run and no more happen. Every study has a
limit: n_trials, or FAILURES_PER_WORKER per worker without one.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpo.attrs import FAIL_REASON_ATTR, INTERRUPTED, WARM_START_ATTR
from hpo.spec import StudySpec

# The failure limit of a study that sets neither max_failed_trials nor n_trials (a timeout
# budget): without one, an always-failing study fails trials as fast as it can until the end.
FAILURES_PER_WORKER = 10

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class TrialCounts:
    """A study's trials by state; `failed` leaves out the interrupted ones, `complete` the
    warm-start copies."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0  # FAIL trials, interrupted ones excluded
    interrupted: int = 0
    running: int = 0
    waiting: int = 0
    failed_earlier: int = 0  # failures before this run started: not counted against its limit
    warm_started: int = 0  # COMPLETE copies from an earlier study: in no budget

    @property
    def finished(self) -> int:
        return self.complete + self.pruned

    @property
    def failed_in_run(self) -> int:
        return max(0, self.failed - self.failed_earlier)

    @property
    def total(self) -> int:
        """Every trial the study holds, in any state."""
        return (
            self.finished
            + self.failed
            + self.interrupted
            + self.running
            + self.waiting
            + self.warm_started
        )


def count_trials(study: optuna.Study, *, failed_earlier: int = 0) -> TrialCounts:
    """The study's trials by state, counted in SQL: every worker asks before every trial, and
    loading the trials through optuna would cost more with each trial of the study.

    `failed_earlier`: the failures the study had when this run started."""
    from hpo.storage.optuna_compat import rdb_engine_of, study_id_of
    from hpo.storage.optuna_sql import count_trial_states
    from hpo.storage.resilient import call_with_retry

    engine = rdb_engine_of(study)
    if engine is None:  # not an RDB storage: count through optuna
        return dataclasses.replace(_count_loaded_trials(study), failed_earlier=failed_earlier)
    url = engine.url.render_as_string(hide_password=False)
    # The storage may be restarting: counted again once it is back.
    rows = call_with_retry(count_trial_states, engine, url, study_id_of(study), url=url)
    by_state = {getattr(state, "name", state): n for state, n, _, _ in rows}
    interrupted = sum(
        int(n or 0) for state, _, n, _ in rows if getattr(state, "name", state) == "FAIL"
    )
    warm = sum(
        int(n or 0) for state, _, _, n in rows if getattr(state, "name", state) == "COMPLETE"
    )
    return TrialCounts(
        complete=by_state.get("COMPLETE", 0) - warm,
        warm_started=warm,
        pruned=by_state.get("PRUNED", 0),
        failed=by_state.get("FAIL", 0) - interrupted,
        interrupted=interrupted,
        running=by_state.get("RUNNING", 0),
        waiting=by_state.get("WAITING", 0),
        failed_earlier=failed_earlier,
    )


def _count_loaded_trials(study: optuna.Study) -> TrialCounts:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    interrupted = sum(
        1
        for t in trials
        if t.state == TrialState.FAIL and t.user_attrs.get(FAIL_REASON_ATTR) == INTERRUPTED
    )
    warm = sum(
        1 for t in trials if t.state == TrialState.COMPLETE and WARM_START_ATTR in t.user_attrs
    )
    return TrialCounts(
        complete=states[TrialState.COMPLETE] - warm,
        warm_started=warm,
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


def max_failed_trials(spec: StudySpec) -> int:
    """The failures one run tolerates: budget.max_failed_trials; unset, n_trials, or
    FAILURES_PER_WORKER per worker for a study without n_trials. One more stops the run."""
    budget = spec.budget
    if budget.max_failed_trials is not None:
        return budget.max_failed_trials
    if budget.n_trials is not None:
        return budget.n_trials
    return FAILURES_PER_WORKER * spec.workers


def failures_exceeded(spec: StudySpec, counts: TrialCounts) -> bool:
    """Whether more trials failed in this run than the study allows (the run then stops
    with EXIT_FAILED)."""
    return counts.failed_in_run > max_failed_trials(spec)


def too_many_failures_message(spec: StudySpec, counts: TrialCounts) -> str:
    """What `hpo run` says when failures stopped the study, and what to do about it."""
    return (
        f"stopped: {counts.failed_in_run} trials failed in this run, more than "
        f"budget.max_failed_trials={max_failed_trials(spec)}. The reasons are in each trial's "
        f"'{FAIL_REASON_ATTR}' user attr (`hpo status`, the dashboard); fix the cause and "
        "run again to continue the study (failures count per run), or raise max_failed_trials"
    )


def failure_limit_text(spec: StudySpec) -> str:
    """The failure limit as the run's header shows it."""
    limit = max_failed_trials(spec)
    return f"stops at {limit + 1} failed"


def slot_free(spec: StudySpec, counts: TrialCounts, *, asking: bool = False) -> bool:
    """Whether one more trial fits in n_trials, counting the ones running now, and within the
    failure limit even if it and every running trial fail.

    `asking`: the trial in question was already asked for, so it is one of the running ones.
    """
    others_running = counts.running - (1 if asking else 0)
    n_trials = spec.budget.n_trials
    if n_trials is not None and counts.finished + others_running >= n_trials:
        return False
    return counts.failed_in_run + others_running <= max_failed_trials(spec)
