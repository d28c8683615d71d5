"""`hpo run` and `hpo worker` on the Optuna backend: start the workers, watch them, report.

`run_study` starts `workers` local processes (`processes`), each with its share of the cores.
It then watches them and the storage about once a second: it re-queues the trials of a worker
that died (and starts a replacement), fails trials whose heartbeat went stale, deletes
checkpoints nobody will need, and refreshes the progress line. Ctrl-C asks the workers to
checkpoint and re-queue their trials; running `hpo run` again continues the same study.
`run_worker` is `hpo worker`: this process joins a study as one more worker.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
import warnings
from typing import Any

from hpo.backends import (
    EXIT_DISK_ERROR,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_WORKER_ERROR,
)
from hpo.backends.objective import check_output_dir
from hpo.backends.optuna.budget import (
    count_trials,
    failure_limit_text,
    failures_exceeded,
    stop_reason,
    too_many_failures_message,
)
from hpo.backends.optuna.processes import EXIT_STORAGE_LOST, EXIT_UNKNOWN, LocalWorkers
from hpo.backends.optuna.requeue import local_worker_name, reap_dead_local_trials
from hpo.backends.optuna.shared_study import (
    heartbeat_options,
    open_study,
    pruning_note,
)
from hpo.backends.optuna.worker import install_stop_handlers, work
from hpo.backends.placement import Placement, place_study
from hpo.backends.study_record import check_stored
from hpo.backends.warm_start import load_source, start_study
from hpo.durations import format_clock
from hpo.errors import HpoError
from hpo.report.progress import LiveView, best_summary, format_progress, running_trials
from hpo.spec import StudySpec
from hpo.storage.rdb import open_storage
from hpo.storage.resilient import StorageUnavailable, outage_limit_s
from hpo.storage.urls import mask_url

# How long interrupted workers get to write their checkpoint before they are killed.
STOP_GRACE_S = 120.0
# How often the parent looks at its workers and the storage (and refreshes the progress line).
WATCH_INTERVAL_S = 1.0
# How often (at most) finished trials' checkpoints are cleaned up during a run.
RETAIN_EVERY_S = 30.0
# How long `hpo run` waits for a lost storage once no worker is left: 5 outage limits
# (HPO_STORAGE_OUTAGE_S), at least a minute. Its workers' trials are re-queued and the workers
# replaced once the storage is back.
STORAGE_PATIENCE_LIMITS = 5
STORAGE_PATIENCE_MIN_S = 60.0
# How many times dead workers are replaced in one run (per worker slot) before giving up.
MAX_RESTARTS_PER_WORKER = 3


def run_study(spec: StudySpec, *, address: str | None = None) -> int:
    """Run the study to its budget (continuing it if it exists); returns the exit status.

    `address` (a Ray cluster) is refused: Optuna workers on other machines join through the
    storage instead (`hpo worker`).
    """
    if address:
        raise HpoError(
            "--address: only for `backend: ray`; Optuna workers share the storage instead"
        )
    return OptunaRun(spec).run()


def run_worker(spec: StudySpec) -> int:
    """Join the study as one more worker (another process, or another machine on PostgreSQL)."""
    stop = threading.Event()
    install_stop_handlers(stop)
    deadline = time.time() + spec.budget.timeout_s if spec.budget.timeout_s else None
    print(f"worker {local_worker_name()} joining study {spec.name!r} on {mask_url(spec.storage)}")
    # A worker trains what its own study file says: one whose objective or task is not the
    # study's stops here (exit 2); a space change is `hpo run`'s to record.
    for line in check_stored(spec)[0].space_changes:
        print(f"note: this worker's study file changed the space: {line}")
    # Distinct from the local workers' indices (0..N-1), and from other machines' workers.
    index = spec.workers + os.getpid() % 100_000
    code = work(spec, worker_index=index, deadline=deadline, stop=stop)
    print(f"worker {local_worker_name()} done (exit {code})")
    return code


class OptunaRun:
    """One `hpo run` of an Optuna study on this machine."""

    def __init__(
        self,
        spec: StudySpec,
        *,
        stream: Any = None,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        placement: Placement | None = None,
    ):
        # Which worker trains on which GPU (or how many CPU threads), decided before any
        # process starts; `workers: auto` becomes a number here.
        self.placement = placement or place_study(spec)
        spec = dataclasses.replace(spec, workers=self.placement.workers)
        self.spec = spec
        self.out = LiveView(stream)
        self.heartbeat = heartbeat_options(heartbeat_interval, grace_period)
        self.started = time.time()
        self._exited: dict[int, tuple[int, int]] = {}  # worker exits not handled yet
        self.deadline = self.started + spec.budget.timeout_s if spec.budget.timeout_s else None
        self.failed_earlier = 0  # the study's failures when this run started

    def run(self) -> int:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        spec = self.spec
        check_output_dir(spec)
        # Read before anything is written: a warm_start source that is not there, or a study
        # file whose objective or task changed since the study began, stops the run here.
        rerun, stored_attrs = check_stored(spec)
        warm = load_source(spec)
        self.storage = open_storage(spec.storage, workers=spec.workers, **self.heartbeat)
        self.study = open_study(spec, self.storage)
        self._print_header()
        lines, _ = start_study(spec, self.study, self.storage.engine, rerun, stored_attrs, warm)
        for line in lines:
            self.out.message(line)
        # Trials left RUNNING by a run that was killed as a whole: their processes are gone.
        reaped = reap_dead_local_trials(self.study)
        if reaped:
            self.out.message(f"re-queued trials {reaped} of a previous run whose workers are gone")
        # Failures before this run do not count against its limit; the trial count seeds the
        # workers' samplers so that a rerun does not replay the first run's params.
        at_start = count_trials(self.study)
        self.failed_earlier = at_start.failed
        if not self._work_left():
            return self._finish(interrupted=False)
        self.disk_error = False  # a worker stopped because training.output_dir's disk refused
        run_start = {"trials_before": at_start.total, "failed_earlier": self.failed_earlier}
        self.workers = LocalWorkers(
            spec,
            deadline=self.deadline,
            heartbeat=self.heartbeat,
            placement=self.placement,
            run_start=run_start,
        )
        self.workers.start_all()
        # SIGTERM (docker stop, a batch scheduler) stops the run as cleanly as Ctrl-C does.
        # Signal handlers can only be set from the main thread (an embedding app may not be).
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:
            previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self._watch()
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
            self._stop_workers()
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous_sigterm)
        return self._finish(interrupted=interrupted)

    # --- watching -----------------------------------------------------------------------------

    def _watch(self) -> None:
        from hpo.storage.rdb import sweep_stale_trials

        finished_seen, retained_at = 0, time.monotonic()
        storage_lost_since: float | None = None
        while self.workers.running() or self._exited:
            # Woken early by a worker's exit: the run ends as soon as its last worker does.
            self.workers.wait_for_exit(WATCH_INTERVAL_S)
            try:
                self._handle_exits()
                sweep_stale_trials(self.storage, self.spec.name)
            except StorageUnavailable as error:
                # Every storage call already waited out the outage limit. The workers wait
                # too, or exit and are replaced once the storage is back: keep watching, while
                # workers run or for a few outage limits more.
                now = time.monotonic()
                if storage_lost_since is None:
                    storage_lost_since = now
                    self.out.message(f"{error}; still waiting for it")
                patience = max(STORAGE_PATIENCE_MIN_S, STORAGE_PATIENCE_LIMITS * outage_limit_s())
                if not self.workers.running() and now - storage_lost_since > patience:
                    raise
                continue
            if storage_lost_since is not None:
                self.out.message("storage reachable again")
                storage_lost_since = None
            counts = self._show_progress()
            finished = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
            # Retention reads every trial: now and then while trials finish, and at the end.
            if finished != finished_seen and time.monotonic() - retained_at >= RETAIN_EVERY_S:
                finished_seen, retained_at = finished, time.monotonic()
                self._retain()

    def _handle_exits(self) -> None:
        # Exits stay pending until their trials are re-queued and their workers replaced: a
        # storage outage in between only delays that.
        self._exited.update(self.workers.collect_exits())
        exited = self._exited
        if not exited:
            return
        # A worker that exits normally has told the storage about its trials; any trial still
        # RUNNING under its pid was cut short, and is re-queued to resume from its checkpoint.
        gone = {pid: _exit_reason(pid, code) for pid, code in exited.values()}
        reaped = reap_dead_local_trials(self.study, dead_pids=gone)
        work_left = self._work_left()
        self._exited = {}
        for pid, code in exited.values():
            if _replaceable(code):
                self.out.message(f"{gone[pid]}; re-queued to resume: trials {reaped or 'none'}")
        if any(code == EXIT_DISK_ERROR for _, code in exited.values()) and not self.disk_error:
            # The disk is shared: the other workers' next checkpoint would fail too. They save
            # (if they can) and re-queue their trials, as on Ctrl-C; the budget is not spent.
            self.disk_error = True
            self.out.message("stopping: training.output_dir's disk refused a checkpoint")
            self.workers.signal_all(signal.SIGTERM)
        for index, (_, code) in exited.items():
            if not _replaceable(code) or not work_left or self.disk_error:
                continue  # an error in the study (or a full disk) would only repeat
            if self.workers.restarts >= MAX_RESTARTS_PER_WORKER * self.spec.workers:
                self.out.message("workers keep getting killed; not starting another one")
                continue
            self.workers.restarts += 1
            # A replacement's sampler must not replay the sequence its predecessor drew.
            self.workers.run_start["trials_before"] = count_trials(self.study).total
            self.workers.start(index)

    def _work_left(self) -> bool:
        counts = count_trials(self.study, failed_earlier=self.failed_earlier)
        return stop_reason(self.spec, counts, deadline=self.deadline, now=time.time()) is None

    def _show_progress(self) -> dict[str, int]:
        from hpo.storage import reader

        try:
            report = reader.status(self.spec.storage, self.spec.name)
        except HpoError:
            return {}
        counts = report.get("counts") or {}
        line = format_progress(
            counts,
            n_trials=self.spec.budget.n_trials,
            best=best_summary(report.get("best")),
            elapsed_s=time.time() - self.started,
        )
        trials = running_trials(report.get("running") or [], self.spec.training.get("max_steps"))
        # Off a terminal, print when something changed, not for every tick of the clock.
        self.out.update(line, trials, key=line.rsplit(" | ", 1)[0])
        return counts

    def _retain(self) -> None:
        if self.spec.keep == "all":
            return
        from hpo.storage.retention import apply_retention

        try:
            apply_retention(self.spec, self.study)
        except OSError as error:  # disk cleanup must never stop a study
            self.out.message(f"checkpoint cleanup skipped: {error}")

    def _stop_workers(self) -> None:
        self.out.message(
            "stopping: the running trials save a checkpoint and are queued to resume "
            "(Ctrl-C again to kill them now)"
        )
        self.workers.signal_all(signal.SIGTERM)
        try:
            self.workers.join(STOP_GRACE_S)
        except KeyboardInterrupt:
            pass
        if self.workers.alive():
            self.workers.kill_all()
        exited = self.workers.collect_exits()
        killed = {
            pid: f"worker process {pid} was killed while stopping" for pid, code in exited.values()
        }
        reap_dead_local_trials(self.study, dead_pids=killed)

    # --- reporting ----------------------------------------------------------------------------

    def _print_header(self) -> None:
        spec = self.spec
        budget = spec.budget
        limits = []
        if budget.n_trials is not None:
            limits.append(f"{budget.n_trials} trials")
        if budget.timeout_s is not None:
            limits.append(f"timeout {format_clock(budget.timeout_s)}")
        limits.append(failure_limit_text(spec))
        self.out.message(
            f"study {spec.name!r} on {mask_url(spec.storage)}: {self.placement.describe()}, "
            f"sampler {spec.sampler.name}, "
            f"pruner {spec.pruner.name}; budget: {', '.join(limits) or 'none'}"
        )
        for warning in spec.warnings:
            self.out.message(f"note: {warning}")
        note = pruning_note(spec)
        if note:
            self.out.message(f"note: {note}")

    def _finish(self, *, interrupted: bool) -> int:
        from hpo.report.status import format_best
        from hpo.storage import reader

        spec = self.spec
        self._show_progress()
        self.out.close()
        self._retain()
        counts = count_trials(self.study, failed_earlier=self.failed_earlier)
        print(
            f"{counts.finished} finished ({counts.complete} complete, {counts.pruned} pruned), "
            f"{counts.failed} failed, {counts.running} running, {counts.waiting} queued "
            f"in {format_clock(time.time() - self.started)}"
            + (f" (and {counts.warm_started} warm-start copies)" if counts.warm_started else "")
        )
        try:
            print(format_best(reader.best(spec.storage, spec.name)))
        except HpoError as error:
            print(str(error))
        study_file = spec.source_path or "<study file>"
        print(f"open the dashboard: hpo dashboard {study_file}")
        if interrupted:
            print(
                f"interrupted: running trials were checkpointed and queued; "
                f"`hpo run {study_file}` continues the study"
            )
            return EXIT_INTERRUPTED
        if getattr(self, "disk_error", False):
            print(
                f"error: stopped because training.output_dir ({spec.output_dir}) could not take "
                "a checkpoint (the worker's error above says why); the stopped trials are "
                f"queued: `hpo run {study_file}` resumes them",
                file=sys.stderr,
            )
            return EXIT_FAILED
        if failures_exceeded(spec, counts):
            print(too_many_failures_message(spec, counts), file=sys.stderr)
            return EXIT_FAILED
        exit_codes = getattr(getattr(self, "workers", None), "exit_codes", {})
        if exit_codes and all(c == EXIT_WORKER_ERROR for c in exit_codes.values()):
            print("error: every worker stopped with an error (see above)", file=sys.stderr)
            return EXIT_FAILED
        left = stop_reason(spec, counts, deadline=self.deadline, now=time.time()) is None
        if left:
            # Exit 0 means the budget was met; workers that all stopped (or were lost) before
            # it are a failed run, whatever their exit codes said.
            target = f" of {spec.budget.n_trials}" if spec.budget.n_trials is not None else ""
            print(
                f"error: the run stopped before its budget: {counts.finished}{target} trials "
                f"finished, {counts.waiting} queued; `hpo run {study_file}` continues the study",
                file=sys.stderr,
            )
            return EXIT_FAILED
        return EXIT_OK


def _replaceable(code: int) -> bool:
    """Whether a worker that exited with `code` is replaced while the budget is open: one
    that was killed, lost its fork server, or lost the storage, but not one that stopped on an
    error of the study (which would only repeat)."""
    return code < 0 or code in (EXIT_UNKNOWN, EXIT_STORAGE_LOST)


def _exit_reason(pid: int, code: int) -> str:
    if code == EXIT_UNKNOWN:
        return f"worker process {pid} was lost with its fork server"
    if code == EXIT_STORAGE_LOST:
        return f"worker process {pid} could not reach the storage"
    if code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:  # a signal number Python has no name for
            name = ""
        return f"worker process {pid} was killed by signal {-code}{name}"
    return f"worker process {pid} exited with code {code} during the trial"


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
