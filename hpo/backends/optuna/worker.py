"""The Optuna backend inside one worker process: ask a trial, claim it, train it, tell the storage.

Every worker (the N local ones `hpo run` starts, or an `hpo worker` on another machine) runs
`work()`. Workers share nothing but the study's storage, which decides everything:

- the budget (`budget`): a worker starts a trial only while finished + running < n_trials,
  and gives a trial it asked for back (WAITING) when another worker claimed the last slot in
  the same instant;
- resume (`requeue`): a trial whose worker died is failed and re-queued as a WAITING copy
  that keeps params, user attrs and intermediate values; the worker that pops it resumes
  from the newest complete checkpoint in the trial's folder (`resume.resume_point`: usually the
  one recorded in `last_checkpoint`, which the trainer records before it deletes older ones);
- Ctrl-C: a stop request checkpoints the running trial at its current step, marks it FAIL
  with reason "interrupted" and re-queues it, so the next `hpo run` resumes it.
"""

from __future__ import annotations

import gc
import random
import signal
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from hpo.backends import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from hpo.backends.objective import TrialContext, freeze_setup_objects, prepare
from hpo.backends.optuna.budget import count_trials, failures_exceeded, slot_free, stop_reason
from hpo.backends.optuna.shared_study import heartbeat_options, open_study
from hpo.backends.optuna.trial import run_trial
from hpo.spec import StudySpec
from hpo.storage.optuna_compat import trial_id_of
from hpo.storage.rdb import open_storage

if TYPE_CHECKING:
    import optuna


# How often an idle worker looks at the storage again. One count query: cheap enough to do
# often, and a worker that waits on the last running trial exits this soon after it ends.
_POLL_S = 0.25


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
