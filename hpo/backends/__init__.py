"""The backend contract: how `hpo run` and `hpo worker` hand a validated study to a search engine.

A backend runs a `StudySpec` to its budget and leaves the truth in the study's storage (an
Optuna RDB): every trial with its params, intermediate values at global steps, its true state
(COMPLETE, PRUNED, FAIL; RUNNING only while it runs) and the user attrs of `hpo.attrs`.
Everything that reads a study (`hpo status`, `best`, `export`, retention, the dashboard) relies
on that and on nothing else, so it works the same whichever backend wrote the study.

Two backends exist, each a package behind this Protocol:
- `optuna`: worker processes sharing the storage (`hpo.backends.optuna`);
- `ray`: a Ray Tune `Tuner` whose trials are mirrored into the storage (`hpo.backends.ray`).

`get(name)` imports a backend only when it is used: `hpo status` never loads either.
See docs/ARCHITECTURE.md for how the pieces fit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hpo.spec import StudySpec

# Exit statuses of `run` and `join` (and so of `hpo run` / `hpo worker`).
EXIT_OK = 0  # the budget was reached, or the study was already done
EXIT_FAILED = 1  # too many failed trials, or the run could not go on
EXIT_WORKER_ERROR = 3  # a worker process stopped on an error it cannot get past
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


# name -> "module:attribute" of the object implementing Backend, imported on first use.
_REGISTRY = {
    "optuna": "hpo.backends.optuna:backend",
    "ray": "hpo.backends.ray:backend",
}
NAMES = tuple(_REGISTRY)


def get(name: str) -> Backend:
    """The backend called `name` (a study's `backend:` key, already validated)."""
    try:
        module_name, attribute = _REGISTRY[name].split(":")
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}") from None
    return getattr(importlib.import_module(module_name), attribute)
