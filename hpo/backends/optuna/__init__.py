"""The Optuna backend: worker processes sharing one SQL storage, watched by a supervisor.

- `supervisor`: `hpo run` on this machine (watches the workers and the storage) and `hpo worker`;
- `processes`: the local worker processes: fork server, threads per worker, start and stop;
- `worker`: the worker loop: ask, claim, train, tell; heartbeats and Ctrl-C;
- `budget`: n_trials and max_failed_trials, counted in the storage;
- `requeue`: failing a trial cut short and queueing the copy that resumes it;
- `shared_study`: the study every worker opens, with its sampler, pruner and heartbeat settings.
`hpo.backends.get("optuna")` runs it. Importing this package imports neither optuna nor torch.
"""
