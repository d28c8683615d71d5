"""Optuna studies written into a real storage, for the tests that read one back with SQL.

build_study(): finished trials of each kind plus running ones, with steps and checkpoints;
with_password(): a storage URL carrying SECRET, so a test can check that no output shows it;
set_schema_revision(): a storage that claims another optuna schema revision.
"""

from __future__ import annotations

import optuna
import sqlalchemy

SECRET = "inspect-Pa55word"


def with_password(url: str, password: str = SECRET) -> str:
    """The same URL with a password (PostgreSQL here trusts any password)."""
    return sqlalchemy.engine.make_url(url).set(password=password).render_as_string(False)


def build_study(url: str, name: str = "demo") -> optuna.Study:
    """Four finished trials of each kind plus one still running, with steps and checkpoints."""
    sampler = optuna.samplers.RandomSampler(seed=0)  # cheap: the sampler is not under test
    study = optuna.create_study(study_name=name, storage=url, sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        batch = trial.suggest_categorical("per_device_train_batch_size", [8, 16, 32])
        layers = trial.suggest_int("model.n_layer", 1, 4)
        trial.set_user_attr("best_checkpoint", f"runs/{name}/trial-{trial.number}/checkpoint-30")
        for step in (10, 20, 30):
            trial.report(lr * 100 / step, step)
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 3:
            raise RuntimeError("out of memory")
        return lr * 100 + batch / 1000 + layers / 100

    study.optimize(objective, n_trials=6, catch=(RuntimeError,))
    running = study.ask()
    running.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
    running.report(0.9, 10)
    running.report(0.7, 20)
    study.ask()  # a second running trial that has reported nothing yet
    return study


def set_schema_revision(url: str, revision: str) -> None:
    """Rewrite the storage's `alembic_version` row, as another optuna version would leave it."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                sqlalchemy.text("UPDATE alembic_version SET version_num = :r"), {"r": revision}
            )
    finally:
        engine.dispose()
