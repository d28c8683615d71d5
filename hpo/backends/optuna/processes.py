"""The worker processes of one `hpo run` on this machine: started, given their share of the
cores, signalled, joined.

Workers are forked from a fork server that imported torch and transformers once, so no worker
pays for those imports, and none inherits a thread pool or a database connection of the
parent. Each sets its torch thread count before its first operation, then runs
`hpo.backends.optuna.worker.work`.

Workers never outlive the run: `hpo run` -> fork server -> workers, and a fork server exits
when `hpo run` does. Each worker asks the kernel for SIGTERM when its parent (the fork
server) dies (PR_SET_PDEATHSIG, Linux), and also watches `hpo run`'s pid once a second (any
system): either way it checkpoints its trial, queues it to resume, and exits. A rerun picks
the trial up.

A fork server can die too (killed, out of memory). multiprocessing then reports its workers
as exited with 255 although some may still be stopping: they are watched by pid until they
are gone, then counted as lost and replaced like killed ones (the next start launches a new
fork server).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from hpo.backends import EXIT_DISK_ERROR, EXIT_INTERRUPTED, EXIT_WORKER_ERROR
from hpo.backends.optuna.requeue import pid_alive
from hpo.backends.optuna.trial import OutputDiskError
from hpo.backends.optuna.worker import install_stop_handlers, work
from hpo.backends.placement import (
    Placement,
    WorkerSlot,
    available_cores,
    place_study,
    thread_split,
)
from hpo.backends.trial_ranks import RANK_DEVICES_ENV
from hpo.errors import HpoError
from hpo.spec import StudySpec
from hpo.storage.resilient import StorageUnavailable
from hpo.storage.urls import scrub_passwords

# Thread pools that read their size from the environment when torch loads them.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# A worker's exit status when the storage stayed unreachable past the outage limit
# (EX_TEMPFAIL): not the study's fault, so the worker is replaced while the budget is open.
EXIT_STORAGE_LOST = 75
# What multiprocessing reports for a worker whose fork server died: its real status is lost.
EXIT_UNKNOWN = 255
# How often a worker checks that `hpo run` is alive, and how long it then gets to checkpoint
# before it exits anyway.
PARENT_CHECK_S = 1.0
ORPHAN_GRACE_S = 120.0
# prctl(2): deliver a signal to this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent(stop: threading.Event, run_pid: int | None) -> None:
    """Stop this worker (as SIGTERM does) when its parent or `hpo run` (`run_pid`) dies.

    PR_SET_PDEATHSIG is immediate but Linux-only and tied to the direct parent; the watcher
    thread covers other systems, `hpo run` itself, and a parent that died before the prctl.
    A worker that has not exited ORPHAN_GRACE_S after noticing exits without its checkpoint.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl here: the watcher still works
            pass

    def orphaned() -> bool:
        return os.getppid() != parent or (run_pid is not None and not pid_alive(run_pid))

    def watch() -> None:
        while not orphaned():
            time.sleep(PARENT_CHECK_S)
        stop.set()
        time.sleep(ORPHAN_GRACE_S)
        os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="hpo-parent-watch", daemon=True).start()


def worker_process_main(
    spec: StudySpec,
    slot: WorkerSlot,
    deadline: float | None,
    heartbeat: dict[str, int] | None = None,
    run_start: dict[str, int] | None = None,
    run_pid: int | None = None,
) -> None:
    """Entry point of a worker process; exits with `work`'s code (or EXIT_WORKER_ERROR, or
    EXIT_STORAGE_LOST)."""
    stop = threading.Event()
    install_stop_handlers(stop)
    die_with_parent(stop, run_pid)
    # Before anything touches CUDA: the fork server imported torch but never initialised CUDA
    # (torch reads CUDA_VISIBLE_DEVICES when it does), so this worker sees only its GPUs.
    visible = slot.cuda_visible_devices()
    if visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    if slot.gpus:  # the other ranks of a multi-process trial take the slot's other GPUs
        os.environ[RANK_DEVICES_ENV] = ",".join(slot.gpus)
    threads, worker_index = slot.threads, slot.index
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
            spec,
            worker_index=worker_index,
            deadline=deadline,
            stop=stop,
            **(heartbeat or {}),
            **(run_start or {}),
        )
    except StorageUnavailable as error:
        print(f"worker {worker_index}: error: {error}", file=sys.stderr, flush=True)
        code = EXIT_STORAGE_LOST
    except OutputDiskError as error:
        print(f"worker {worker_index}: error: {error}", file=sys.stderr, flush=True)
        code = EXIT_DISK_ERROR
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


def preload_modules(spec: StudySpec) -> list[str]:
    """What every worker imports before its first trial (torch, transformers, the model's code).

    A fork server imports them once and forks each worker from there: a worker (and a worker
    started to replace a dead one) begins in milliseconds instead of re-importing for seconds.
    """
    return preload_modules_for((spec.model.config or {}).get("model_type"))


def preload_modules_for(model_type: Any) -> list[str]:
    """`preload_modules` for a model_type as written in the study file (or None)."""
    modules = ["torch", "transformers", "optuna", "sqlalchemy", "trainer.trainer", "hpo.data"]
    if isinstance(model_type, str):
        name = model_type.replace("-", "_")
        modules.append(f"transformers.models.{name}.modeling_{name}")
    # Opening the storage imports alembic (optuna checks the schema version with it): half a
    # second per worker start, unless the fork server has imported it already.
    modules += [f"alembic.{name}" for name in ("command", "config", "migration", "script")]
    modules += ["optuna.storages._rdb.storage", "hpo.storage.rdb", "hpo.backends.optuna.worker"]
    return [*modules, "hpo.backends.optuna.preloaded"]  # last: freezes all of the above


def start_fork_server(workers: int, model_type: Any) -> None:
    """Start the workers' fork server now, without waiting for its imports.

    `hpo run` calls this as soon as the study file's shape is checked: the server imports
    torch and transformers while the parent's validation (which imports them too, to build
    the model on the meta device) runs, instead of after it. On two cores or more the first
    trial then starts about one import time after `hpo run`, not two. The workers are forked
    from this server later (`worker_context` finds it running).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload_modules_for(model_type))
    threads = thread_split(available_cores(), max(1, workers))[0]
    with _thread_env(threads):  # torch's pools read them when the server imports it
        multiprocessing.forkserver.ensure_running()


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """THREAD_ENV_VARS set to `threads` for the processes started inside (then restored)."""
    saved = {name: os.environ.get(name) for name in THREAD_ENV_VARS}
    os.environ.update({name: str(threads) for name in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def worker_context(spec: StudySpec) -> Any:
    """'forkserver' with the heavy imports preloaded; 'spawn' where there is no fork server.

    Never plain 'fork': the parent holds database connections and threads a fork would copy.
    Each worker sets its own torch thread count before its first operation.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(preload_modules(spec))
        return context
    return multiprocessing.get_context("spawn")


class LocalWorkers:
    """The worker processes of one `hpo run` on this machine."""

    def __init__(
        self,
        spec: StudySpec,
        *,
        deadline: float | None,
        heartbeat: dict[str, int],
        placement: Placement | None = None,
        run_start: dict[str, int] | None = None,
    ):
        self.spec = spec
        self.deadline = deadline
        self.heartbeat = heartbeat
        self.placement = placement or place_study(spec)
        # What the study held when the run started (`work`'s trials_before, failed_earlier).
        self.run_start = dict(run_start or {})
        self.processes: dict[int, Any] = {}  # worker index -> Process
        # Workers whose fork server died: index -> pid, watched until the process is gone.
        self.orphans: dict[int, int] = {}
        self.exit_codes: dict[int, int] = {}  # worker index -> exit code of its last process
        self.restarts = 0
        self._context = worker_context(spec)

    def start(self, index: int) -> None:
        slot = self.placement.slots[index]
        threads = slot.threads
        process = self._context.Process(
            target=worker_process_main,
            args=(self.spec, slot, self.deadline, self.heartbeat, self.run_start, os.getpid()),
            name=f"hpo-worker-{index}",
        )
        # OpenMP and MKL read these when torch loads in the child; set them for its start only.
        with _thread_env(threads):
            process.start()
        self.processes[index] = process

    def start_all(self) -> None:
        for index in range(self.placement.workers):
            self.start(index)

    def alive(self) -> list[Any]:
        return [p for p in self.processes.values() if p.is_alive()]

    def running(self) -> bool:
        """Whether any worker may still be at work (started, or orphaned and stopping)."""
        return bool(self.processes or self.orphans)

    def wait_for_exit(self, timeout: float) -> None:
        """Sleep `timeout` seconds, or less if a worker process exits meanwhile."""
        from multiprocessing.connection import wait

        by_sentinel = {process.sentinel: process for process in self.processes.values()}
        if not by_sentinel:  # only orphans (watched by pid) or nothing: plain sleep
            time.sleep(timeout)
            return
        for sentinel in wait(list(by_sentinel), timeout):
            # The sentinel can signal a moment before the exit status can be read: join (it
            # returns at once for a process that is gone) so `collect_exits` sees the status.
            by_sentinel[sentinel].join(timeout)

    def collect_exits(self) -> dict[int, tuple[int, int]]:
        """Workers that exited since the last call: {index: (pid, exit code)}.

        A worker whose fork server died is reported (with EXIT_UNKNOWN) only once its process
        is gone: until then it may still be writing its checkpoint.
        """
        exited = {}
        for index, process in list(self.processes.items()):
            if process.exitcode is not None:
                process.join()
                del self.processes[index]
                if process.exitcode == EXIT_UNKNOWN:
                    self.orphans[index] = process.pid
                else:
                    exited[index] = (process.pid, process.exitcode)
        for index, pid in list(self.orphans.items()):
            if not pid_alive(pid):
                del self.orphans[index]
                exited[index] = (pid, EXIT_UNKNOWN)
        for index, (_, code) in exited.items():
            self.exit_codes[index] = code
        return exited

    def signal_all(self, signum: int) -> None:
        pids = [process.pid for process in self.alive()] + list(self.orphans.values())
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def join(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for process in list(self.processes.values()):
            process.join(max(0.0, end - time.monotonic()))

    def kill_all(self) -> None:
        self.signal_all(signal.SIGKILL)
        for process in self.processes.values():
            process.join()
