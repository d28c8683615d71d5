"""The Optuna backend: worker processes sharing one SQL storage, watched by a supervisor.

- `supervisor`: `hpo run` on this machine (watches the workers and the storage) and `hpo worker`;
- `processes`: the local worker processes: fork server, threads per worker, start and stop;
- `worker`: the worker loop: ask, claim, train, tell; heartbeats and Ctrl-C;
- `budget`: n_trials and max_failed_trials, counted in the storage;
- `requeue`: failing a trial cut short and queueing the copy that resumes it;
- `shared_study`: the study every worker opens, with its sampler, pruner and heartbeat settings.
`hpo.backends.get("optuna")` runs it. Importing this package imports neither optuna nor torch.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # never runs: mypy checks the functions `hpo.backends` names against Backend
    from hpo.backends import Backend
    from hpo.backends.optuna import supervisor

    class _Checked:
        name = "optuna"
        run = staticmethod(supervisor.run_study)
        join = staticmethod(supervisor.run_worker)

    _check: Backend = _Checked()
