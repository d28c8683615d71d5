"""The Ray backend's study in the storage, outside the mirror's callbacks: created when it is
not there yet (`ensure_study`), and the trials of a Tune driver that stopped failed and queued
to continue (`requeue_stopped_trials`), which the mirror then resumes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpo.attrs import RAY_TRIAL_ID_ATTR

if TYPE_CHECKING:
    import optuna


def requeue_stopped_trials(
    storage_url: str, study_name: str, reason: str, storage: Any = None
) -> list[int]:
    """FAIL the study's RUNNING Ray trials with `reason` and queue a WAITING copy of each.

    For a Tune driver that is stopping or was stopped (Ctrl-C, `hpo submit --stop`, killed):
    the storage then says what happened instead of showing trials RUNNING with nothing
    behind them. The copy keeps params, user attrs (the Ray trial id) and intermediate values;
    when the experiment is restored, the mirror continues the Ray trial into it. Returns the
    numbers of the stopped trials. `storage`: one already open (a signal handler has seconds).
    """
    import optuna
    from optuna.trial import TrialState

    from hpo.storage.rdb import RetryStaleTrial, fail_with_reason, open_storage

    storage = storage if storage is not None else open_storage(storage_url)
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler()
    )
    retry = RetryStaleTrial(max_retry=None)
    trials = study.get_trials(deepcopy=False)
    queued = {
        t.system_attrs["retry_history"][-1] for t in trials if t.system_attrs.get("retry_history")
    }
    study_id = storage.get_study_id_from_name(study_name)
    stopped = []
    for trial in trials:
        if trial.state != TrialState.RUNNING or RAY_TRIAL_ID_ATTR not in trial.user_attrs:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        # The copy is queued before the trial is failed: a driver SIGKILLed in between leaves
        # the trial RUNNING beside its copy, and the next start fails it without a second copy.
        # The other order could leave it FAILED with no copy, and a reader would see the
        # storage settled (nothing RUNNING) before the copy exists.
        if trial.number not in queued:
            retry(study, storage.get_trial(trial_id))
        if fail_with_reason(storage, trial_id, reason):
            stopped.append(trial.number)
    return stopped


def ensure_study(
    storage: optuna.storages.BaseStorage, study_name: str, directions: Sequence[str]
) -> int:
    """The study's id, creating it with `directions` if it does not exist yet."""
    import optuna
    from optuna.study import StudyDirection

    try:
        return storage.get_study_id_from_name(study_name)
    except KeyError:
        pass
    wanted = [StudyDirection[d.upper()] for d in directions]
    try:
        return storage.create_new_study(wanted, study_name)
    except optuna.exceptions.DuplicatedStudyError:  # another process created it just now
        return storage.get_study_id_from_name(study_name)
