"""The Optuna backend: worker processes sharing one SQL storage, watched by a supervisor.

- `supervisor`: `hpo run` on this machine: forks the workers, watches them and the storage;
- `worker`: the worker loop: ask, claim, train, tell; heartbeats and Ctrl-C;
Importing this package imports neither optuna nor torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpo.spec import StudySpec


class OptunaBackend:
    """`hpo.backends.Backend` for Optuna: N local workers (`run`), or one more (`join`)."""

    name = "optuna"

    def run(self, spec: StudySpec, *, address: str | None = None) -> int:
        from hpo.backends.optuna.supervisor import run_study

        return run_study(spec, address=address)

    def join(self, spec: StudySpec) -> int:
        from hpo.backends.optuna.supervisor import run_worker

        return run_worker(spec)


backend = OptunaBackend()
