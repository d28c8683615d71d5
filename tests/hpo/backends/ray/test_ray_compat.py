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
