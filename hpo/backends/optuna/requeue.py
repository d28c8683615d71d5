"""Failing a trial whose run was cut short, and queueing the copy that resumes it.

A trial whose worker died (the parent saw the process exit, or its pid is gone) or was
stopped (Ctrl-C) is marked FAIL with the reason, and optuna's retry callback queues a WAITING
copy with the same params, user attrs and intermediate values; the worker that pops it
resumes from `last_checkpoint` and first reports what the checkpoint knows but the storage
does not (`backfill_reports`).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from hpo.attrs import STEP_KEY, WORKER_ATTR, eval_metric_key
from hpo.storage.optuna_compat import storage_of, trial_id_of
from hpo.storage.rdb import fail_with_reason

if TYPE_CHECKING:
    import optuna


def fail_and_retry(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Mark a RUNNING trial FAIL with `reason` and queue its WAITING copy (which resumes it).

    Returns False when the trial had already finished (another process got there first).
    """
    storage = storage_of(study)
    if not fail_with_reason(storage, trial_id, reason):
        return False
    # open_storage's RDBStorage (behind optuna's cache) is a BaseHeartbeat; BaseStorage is not.
    retry = storage.get_heartbeat_stale_trial_callback()  # type: ignore[attr-defined]
    if retry is not None:
        retry(study, storage.get_trial(trial_id))
    return True


def local_worker_name(pid: int | None = None) -> str:
    """ "host:pid" of a worker process on this machine (this process by default)."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def reap_dead_local_trials(
    study: optuna.Study, *, dead_pids: dict[int, str] | None = None
) -> list[int]:
    """Fail and re-queue the RUNNING trials of worker processes on this machine that are gone.

    `dead_pids` maps the pids known to be dead to the reason (the parent saw them exit);
    other pids on this host are checked with signal 0. Much sooner than waiting out the
    heartbeat's grace period. Returns the numbers of the trials re-queued.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    dead_pids = dead_pids or {}
    reaped = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get(WORKER_ATTR, ""))
        worker_host, _, pid_text = worker.rpartition(":")
        if worker_host != host or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        reason = dead_pids.get(pid)
        if reason is None and not pid_alive(pid):
            reason = f"worker process {pid} is gone"
        if reason and fail_and_retry(study, trial_id_of(trial), reason):
            reaped.append(trial.number)
    return reaped


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (a dead process nobody reaped yet:
    an orphaned worker whose new parent does not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux), or it exited just now
        return True


def backfill_reports(trial: optuna.Trial, checkpoint: str, metric: str) -> list[int]:
    """Report the evaluations a checkpoint remembers but the storage lacks.

    A checkpoint written before its step's value was reported leaves a gap the resumed run
    would never fill (it continues after the checkpoint). The trainer reports first, then
    saves, so its own checkpoints leave none; a checkpoint saved the other way round (by an
    earlier version, or by hand) may. The values are in the checkpoint's trainer_state.json.
    Returns the steps reported.
    """
    key = eval_metric_key(metric)
    state_file = Path(checkpoint) / "trainer_state.json"
    try:
        history = json.loads(state_file.read_text(encoding="utf-8")).get("log_history", [])
    except (OSError, ValueError):
        return []
    known = trial.storage.get_trial(trial_id_of(trial)).intermediate_values
    reported = []
    for row in history:
        step = row.get(STEP_KEY)
        if key in row and isinstance(step, int) and step not in known:
            trial.report(float(row[key]), step)
            reported.append(step)
    return reported
