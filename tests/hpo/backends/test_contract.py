"""The Backend contract (`hpo.backends`), checked the same way for every backend: one tiny study
run through `hpo.backends.get(name).run(spec)`, then read back from the storage only."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
from helpers.study_files import write_study_file
from optuna.trial import TrialState

from hpo import backends
from hpo.attrs import BEST_CHECKPOINT_ATTR, OUTPUT_DIR_ATTR, TRAIN_METRICS_ATTR
from hpo.errors import HpoError
from hpo.study import load as load_study_file

N_TRIALS = 2
MAX_STEPS = 8
EVAL_STEPS = 4  # write_study_file's: intermediate values at global steps 4 and 8

# What a study file needs to run on each backend, on top of write_study_file's tiny study.
BACKEND_SETTINGS = {
    "optuna": {},
    "ray": {
        # grace_period == max_t: ASHA never stops a trial early, so every trial completes.
        "scheduler": {
            "name": "asha",
            "time_attr": "training_iteration",
            "grace_period": MAX_STEPS // EVAL_STEPS,
            "max_t": MAX_STEPS // EVAL_STEPS,
        },
        "ray": {"max_concurrent_trials": 1, "resources_per_trial": {"cpu": 1}},
    },
}


@pytest.fixture(params=["optuna", "ray"])
def backend_name(request) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_local")
    return request.param


@pytest.fixture
def keep_signal_handlers():
    """`join` makes this process a worker, which takes over SIGINT and SIGTERM; give them back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.slow
def test_a_backend_runs_the_budget_and_leaves_the_truth_in_the_storage(
    backend_name, tmp_path, keep_signal_handlers
):
    study_file = write_study_file(
        tmp_path,
        backend=backend_name,
        budget={"n_trials": N_TRIALS},
        training={"max_steps": MAX_STEPS, "eval_steps": EVAL_STEPS},
        **BACKEND_SETTINGS[backend_name],
    )
    spec = load_study_file(study_file)
    backend = backends.get(backend_name)
    assert backend.name == backend_name

    assert backend.run(spec) == backends.EXIT_OK

    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    trials = study.get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == N_TRIALS
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    for trial in finished:
        assert set(trial.params) == {"learning_rate", "model.n_layer"}
        assert 1e-4 <= trial.params["learning_rate"] <= 1e-2
        assert trial.params["model.n_layer"] in (1, 2)
        assert sorted(trial.intermediate_values) == list(
            range(EVAL_STEPS, MAX_STEPS + 1, EVAL_STEPS)
        )
        assert trial.state == TrialState.COMPLETE  # nothing here prunes
        assert trial.value == pytest.approx(trial.intermediate_values[MAX_STEPS])
    # Retention deleted the trainer's checkpoints (`checkpoint-*`) that no one will load, and
    # cleared the attrs naming them. On Optuna the best trial's best checkpoint is one of them
    # and stays; on Ray the storage names Tune's copies (`checkpoint_*`), which Tune's own
    # num_to_keep keeps, so none of the trainer's stays.
    best = study.best_trial.user_attrs[BEST_CHECKPOINT_ATTR]
    assert best.startswith(str(tmp_path)) and Path(best).is_dir()
    trainer_checkpoints = sorted(tmp_path.rglob("checkpoint-*"))
    others = [t for t in finished if t.number != study.best_trial.number]
    assert len(others) == N_TRIALS - 1
    if backend_name == "optuna":
        assert trainer_checkpoints == [Path(best)]
        assert [t.user_attrs[BEST_CHECKPOINT_ATTR] for t in others] == [None] * len(others)
    else:
        assert trainer_checkpoints == []
        for trial in others:
            assert Path(trial.user_attrs[BEST_CHECKPOINT_ATTR]).is_dir()

    # `join` adds this process as one more worker, or says why this backend does not.
    if backend_name == "optuna":
        assert backend.join(spec) == backends.EXIT_OK  # the budget is met: it starts nothing
        assert len(study.get_trials()) == len(trials)
    else:
        with pytest.raises(HpoError, match=r"hpo worker.*ray start"):
            backend.join(spec)

    for trial in finished:
        assert trial.user_attrs[OUTPUT_DIR_ATTR].startswith(str(tmp_path / "runs"))
        metrics = trial.user_attrs[TRAIN_METRICS_ATTR]
        assert metrics["eval_loss"] == pytest.approx(trial.value)
        assert metrics["epoch"] > 0
