"""A study's storage: the SQL database both backends write and every reader reads.

- `urls`: masking passwords, drivers, SQLite paths (imports nothing heavy);
- `rdb`: opening optuna's RDBStorage for many workers, sweeping the trials of dead workers;
- `resilient`: storage calls retried across a database restart; the compare-and-set claim;
- `study_lock`: one lock per study around counting the budget and asking for a trial;
- `reader`: `hpo status` / `hpo best` answered by SQL on optuna's schema;
- `optuna_compat`: every use of optuna's private API or schema, each checked by a test;
- `retention`: deleting the checkpoints nobody will need.
"""
