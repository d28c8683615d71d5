"""hpo.backends.ray.ray_compat against the installed Ray: a release that changes what one of
these relies on fails here, by name, instead of in a study."""

from __future__ import annotations

import optuna
import pytest
from helpers import ray_schedulers
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from hpo.backends.ray import ray_compat

tune = pytest.importorskip("ray.tune")
OptunaSearch = pytest.importorskip("ray.tune.search.optuna").OptunaSearch


class RefusesToComplete(OptunaSearch):
    """A subclass with its own on_trial_complete, which tell_pruned must bypass."""

    def on_trial_complete(self, trial_id, result=None, error=False):
        raise AssertionError("the subclass's override was called")


def test_tell_pruned_tells_the_optuna_trial_pruned_with_its_last_intermediate_value():
    storage = optuna.storages.InMemoryStorage()
    space = {"x": FloatDistribution(0.0, 1.0)}
    searcher = RefusesToComplete(space, "loss", "min", storage=storage, study_name="compat")
    assert set(searcher.suggest("t1")) == {"x"}
    searcher.on_trial_result("t1", {"loss": 0.5, "training_iteration": 1})
    searcher.on_trial_result("t1", {"loss": 0.25, "training_iteration": 2})

    ray_compat.tell_pruned(searcher, "t1")

    (trial,) = optuna.load_study(study_name="compat", storage=storage).get_trials()
    assert trial.state == TrialState.PRUNED
    assert trial.intermediate_values == {1: 0.5, 2: 0.25}
    assert trial.value == pytest.approx(0.25)
    # The trial counts as completed: a second tell is ignored, not an error.
    ray_compat.tell_pruned(searcher, "t1")
    (again,) = optuna.load_study(study_name="compat", storage=storage).get_trials()
    assert again.state == TrialState.PRUNED


def conditional_space(trial):
    optim = trial.suggest_categorical("optim", ["adamw_torch", "sgd"])
    if optim == "adamw_torch":
        trial.suggest_float("adam_beta2", 0.9, 0.999)


def test_add_finished_trials_seeds_a_define_by_run_searcher_that_add_evaluated_point_refuses():
    searcher = OptunaSearch(conditional_space, "loss", "min")
    with pytest.raises(TypeError, match="Define-by-run"):
        searcher.add_evaluated_point({"optim": "sgd"}, 1.0)
    distributions = {
        "optim": optuna.distributions.CategoricalDistribution(["adamw_torch", "sgd"]),
        "adam_beta2": FloatDistribution(0.9, 0.999),
    }
    finished = [
        optuna.trial.create_trial(
            params=params, distributions={n: distributions[n] for n in params}, value=value
        )
        for params, value in (
            ({"optim": "sgd"}, 2.0),
            ({"optim": "adamw_torch", "adam_beta2": 0.95}, 1.0),
        )
    ]
    ray_compat.add_finished_trials(searcher, finished)
    # The searcher's sampler sees them as finished trials, and asks for new ones after them.
    assert [(t.params, t.value) for t in searcher._ot_study.get_trials()] == [
        ({"optim": "sgd"}, 2.0),
        ({"optim": "adamw_torch", "adam_beta2": 0.95}, 1.0),
    ]
    assert "optim" in searcher.suggest("t1")
    assert len(searcher._ot_study.trials) == 3


# --- helpers.ray_schedulers: the tests' readers of a built scheduler ----------------------


def test_scheduler_mode():
    asha = tune.schedulers.ASHAScheduler(metric="eval_loss", mode="max")
    assert ray_schedulers.scheduler_mode(asha) == "max"
    median = tune.schedulers.MedianStoppingRule(metric="eval_loss", mode="min")
    assert ray_schedulers.scheduler_mode(median) == "min"


def test_pbt_mutations():
    mutations = {"learning_rate": [1e-3, 1e-2], "weight_decay": tune.uniform(0.0, 0.1)}
    pbt = tune.schedulers.PopulationBasedTraining(
        metric="eval_loss", mode="min", hyperparam_mutations=mutations
    )
    assert ray_schedulers.pbt_mutations(pbt) == mutations


def test_pb2_bounds():
    pytest.importorskip("sklearn")
    from ray.tune.schedulers.pb2 import PB2

    bounds = {"learning_rate": [1e-4, 1e-2]}
    pb2 = PB2(metric="eval_loss", mode="min", hyperparam_bounds=bounds)
    assert ray_schedulers.pb2_bounds(pb2) == bounds
