"""The backend contract: how `hpo run` and `hpo worker` hand a validated study to a search engine.

A backend runs a `StudySpec` to its budget and leaves the truth in the study's storage (an
Optuna RDB): every trial with its params, intermediate values at global steps, its true state
(COMPLETE, PRUNED, FAIL; RUNNING only while it runs) and the user attrs of `hpo.attrs`.
Everything that reads a study (`hpo status`, `best`, `export`, retention, the dashboard) relies
on that and on nothing else, so it works the same whichever backend wrote the study.

Two backends exist, each a package behind this Protocol:
- `optuna`: worker processes sharing the storage (`hpo.backends.optuna`);
- `ray`: a Ray Tune `Tuner` whose trials are mirrored into the storage (`hpo.backends.ray`).

`get(name)` imports a backend's code only when it runs: `hpo status` never loads either.
See docs/ARCHITECTURE.md for how the pieces fit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hpo.spec import StudySpec

# Exit statuses of `run` and `join` (and so of `hpo run` / `hpo worker`).
EXIT_OK = 0  # the budget was reached, or the study was already done
EXIT_FAILED = 1  # too many failed trials, or the run could not go on
EXIT_WORKER_ERROR = 3  # a worker process stopped on an error it cannot get past
EXIT_DISK_ERROR = 4  # a worker process stopped: training.output_dir's disk is full or read-only
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM: running trials were checkpointed; a rerun continues


class Backend(Protocol):
    """Runs one study to its budget and records every trial in the study's storage."""

    name: str

    def run(self, spec: StudySpec, *, address: str | None = None) -> int:
        """Run (or continue) the study until its budget is met; returns an exit status.

        `address` is a cluster to run on, for backends that have one (else an HpoError).
        """
        ...

    def join(self, spec: StudySpec) -> int:
        """Add this process to a study that is running elsewhere, as one more worker.

        Backends where another machine joins differently raise an HpoError that says how.
        """
        ...


class _LazyBackend:
    """A Backend whose code is imported when it is called: `get` loads no engine.

    `run_study` and `run_worker` are "module:function" names; `run_worker` None means the
    backend has no `join`, and `no_join` says what to do instead.
    """

    def __init__(self, name: str, run_study: str, run_worker: str | None, no_join: str = ""):
        self.name = name
        self._run_study, self._run_worker, self._no_join = run_study, run_worker, no_join

    def run(self, spec: StudySpec, *, address: str | None = None) -> int:
        return _function(self._run_study)(spec, address=address)

    def join(self, spec: StudySpec) -> int:
        if self._run_worker is None:
            from hpo.errors import HpoError

            raise HpoError(f"backend: {spec.backend!r}: {self._no_join}")
        return _function(self._run_worker)(spec)


def _function(target: str) -> Callable[..., int]:
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


_BACKENDS = {
    backend.name: backend
    for backend in (
        _LazyBackend(
            "optuna",
            run_study="hpo.backends.optuna.supervisor:run_study",
            run_worker="hpo.backends.optuna.supervisor:run_worker",
        ),
        _LazyBackend(
            "ray",
            run_study="hpo.backends.ray.tuner:run_study",
            run_worker=None,
            no_join="`hpo worker` joins Optuna studies; for Ray, add the machine to the Ray "
            "cluster (`ray start --address ...`) instead",
        ),
    )
}
NAMES = tuple(_BACKENDS)


def get(name: str) -> Backend:
    """The backend called `name` (a study's `backend:` key, already validated)."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}") from None
