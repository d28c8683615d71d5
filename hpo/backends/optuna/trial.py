"""One Optuna trial inside a worker: trained (`train_optuna_trial`, the objective), then told
to the storage with the state its ending maps to (`run_trial`): COMPLETE with its values,
PRUNED, FAIL with the reason, or FAIL and re-queued when it was cut short (Ctrl-C, a killed
rank, a disk that refused a checkpoint) so that a retry resumes it.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from hpo.attrs import (
    DEVICES_ATTR,
    FAIL_REASON_ATTR,
    INTERRUPTED,
    LAST_CHECKPOINT_ATTR,
    OUTPUT_DIR_ATTR,
    RESUMED_FROM_ATTR,
    TRAIN_METRICS_ATTR,
    WORKER_ATTR,
)
from hpo.backends.objective import (
    DISK_ERRNOS,
    TrialContext,
    disk_error_message,
    json_safe_metrics,
    objective_values,
    train_trial,
)
from hpo.backends.optuna import unkept_checkpoint
from hpo.backends.optuna.heartbeat import Heartbeat
from hpo.backends.optuna.ranks import train_on_ranks
from hpo.backends.optuna.recorder import StorageRecorder
from hpo.backends.optuna.requeue import backfill_reports, fail_and_retry, local_worker_name
from hpo.backends.optuna.resume import has_checkpoints, is_retry, resume_point
from hpo.backends.trial_ranks import RankFailed
from hpo.errors import HpoError
from hpo.spec import StudySpec
from hpo.storage.optuna_compat import set_user_attrs, trial_id_of
from hpo.storage.resilient import StorageUnavailable
from hpo.storage.urls import scrub_passwords

if TYPE_CHECKING:
    import optuna


class TrialInterrupted(Exception):
    """The worker was asked to stop; the trial was checkpointed and will be resumed."""


class OutputDiskError(HpoError):
    """training.output_dir's disk refused a checkpoint (full, read-only): the trial is queued
    to resume and this worker stops, since every trial would fail the same way."""


def run_trial(
    study: optuna.Study, trial: optuna.Trial, ctx: TrialContext, stop: threading.Event
) -> None:
    """Train one trial and tell the storage how it ended; never raises for a trial's error."""
    import optuna
    from optuna.trial import TrialState

    with Heartbeat(trial.storage, trial_id_of(trial)):
        try:
            values = train_optuna_trial(ctx, trial, stop)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except TrialInterrupted:
            # Told FAIL (never COMPLETE with a half-trained value) and re-queued to resume.
            fail_and_retry(study, trial_id_of(trial), INTERRUPTED)
        except StorageUnavailable:
            # Not the trial's fault, and nothing can be written now: the worker stops, and
            # the trial (still RUNNING) is re-queued by whoever sees the worker gone.
            raise
        except RankFailed as error:
            if not error.killed:
                trial.set_user_attr(FAIL_REASON_ATTR, _failure_reason(error, ctx.spec.storage))
                study.tell(trial, state=TrialState.FAIL)
                print(f"trial {trial.number} failed: {error}", file=sys.stderr, flush=True)
            else:
                # Like a killed worker: FAIL with the reason, re-queued to resume.
                fail_and_retry(study, trial_id_of(trial), str(error))
                print(f"trial {trial.number}: {error}; re-queued", file=sys.stderr, flush=True)
        except Exception as error:
            reason = _failure_reason(error, ctx.spec.storage)
            if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
                # Not the trial's fault, and every next trial would fail alike: queue this one
                # to resume once there is room, and stop (the supervisor stops the others).
                fail_and_retry(study, trial_id_of(trial), reason)
                raise OutputDiskError(
                    f"{disk_error_message(error)}; then run again: trial {trial.number} is "
                    "queued to resume from its last checkpoint"
                ) from None
            trial.set_user_attr(FAIL_REASON_ATTR, reason)
            study.tell(trial, state=TrialState.FAIL)
            print(f"trial {trial.number} failed: {reason}", file=sys.stderr, flush=True)
        else:
            study.tell(trial, values)


def _failure_reason(error: BaseException, url: str) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return scrub_passwords(text, url)[:2000]


def trial_output_dir(spec: StudySpec, number: int) -> str:
    return os.path.join(spec.output_dir, f"trial-{number:04d}")


def train_optuna_trial(
    ctx: TrialContext, trial: optuna.Trial, stop: threading.Event
) -> float | list[float]:
    """The objective: suggest params, train (resuming a retried trial), record in the storage."""
    import optuna

    from hpo.search.space import suggest_trial

    spec = ctx.spec
    retried = is_retry(trial)
    output_dir = trial.user_attrs.get(OUTPUT_DIR_ATTR) if retried else None
    output_dir = output_dir or trial_output_dir(spec, trial.number)
    resume = (
        resume_point(output_dir, trial.user_attrs.get(LAST_CHECKPOINT_ATTR)) if retried else None
    )
    if not retried and has_checkpoints(output_dir):
        raise HpoError(
            f"{output_dir} already holds checkpoints of another study (trial numbers restart "
            "with a new study); set training.output_dir to a fresh folder or delete it"
        )
    starting = {OUTPUT_DIR_ATTR: output_dir, WORKER_ATTR: local_worker_name()}
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    if devices is not None:  # set by the placement (hpo.backends.placement) or the user
        starting[DEVICES_ATTR] = devices or "cpu"
    if resume is not None:
        starting[RESUMED_FROM_ATTR] = resume
    set_user_attrs(trial, starting)  # one storage write for all of them
    suggest_trial(trial, spec)
    if resume is not None and not spec.objective.is_multi:
        backfill_reports(trial, resume, spec.objective.metrics[0])
    recorder = StorageRecorder(trial, stop, resumed=resume is not None)
    callbacks: list[Any] = [recorder]
    if unkept_checkpoint.applies(ctx):
        callbacks.append(unkept_checkpoint.SkipUnkeptLastCheckpoint(trial, ctx, stop))
    # The trainer reports (and prunes) single-objective trials; multi-objective ones only train.
    try:
        if spec.placement.trial_processes > 1:
            output = train_on_ranks(
                ctx, trial, recorder, callbacks=callbacks, output_dir=output_dir, resume=resume
            )
        else:
            output = train_trial(
                ctx,
                trial,
                output_dir=output_dir,
                resume_from_checkpoint=resume,
                callbacks=callbacks,
                interrupted=lambda: recorder.interrupted,
            )
    except optuna.TrialPruned:
        recorder.write_pending()  # where it stopped, before it is told PRUNED
        raise
    if recorder.interrupted:
        recorder.write_pending()
        raise TrialInterrupted()
    # The last progress and the train metrics: one write.
    recorder.write_pending({TRAIN_METRICS_ATTR: json_safe_metrics(output.metrics)})
    return objective_values(spec, output.metrics)
