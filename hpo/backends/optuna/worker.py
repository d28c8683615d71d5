"""The Optuna backend inside one worker process: ask a trial, claim it, train it, tell the storage.

Every worker (the N local ones `hpo run` starts, or an `hpo worker` on another machine) runs
`work()`. Workers share nothing but the study's storage, which decides everything:

- the budget (`budget`): a worker starts a trial only while finished + running < n_trials,
  and gives a trial it asked for back (WAITING) when another worker claimed the last slot in
  the same instant;
- resume (`requeue`): a trial whose worker died is failed and re-queued as a WAITING copy
  that keeps params, user attrs and intermediate values; the worker that pops it resumes
  from the newest complete checkpoint in the trial's folder (`resume_point`: usually the
  one recorded in `last_checkpoint`, which the trainer records before it deletes older ones);
- Ctrl-C: a stop request checkpoints the running trial at its current step, marks it FAIL
  with reason "interrupted" and re-queues it, so the next `hpo run` resumes it.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    DEVICES_ATTR,
    FAIL_REASON_ATTR,
    FIRST_STEP_ATTR,
    INTERRUPTED,
    LAST_CHECKPOINT_ATTR,
    OUTPUT_DIR_ATTR,
    PROGRESS_ATTR,
    PROGRESS_MAX_STEPS_KEY,
    PROGRESS_RATE_KEY,
    RANKS_STOPPED_AT_ATTR,
    RESUMED_FROM_ATTR,
    STEP_KEY,
    TRAIN_METRICS_ATTR,
    WORKER_ATTR,
    WORLD_SIZE_ATTR,
)
from hpo.backends import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from hpo.backends.objective import (
    DISK_ERRNOS,
    TrialContext,
    disk_error_message,
    freeze_setup_objects,
    json_safe_metrics,
    objective_values,
    prepare,
    train_trial,
)
from hpo.backends.optuna import unkept_checkpoint
from hpo.backends.optuna.budget import count_trials, failures_exceeded, slot_free, stop_reason
from hpo.backends.optuna.requeue import backfill_reports, fail_and_retry, local_worker_name
from hpo.backends.optuna.shared_study import heartbeat_options, open_study
from hpo.backends.trial_ranks import RankFailed, TrialRanks
from hpo.errors import HpoError
from hpo.spec import StudySpec
from hpo.storage.optuna_compat import frozen_trial_of, set_user_attrs, trial_id_of
from hpo.storage.rdb import open_storage
from hpo.storage.resilient import StorageUnavailable
from hpo.storage.urls import scrub_passwords

if TYPE_CHECKING:
    import optuna


# How often an idle worker looks at the storage again. One count query: cheap enough to do
# often, and a worker that waits on the last running trial exits this soon after it ends.
_POLL_S = 0.25


class TrialInterrupted(Exception):
    """The worker was asked to stop; the trial was checkpointed and will be resumed."""


class OutputDiskError(HpoError):
    """training.output_dir's disk refused a checkpoint (full, read-only): the trial is queued
    to resume and this worker stops, since every trial would fail the same way."""


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGINT / SIGTERM ask for a clean stop (checkpoint, re-queue), not a KeyboardInterrupt
    in the middle of a optimizer step."""

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def work(
    spec: StudySpec,
    *,
    worker_index: int = 0,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    trials_before: int | None = None,
    failed_earlier: int | None = None,
) -> int:
    """Run trials of the study until its budget, the deadline or a stop request.

    `trials_before` and `failed_earlier`: the study's trials and failures when the run (or
    this worker, by default) started; they seed the sampler and set what failures count
    against the run's limit (see `budget`, `shared_study.worker_seed`).
    Returns EXIT_OK, EXIT_FAILED or EXIT_INTERRUPTED.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    stop = stop or threading.Event()
    storage = open_storage(
        spec.storage,
        workers=spec.workers,
        wait_for_server=True,  # a worker may start while the database restarts
        **heartbeat_options(heartbeat_interval, grace_period),
    )
    if trials_before is None or failed_earlier is None:
        at_start = count_trials(open_study(spec, storage))
        trials_before = at_start.total if trials_before is None else trials_before
        failed_earlier = at_start.failed if failed_earlier is None else failed_earlier
    study = open_study(spec, storage, worker_index=worker_index, trials_before=trials_before)
    frozen_before = gc.get_freeze_count()
    try:
        return _run_trials(
            spec, storage, study, deadline=deadline, stop=stop, failed_earlier=failed_earlier
        )
    finally:
        if frozen_before == 0:
            # Hand the frozen objects back to the collector: work() may run inside a process
            # that lives on (a test, a notebook), where they can become garbage.
            gc.unfreeze()


def _run_trials(
    spec: StudySpec,
    storage: optuna.storages.RDBStorage,
    study: optuna.Study,
    *,
    deadline: float | None,
    stop: threading.Event,
    failed_earlier: int = 0,
) -> int:
    from hpo.storage.rdb import sweep_stale_trials
    from hpo.storage.study_lock import locks_out_other_workers

    ctx: TrialContext | None = None
    # Under a real study lock the count before the ask already reserved the slot.
    check_after_ask = not locks_out_other_workers(storage.engine.url)
    trained_once = False
    # A trial turns stale only after a whole grace period without heartbeats, so sweeping
    # once per heartbeat interval notices it as soon as sweeping before every trial would.
    sweep_every_s = storage.get_heartbeat_interval() or 0
    next_sweep = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_sweep:
            sweep_stale_trials(storage, spec.name)
            next_sweep = time.monotonic() + sweep_every_s
        counts = count_trials(study, failed_earlier=failed_earlier)
        reason = stop_reason(spec, counts, deadline=deadline, now=time.time())
        if reason is not None:
            return EXIT_FAILED if failures_exceeded(spec, counts) else EXIT_OK
        if not slot_free(spec, counts):
            # Every slot is taken by a running trial (or the running ones could use up the
            # failure limit); wait in case one of them dies (its retry then needs a worker)
            # or ends (its slot opens again).
            stop.wait(_POLL_S)
            continue
        if ctx is None:
            ctx = prepare(spec)  # once per process, and only when there is work
            freeze_setup_objects()  # the per-trial gc.collect() then skips all of the above
        trial = _ask_within_budget(
            spec, storage, study, deadline=deadline, failed_earlier=failed_earlier
        )
        if trial is None:
            continue  # the slot went to another worker meanwhile: look again
        if check_after_ask and not _claim(spec, study, trial, failed_earlier):
            stop.wait(random.uniform(0.05, 0.5))  # the other claimant goes first
            continue
        run_trial(study, trial, ctx, stop)
        # The trial's model and optimizer are garbage now. Reference counting has freed them
        # unless a cycle holds them: collect then, before the next model is built (a new
        # Trainer has nothing to release, so it does not collect by itself).
        if ctx.trial_memory_alive():
            gc.collect()
        if not trained_once:
            # The first trial imported the trainer's and torch's lazily loaded modules (a few
            # hundred); freeze them too, once, so later collections skip them as well.
            trained_once = True
            freeze_setup_objects()
    return EXIT_INTERRUPTED


def _ask_within_budget(
    spec: StudySpec,
    storage: optuna.storages.RDBStorage,
    study: optuna.Study,
    *,
    deadline: float | None,
    failed_earlier: int = 0,
) -> optuna.Trial | None:
    """A trial to train (a queued one first, else a new one), or None when no slot is free.

    The count and the ask hold the study's lock (`hpo.storage.study_lock`): two workers
    never both see the last slot free, so none has to give a trial back (which could leave
    an empty WAITING trial behind after the run).
    """
    from hpo.storage.study_lock import study_lock

    with study_lock(storage.engine, spec.name):
        counts = count_trials(study, failed_earlier=failed_earlier)
        if stop_reason(spec, counts, deadline=deadline, now=time.time()) is not None:
            return None
        if not slot_free(spec, counts):
            return None
        with warnings.catch_warnings():
            # "Heartbeat ... supposed to be used with Study.optimize": _Heartbeat does its job.
            warnings.simplefilter("ignore", UserWarning)
            return study.ask()


def _claim(
    spec: StudySpec, study: optuna.Study, trial: optuna.Trial, failed_earlier: int = 0
) -> bool:
    """Keep the trial just asked for only if it fits the budget with every other running one.

    A guard for workers that ask without the study's lock (a database that has none): two
    workers can then ask in the same instant for the last slot; both see each other and give
    their trial back (WAITING), then retry after a random pause. Never more than n_trials
    finish, and never more than one failure past max_failed_trials.
    """
    from optuna.trial import TrialState

    counts = count_trials(study, failed_earlier=failed_earlier)
    if slot_free(spec, counts, asking=True):
        return True
    trial.storage.set_trial_state_values(trial_id_of(trial), state=TrialState.WAITING)
    return False


class _Heartbeat:
    """Records the trial's heartbeat every interval in a thread, as study.optimize does."""

    def __init__(self, storage: Any, trial_id: int):
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        interval = self._storage.get_heartbeat_interval()
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # a transient storage error must not kill the trial
                pass
            if self._stop.wait(interval):
                return

    def __enter__(self) -> _Heartbeat:
        if self._storage.get_heartbeat_interval() is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run_trial(
    study: optuna.Study, trial: optuna.Trial, ctx: TrialContext, stop: threading.Event
) -> None:
    """Train one trial and tell the storage how it ended; never raises for a trial's error."""
    import optuna
    from optuna.trial import TrialState

    with _Heartbeat(trial.storage, trial_id_of(trial)):
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
    retried = _is_retry(trial)
    output_dir = trial.user_attrs.get(OUTPUT_DIR_ATTR) if retried else None
    output_dir = output_dir or trial_output_dir(spec, trial.number)
    resume = (
        resume_point(output_dir, trial.user_attrs.get(LAST_CHECKPOINT_ATTR)) if retried else None
    )
    if not retried and _has_checkpoints(output_dir):
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
            output = _train_on_ranks(
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


def _train_on_ranks(
    ctx: TrialContext,
    trial: optuna.Trial,
    recorder: StorageRecorder,
    *,
    callbacks: list[Any],
    output_dir: str,
    resume: str | None,
) -> Any:
    """The trial under torch.distributed: this process is rank 0 (hpo/backends/trial_ranks.py)."""
    import optuna

    world_size = ctx.spec.placement.trial_processes
    trial.set_user_attr(WORLD_SIZE_ATTR, world_size)
    ranks = TrialRanks(ctx.spec, world_size)
    clean = False
    try:
        ranks.start({"params": dict(trial.params), "output_dir": output_dir, "resume": resume})
        output = train_trial(
            ctx, trial, output_dir=output_dir, resume_from_checkpoint=resume, callbacks=callbacks
        )
        clean = True
        return output
    except optuna.TrialPruned:
        clean = True  # a prune every rank obeyed: they stop at the same step
        raise
    except Exception as error:
        failed = ranks.failure()
        if failed is not None:
            raise failed from error
        raise
    finally:
        ranks.close(clean=clean)
        if clean:
            trial.set_user_attr(RANKS_STOPPED_AT_ATTR, [recorder.last_step, *ranks.stopped_at()])


def _is_retry(trial: optuna.Trial) -> bool:
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


def _has_checkpoints(output_dir: str) -> bool:
    path = Path(output_dir)
    return path.is_dir() and any(path.glob("checkpoint-*"))


class StorageRecorder:
    """A trainer callback that keeps the storage up to date while the trial trains.

    On every save: `last_checkpoint` (what a retry resumes from) and, when it changed,
    `best_checkpoint`. On the first step of a resumed trial: `first_step` (past 0). At every
    step end: a pending stop request ends training with a checkpoint at the current step.
    For each log (training or evaluation) at a new step: `progress`, what the live view shows.
    Progress rides along with that step's checkpoint record when the step saves one, else it
    is written before the next step begins, or after training by the worker with the train
    metrics (`write_pending`): one storage write per logging step at most, and none of its
    own at a step that saves. A fresh trial writes no progress before its first log (the live
    view shows it at step 0); a resumed one writes where it resumed at once.
    """

    def __init__(self, trial: optuna.Trial, stop: threading.Event, *, resumed: bool = False):
        self._trial = trial
        self._stop = stop
        self._first_step_seen = not resumed  # a fresh trial's first step is 1: nothing to say
        self._best: str | None = None
        self.interrupted = False
        self.last_step = 0
        self._began: tuple[float, int] | None = None  # (time, step) when this run began
        self._progress_step: int | None = None
        self._pending: dict[str, Any] = {}  # progress not yet written

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._began = (time.monotonic(), int(state.global_step))
        if state.global_step > 0:  # resumed: show where at once
            self._note_progress(state)
            self.write_pending()

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._note_progress(state)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.write_pending()

    def _note_progress(self, state: Any) -> None:
        step = int(state.global_step)
        if step == self._progress_step or self._began is None:
            return  # a training log and an evaluation at one step: one write
        self._progress_step = step
        began_at, first = self._began
        elapsed = time.monotonic() - began_at
        rate = (step - first) / elapsed if step > first and elapsed > 0 else None
        progress = {
            STEP_KEY: step,
            PROGRESS_MAX_STEPS_KEY: int(state.max_steps),
            PROGRESS_RATE_KEY: rate,
        }
        self._pending = {PROGRESS_ATTR: progress}

    def _take_pending(self) -> dict[str, Any]:
        pending, self._pending = self._pending, {}
        return pending

    def write_pending(self, more: dict[str, Any] | None = None) -> None:
        """Writes the progress not yet written, with `more` attrs, in one storage write."""
        attrs = {**self._take_pending(), **(more or {})}
        if attrs:
            set_user_attrs(self._trial, attrs)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.last_step = int(state.global_step)
        if not self._first_step_seen:
            self._first_step_seen = True
            self._trial.set_user_attr(FIRST_STEP_ATTR, int(state.global_step))
        if self._stop.is_set() and not self.interrupted:
            self.interrupted = True
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        checkpoint = kwargs.get("checkpoint_dir") or getattr(state, "last_checkpoint", None)
        checkpoint = checkpoint or os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        # One storage write for the checkpoint, the best one when it is also that, and the
        # progress of this step.
        attrs = {LAST_CHECKPOINT_ATTR: str(checkpoint), **self._new_best(state)}
        set_user_attrs(self._trial, {**attrs, **self._take_pending()})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Left pending: the worker writes it with the trial's train metrics (or before it
        # tells a pruned or interrupted trial), in one commit.
        self._pending.update(self._new_best(state))

    def _new_best(self, state: Any) -> dict[str, str]:
        """{BEST_CHECKPOINT_ATTR: path} when the best checkpoint changed since it was written."""
        best = getattr(state, "best_model_checkpoint", None)
        if not best or best == self._best:
            return {}
        self._best = str(best)
        return {BEST_CHECKPOINT_ATTR: self._best}
