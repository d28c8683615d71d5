"""Trainer.hyperparameter_search on our trainer: the optuna study lands in an SQL storage that
`hpo status` reads, compute_objective is what is reported and pruned on, and the Ray backend
returns the same BestRun. (The same script through transformers.Trainer and ours:
tests/one_import/test_hyperparameter_search.py.)"""

from __future__ import annotations

import json
import os

import pytest
from helpers import tiny_models
from helpers.tiny_models import Regression, RegressionData, quiet_args

from trainer import Trainer


def regression_init(trial):
    return Regression()


def hp_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)}


def small_trainer(output_dir, **overrides):
    args = quiet_args(
        output_dir,
        max_steps=6,
        per_device_train_batch_size=8,
        eval_strategy="steps",
        eval_steps=2,
        **overrides,
    )
    return Trainer(
        model_init=regression_init,
        args=args,
        train_dataset=RegressionData(),
        eval_dataset=RegressionData(rows=16, seed=1),
    )


def test_every_trial_is_in_a_storage_that_hpo_status_reads(tmp_path, capsys):
    import optuna
    from transformers.trainer_utils import BestRun

    from hpo.storage import reader

    trainer = small_trainer(tmp_path / "search")
    best = trainer.hyperparameter_search(
        hp_space=hp_space,
        # maximize the negated loss, doubled: what is stored must be this, not eval_loss
        compute_objective=lambda metrics: -2.0 * metrics["eval_loss"],
        n_trials=3,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    assert isinstance(best, BestRun)
    url = f"sqlite:///{tmp_path / 'search' / 'hp_search.db'}"
    status = reader.status(url, "search")  # the default study name: output_dir's folder name
    assert status["counts"]["COMPLETE"] == 3
    stored_best = reader.best(url, "search")
    assert str(stored_best["number"]) == best.run_id
    assert stored_best["value"] == pytest.approx(best.objective)
    assert stored_best["params"] == best.hyperparameters
    assert stored_best["user_attrs"]["output_dir"] == os.path.join(
        str(tmp_path / "search"), f"run-{best.run_id}"
    )
    study = optuna.load_study(study_name="search", storage=url)
    for trial in study.trials:
        values = trial.intermediate_values
        assert sorted(values) == [2, 4, 6]
        assert all(value < 0 for value in values.values())  # -2 * eval_loss, never eval_loss
        assert trial.value == pytest.approx(values[6])  # the last evaluation's objective
    # `hpo status` itself, through a study file that names just the study and its storage
    from hpo.cli import main

    study_file = tmp_path / "search.yaml"
    study_file.write_text(f"name: search\nstorage: {url}\n", encoding="utf-8")
    capsys.readouterr()  # the trials' log rows, printed as Transformers prints them
    assert main(["status", str(study_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["COMPLETE"] == 3
    # the trainer is left as it was: its own args, no model held
    assert trainer.args.output_dir == str(tmp_path / "search")
    assert trainer.model is None


def test_a_rerun_continues_the_same_study_and_pruning_stops_trials(tmp_path):
    import optuna

    trainer = small_trainer(tmp_path / "again")
    for _ in range(2):
        trainer.hyperparameter_search(
            hp_space=hp_space,
            n_trials=2,
            sampler=optuna.samplers.RandomSampler(seed=1),
            # prunes every trial whose first report is worse than the best so far
            pruner=optuna.pruners.PercentilePruner(1.0, n_startup_trials=1, n_warmup_steps=0),
        )
    study = optuna.load_study(
        study_name="again", storage=f"sqlite:///{tmp_path / 'again' / 'hp_search.db'}"
    )
    states = [trial.state.name for trial in study.trials]
    assert len(states) == 4
    assert "PRUNED" in states
    for trial in study.trials:
        if trial.state.name == "PRUNED":  # stopped at an evaluation before max_steps
            assert max(trial.intermediate_values) < 6


def test_refusals_name_the_fix(tmp_path):
    trainer = Trainer(
        model=Regression(),
        args=quiet_args(tmp_path),
        train_dataset=RegressionData(),
    )
    with pytest.raises(RuntimeError, match="model_init"):
        trainer.hyperparameter_search(hp_space=hp_space, n_trials=1)
    searcher = small_trainer(tmp_path / "jobs")
    with pytest.raises(ValueError, match="n_jobs=2.*storage="):
        searcher.hyperparameter_search(hp_space=hp_space, n_trials=2, n_jobs=2)
    with pytest.raises(ValueError, match="backend='wandb'"):
        searcher.hyperparameter_search(hp_space=hp_space, n_trials=1, backend="wandb")


@pytest.fixture
def tiny_models_by_value():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(tiny_models)
    import sys

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    cloudpickle.unregister_pickle_by_value(tiny_models)


@pytest.mark.slow
def test_ray_backend_returns_the_best_run_of_tune(ray_local, tiny_models_by_value, tmp_path):
    from ray import tune
    from transformers.trainer_utils import BestRun

    trainer = small_trainer(tmp_path / "ray")
    best = trainer.hyperparameter_search(
        hp_space=lambda _: {"learning_rate": tune.grid_search([1e-3, 5e-2])},
        compute_objective=lambda metrics: metrics["eval_loss"],
        n_trials=1,
        direction="minimize",
        backend="ray",
    )
    assert isinstance(best, BestRun)
    results = best.run_summary
    assert len(results) == 2 and not results.errors
    losses = {r.config["learning_rate"]: r.metrics["objective"] for r in results}
    assert best.objective == min(losses.values())
    assert best.hyperparameters["learning_rate"] == min(losses, key=losses.get)
    for result in results:  # every evaluation reported, each with a checkpoint
        assert result.metrics["step"] == 6
        assert result.metrics["objective"] == result.metrics["eval_loss"]
        assert result.checkpoint is not None
    assert best.run_id in {r.metrics["trial_id"] for r in results}
    assert os.path.isdir(tmp_path / "ray" / f"run-{best.run_id}")
    # every Ray trial is in the optuna storage that `hpo status` reads
    import optuna

    from hpo.storage import reader

    url = f"sqlite:///{tmp_path / 'ray' / 'hp_search.db'}"
    assert reader.status(url, "ray")["counts"]["COMPLETE"] == 2
    stored_best = reader.best(url, "ray")
    assert stored_best["value"] == pytest.approx(best.objective)
    assert stored_best["params"] == {"learning_rate": best.hyperparameters["learning_rate"]}
    assert stored_best["user_attrs"]["ray_trial_id"] == best.run_id
    for trial in optuna.load_study(study_name="ray", storage=url).trials:
        assert sorted(trial.intermediate_values) == [2, 4, 6]
        assert trial.value == pytest.approx(trial.intermediate_values[6])


PROCESS_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
import optuna
from helpers.tiny_models import Regression, RegressionData, quiet_args
from trainer import Trainer

def hp_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)}

args = quiet_args(sys.argv[1], max_steps=4, per_device_train_batch_size=8, eval_strategy="steps",
                  eval_steps=2)
trainer = Trainer(model_init=lambda trial: Regression(), args=args, train_dataset=RegressionData(),
                  eval_dataset=RegressionData(rows=16, seed=1))
best = trainer.hyperparameter_search(hp_space=hp_space, n_trials=2, pruner=optuna.pruners.NopPruner())
print("BEST", best.run_id)
"""


@pytest.mark.slow
def test_processes_running_the_same_script_share_one_study(tmp_path):
    """The workers of hyperparameter_search: the same script in several processes, on the
    default storage of the same output_dir."""
    import subprocess
    import sys
    from pathlib import Path

    from hpo.storage import reader

    output_dir = tmp_path / "shared"
    command = [
        sys.executable,
        "-c",
        PROCESS_SCRIPT,
        str(output_dir),
        str(Path(__file__).parents[1]),
    ]
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
        assert "BEST" in out
    status = reader.status(f"sqlite:///{output_dir / 'hp_search.db'}", "shared")
    assert status["counts"]["COMPLETE"] == 4  # 2 trials from each process, one study


@pytest.mark.slow
def test_ray_trials_a_scheduler_stops_are_stored_as_pruned(
    ray_local, tiny_models_by_value, tmp_path
):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from hpo.storage import reader

    trainer = small_trainer(tmp_path / "asha")
    best = trainer.hyperparameter_search(
        # one good rate first, then two that learn nothing by step 2: ASHA stops them there
        hp_space=lambda _: {"learning_rate": tune.grid_search([5e-2, 1e-6, 1e-6])},
        n_trials=1,
        backend="ray",
        scheduler=ASHAScheduler(time_attr="step", max_t=6, grace_period=2, reduction_factor=2),
        max_concurrent_trials=1,
    )
    url = f"sqlite:///{tmp_path / 'asha' / 'hp_search.db'}"
    counts = reader.status(url, "asha")["counts"]
    assert (counts["COMPLETE"], counts["PRUNED"]) == (1, 2)
    assert reader.best(url, "asha")["params"] == {"learning_rate": 5e-2}
    assert best.hyperparameters["learning_rate"] == 5e-2
