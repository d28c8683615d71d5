"""The Optuna backend inside one worker process: ask a trial, train it, tell the storage.

Every worker (the N local ones `hpo run` starts, or an `hpo worker` on another machine) runs
`work()`. Workers share nothing but the study's storage, which decides everything:

- the budget: `n_trials` counts finished trials (COMPLETE + PRUNED) over the whole study; a
  worker starts a trial only while finished + running < n_trials, and gives a trial it asked
  for back (WAITING) when another worker claimed the last slot in the same instant;
- resume: a trial whose worker died is failed (heartbeat, or the parent that saw the process
  die) and re-queued as a WAITING copy that keeps params, user attrs and intermediate values;
  the worker that pops it resumes from the checkpoint recorded in `last_checkpoint`;
- Ctrl-C: a stop request checkpoints the running trial at its current step, marks it FAIL
  with reason "interrupted" and re-queues it, so the next `hpo run` resumes it.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import socket
import sys
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    FAIL_REASON_ATTR,
    FIRST_STEP_ATTR,
    INTERRUPTED,
    LAST_CHECKPOINT_ATTR,
    OUTPUT_DIR_ATTR,
    RESUMED_FROM_ATTR,
    RETRY_OF_SYSTEM_ATTR,
    TRAIN_METRICS_ATTR,
    WORKER_ATTR,
    eval_metric_key,
)
from hpo.backends import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_WORKER_ERROR
from hpo.backends.objective import (
    TrialContext,
    freeze_setup_objects,
    json_safe_metrics,
    objective_values,
    prepare,
    train_trial,
)
from hpo.errors import HpoError
from hpo.spec import StudySpec
from hpo.storage.urls import scrub_passwords

if TYPE_CHECKING:
    import optuna


_POLL_S = 1.0  # how often an idle worker looks at the storage again


class TrialInterrupted(Exception):
    """The worker was asked to stop; the trial was checkpointed and will be resumed."""


# ---------------------------------------------------------------------------------------------
# The study


def pruning_note(spec: StudySpec) -> str | None:
    """Why pruning is off although the study names a pruner, or None when it is on."""
    if spec.objective.is_multi and spec.pruner.name != "none":
        return (
            f"pruning is off: Optuna cannot prune a multi-objective study (Trial.report takes "
            f"one value), so pruner {spec.pruner.name!r} is not used"
        )
    return None


def open_study(
    spec: StudySpec, storage: optuna.storages.BaseStorage, *, worker_index: int = 0
) -> optuna.Study:
    """Create the study (or load it: reruns and other workers continue the same one) with
    this worker's sampler, seeded `seed + worker_index`, and the study's pruner."""
    import optuna

    from hpo.search.components import build_pruner, build_sampler

    sampler = build_sampler(spec.sampler, space=spec.space, seed_offset=worker_index)
    pruner = (
        optuna.pruners.NopPruner() if pruning_note(spec) is not None else build_pruner(spec.pruner)
    )
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=spec.name,
            directions=list(spec.objective.directions),
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
    except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
        study = optuna.load_study(
            study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner
        )
    stored = [d.name.lower() for d in study.directions]
    if stored != list(spec.objective.directions):
        raise HpoError(
            f"study {spec.name!r} already exists in the storage with directions {stored}, but "
            f"the study file asks for {list(spec.objective.directions)}; give the study a new "
            "name or restore objective.direction"
        )
    return study


# ---------------------------------------------------------------------------------------------
# Budget: counted in the storage, so it holds across workers, machines and reruns


@dataclass(frozen=True)
class TrialCounts:
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
    import json

    import sqlalchemy

    engine = _engine_of(study._storage)
    if engine is None:  # not an RDB storage: count through optuna
        return _count_loaded_trials(study)
    # One round trip: the trials by state, and how many FAIL ones were interrupted (a trial
    # has at most one fail_reason attr, so the outer join adds no rows).
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(
                "SELECT t.state, COUNT(*), "
                "SUM(CASE WHEN a.value_json = :v THEN 1 ELSE 0 END) "
                "FROM trials t LEFT JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id AND a.key = :k "
                "WHERE t.study_id = :s GROUP BY t.state"
            ),
            {"s": study._study_id, "k": FAIL_REASON_ATTR, "v": json.dumps(INTERRUPTED)},
        ).all()
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


def _engine_of(storage: Any) -> Any:
    """The SQLAlchemy engine of an RDB storage, also behind the cache that optuna wraps it
    in (study._storage is a _CachedStorage); None for other storages."""
    engine = getattr(storage, "engine", None)
    if engine is None:
        engine = getattr(getattr(storage, "_backend", None), "engine", None)
    return engine


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
    limit = max_failed_trials(spec)
    return limit is not None and counts.failed > limit


def too_many_failures_message(spec: StudySpec, counts: TrialCounts) -> str:
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


# ---------------------------------------------------------------------------------------------
# Failing a trial and queueing its resume


def fail_and_retry(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Mark a RUNNING trial FAIL with `reason` and queue its WAITING copy (which resumes it).

    Returns False when the trial had already finished (another process got there first).
    """
    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    retry = storage.get_heartbeat_stale_trial_callback()
    if retry is not None:
        retry(study, storage.get_trial(trial_id))
    return True


def local_worker_name(pid: int | None = None) -> str:
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
        if reason is None and not _pid_alive(pid):
            reason = f"worker process {pid} is gone"
        if reason and fail_and_retry(study, trial._trial_id, reason):
            reaped.append(trial.number)
    return reaped


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------
# The worker loop


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
) -> int:
    """Run trials of the study until its budget, the deadline or a stop request.

    Returns EXIT_OK, EXIT_FAILED or EXIT_INTERRUPTED.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    stop = stop or threading.Event()
    storage = open_shared_storage(
        spec.storage, workers=spec.workers, **_heartbeat(heartbeat_interval, grace_period)
    )
    study = open_study(spec, storage, worker_index=worker_index)
    frozen_before = gc.get_freeze_count()
    try:
        return _run_trials(spec, storage, study, deadline=deadline, stop=stop)
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
) -> int:
    from hpo.storage.rdb import sweep_stale_trials

    ctx: TrialContext | None = None
    trained_once = False
    # A trial turns stale only after a whole grace period without heartbeats, so sweeping
    # once per heartbeat interval notices it as soon as sweeping before every trial would.
    sweep_every_s = storage.get_heartbeat_interval() or 0
    next_sweep = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_sweep:
            sweep_stale_trials(storage, spec.name)
            next_sweep = time.monotonic() + sweep_every_s
        counts = count_trials(study)
        reason = stop_reason(spec, counts, deadline=deadline, now=time.time())
        if reason is not None:
            return EXIT_FAILED if failures_exceeded(spec, counts) else EXIT_OK
        if not slot_free(spec, counts):
            # Every slot is taken by a running trial; wait in case one of them dies (its
            # retry then needs a worker) or fails (its slot opens again).
            stop.wait(_POLL_S)
            continue
        if ctx is None:
            ctx = prepare(spec)  # once per process, and only when there is work
            freeze_setup_objects()  # the per-trial gc.collect() then skips all of the above
        with warnings.catch_warnings():
            # "Heartbeat ... supposed to be used with Study.optimize": _Heartbeat does its job.
            warnings.simplefilter("ignore", UserWarning)
            trial = study.ask()
        if not _claim(spec, study, trial):
            stop.wait(random.uniform(0.05, 0.5))  # the other claimant goes first
            continue
        run_trial(study, trial, ctx, stop)
        if not trained_once:
            # The first trial imported the trainer's and torch's lazily loaded modules (a few
            # hundred); freeze them too, once, so later collections skip them as well.
            trained_once = True
            freeze_setup_objects()
    return EXIT_INTERRUPTED


def open_shared_storage(url: str, **options: Any) -> optuna.storages.RDBStorage:
    """`hpo.storage.open_storage`, retried while another process creates the same tables.

    Optuna creates its schema with check-then-create, so two workers opening a fresh
    database in the same instant can see "table ... already exists"; the second try finds it.
    """
    from hpo.storage.rdb import open_storage

    for attempt in range(5):
        try:
            return open_storage(url, **options)
        except HpoError as error:
            if "already exists" not in str(error) or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _heartbeat(interval: int | None, grace: int | None) -> dict[str, int]:
    values = {}
    if interval is not None:
        values["heartbeat_interval"] = interval
    if grace is not None:
        values["grace_period"] = grace
    return values


def _claim(spec: StudySpec, study: optuna.Study, trial: optuna.Trial) -> bool:
    """Keep the trial just asked for only if it fits the budget with every other running one.

    Two workers can ask in the same instant for the last slot; both then see each other and
    give their trial back (WAITING), then retry after a random pause. Never more than
    n_trials finish.
    """
    from optuna.trial import TrialState

    n_trials = spec.budget.n_trials
    if n_trials is None:
        return True
    counts = count_trials(study)
    others = counts.finished + counts.running - 1  # this trial is one of the running ones
    if others < n_trials:
        return True
    study._storage.set_trial_state_values(trial._trial_id, state=TrialState.WAITING)
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

    with _Heartbeat(study._storage, trial._trial_id):
        try:
            values = train_optuna_trial(ctx, trial, stop)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except TrialInterrupted:
            # Told FAIL (never COMPLETE with a half-trained value) and re-queued to resume.
            fail_and_retry(study, trial._trial_id, INTERRUPTED)
        except Exception as error:
            reason = _failure_reason(error, ctx.spec.storage)
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
    from hpo.search.space import suggest

    spec = ctx.spec
    # The retry callback marks the WAITING copy before any worker pops it, so the frozen
    # trial that ask() just read has the mark: no second read of the storage.
    system_attrs = trial._cached_frozen_trial.system_attrs
    retried = system_attrs.get(RETRY_OF_SYSTEM_ATTR) is not None
    output_dir = trial.user_attrs.get(OUTPUT_DIR_ATTR) if retried else None
    output_dir = output_dir or trial_output_dir(spec, trial.number)
    resume = _resumable_checkpoint(trial.user_attrs.get(LAST_CHECKPOINT_ATTR)) if retried else None
    if not retried and _has_checkpoints(output_dir):
        raise HpoError(
            f"{output_dir} already holds checkpoints of another study (trial numbers restart "
            "with a new study); set training.output_dir to a fresh folder or delete it"
        )
    trial.set_user_attr(OUTPUT_DIR_ATTR, output_dir)
    trial.set_user_attr(WORKER_ATTR, local_worker_name())
    suggest(trial, spec.space)
    if resume is not None:
        trial.set_user_attr(RESUMED_FROM_ATTR, resume)
        if not spec.objective.is_multi:
            backfill_reports(trial, resume, spec.objective.metrics[0])
    recorder = StorageRecorder(trial, stop, resumed=resume is not None)
    # The trainer reports (and prunes) single-objective trials; multi-objective ones only train.
    output = train_trial(
        ctx,
        trial,
        output_dir=output_dir,
        resume_from_checkpoint=resume,
        callbacks=[recorder],
    )
    if recorder.interrupted:
        raise TrialInterrupted()
    trial.set_user_attr(TRAIN_METRICS_ATTR, json_safe_metrics(output.metrics))
    return objective_values(spec, output.metrics)


def backfill_reports(trial: optuna.Trial, checkpoint: str, metric: str) -> list[int]:
    """Report the evaluations a checkpoint remembers but the storage lacks.

    A worker killed between writing a checkpoint and reporting that step's value leaves a
    gap the resumed run would never fill (it continues after the checkpoint). The values
    are in the checkpoint's trainer_state.json. Returns the steps reported.
    """
    import json

    key = eval_metric_key(metric)
    state_file = Path(checkpoint) / "trainer_state.json"
    try:
        history = json.loads(state_file.read_text(encoding="utf-8")).get("log_history", [])
    except (OSError, ValueError):
        return []
    known = trial.storage.get_trial(trial._trial_id).intermediate_values
    reported = []
    for row in history:
        step = row.get("step")
        if key in row and isinstance(step, int) and step not in known:
            trial.report(float(row[key]), step)
            reported.append(step)
    return reported


def _resumable_checkpoint(path: Any) -> str | None:
    if path and Path(str(path)).is_dir():
        return str(path)
    return None


def _has_checkpoints(output_dir: str) -> bool:
    path = Path(output_dir)
    return path.is_dir() and any(path.glob("checkpoint-*"))


class StorageRecorder:
    """A trainer callback that keeps the storage up to date while the trial trains.

    On every save: `last_checkpoint` (what a retry resumes from) and, when it changed,
    `best_checkpoint`. On the first step of a resumed trial: `first_step` (past 0). At every
    step end: a pending stop request ends training with a checkpoint at the current step.
    Each attr is one storage write, so nothing is written that has not changed.
    """

    def __init__(self, trial: optuna.Trial, stop: threading.Event, *, resumed: bool = False):
        self._trial = trial
        self._stop = stop
        self._first_step_seen = not resumed  # a fresh trial's first step is 1: nothing to say
        self._best: str | None = None
        self.interrupted = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
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
        self._trial.set_user_attr(LAST_CHECKPOINT_ATTR, str(checkpoint))
        self._record_best(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._record_best(state)

    def _record_best(self, state: Any) -> None:
        best = getattr(state, "best_model_checkpoint", None)
        if best and best != self._best:
            self._best = str(best)
            self._trial.set_user_attr(BEST_CHECKPOINT_ATTR, self._best)


# ---------------------------------------------------------------------------------------------
# Worker processes


def thread_split(cores: int, workers: int) -> list[int]:
    """Torch threads for each of `workers` processes so that together they use `cores`:
    the remainder goes to the first workers; never fewer than one thread each."""
    if workers < 1:
        raise ValueError(f"workers={workers}: must be >= 1")
    cores = max(1, cores)
    base, extra = divmod(cores, workers)
    return [max(1, base + (1 if index < extra else 0)) for index in range(workers)]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_process_main(
    spec: StudySpec,
    worker_index: int,
    deadline: float | None,
    threads: int | None,
    heartbeat: dict[str, int] | None = None,
) -> None:
    """Entry point of a worker process; exits with `work`'s code (or EXIT_WORKER_ERROR)."""
    stop = threading.Event()
    install_stop_handlers(stop)
    if threads is not None:
        for name in THREAD_ENV_VARS:  # set again in case the parent's env was not inherited
            os.environ[name] = str(threads)
        import torch

        torch.set_num_threads(threads)
    # Library chatter from N workers would bury the progress line; errors still show.
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    try:
        code = work(
            spec, worker_index=worker_index, deadline=deadline, stop=stop, **(heartbeat or {})
        )
    except HpoError as error:
        print(f"worker {worker_index}: error: {error}", file=sys.stderr, flush=True)
        code = EXIT_WORKER_ERROR
    except Exception:  # a bug, or the storage gone: say so; the parent re-queues the trial
        import traceback

        text = traceback.format_exc()
        print(f"worker {worker_index}: {scrub_passwords(text, spec.storage)}", file=sys.stderr)
        code = EXIT_WORKER_ERROR
    sys.stdout.flush()
    sys.exit(code)
