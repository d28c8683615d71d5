"""Where a trial resumes: whether it is the re-queued copy of a trial that was cut short
(`is_retry`), and the checkpoint it continues from (`resume_point`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.storage.optuna_compat import frozen_trial_of

if TYPE_CHECKING:
    import optuna


def is_retry(trial: optuna.Trial) -> bool:
    """Whether optuna's retry callback queued this trial to resume one that was cut short.

    The callback marks the WAITING copy before any worker pops it, so the frozen trial that
    ask() just read has the mark: no second read of the storage.
    """
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # experimental by label only, and stable since optuna 2.8
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        number = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen_trial_of(trial))
    return number is not None


def resume_point(output_dir: str, recorded: Any) -> str | None:
    """The checkpoint a retried trial resumes from: the newest complete one in its folder.

    Usually that is the recorded `last_checkpoint`. But a worker that died (or whose storage
    write failed) between writing checkpoint N and recording it left the storage naming an
    older one, or none; checkpoints are written atomically, so any complete one in the
    trial's own folder is this trial's, and the newest wastes the fewest steps. The recorded
    one is the fallback when the folder has none (it was moved, or lives elsewhere).
    """
    from trainer.checkpoint import sorted_checkpoints

    found = sorted_checkpoints(output_dir)
    if found:
        return found[-1]
    if recorded and Path(str(recorded)).is_dir():
        return str(recorded)
    return None


def has_checkpoints(output_dir: str) -> bool:
    path = Path(output_dir)
    return path.is_dir() and any(path.glob("checkpoint-*"))
