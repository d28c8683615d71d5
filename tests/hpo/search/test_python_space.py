"""hpo.search.python_space and returned_trial: a Python space's suggested params (stored) and
returned params (trained with), on real optuna trials."""

from __future__ import annotations

import pickle

import optuna
import pytest

from hpo.errors import HpoError
from hpo.search.python_space import (
    RETURNED_KEY,
    SpaceFunction,
    config_training_params,
    replay,
    suggested_params,
    training_params,
)
from hpo.search.returned_trial import ReturnedParamsTrial

optuna.logging.set_verbosity(optuna.logging.WARNING)
REF = "helpers.spaces:optim_space"


def test_replay_returns_the_dict_and_the_distributions_of_the_stored_params(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=3))
    from helpers.spaces import optim_space

    for _ in range(8):
        trial = study.ask()
        returned = optim_space(trial)
        study.tell(trial, 0.0)
    for stored in optuna.load_study(study_name=study.study_name, storage=storage).trials:
        returned, distributions = replay(REF, stored.params)
        assert returned["learning_rate"] == stored.params["lr"]
        assert ("adam_beta2" in returned) == ("beta2" in stored.params)
        assert distributions == stored.distributions


def test_replay_names_the_function_when_the_params_do_not_fit():
    with pytest.raises(
        HpoError, match=r"space: helpers.spaces:optim_space raised .* stored params"
    ):
        training_params(REF, {"optim": "sgd"})  # no lr


def test_the_ray_callable_pickles_and_puts_the_returned_dict_in_the_config():
    function = pickle.loads(pickle.dumps(SpaceFunction(REF)))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    extra = function(trial)
    config = {**trial.params, **extra}  # what Ray's OptunaSearch makes of it
    assert suggested_params(config) == trial.params
    assert config_training_params(REF, config) == extra[RETURNED_KEY]
    assert config_training_params(REF, trial.params) == extra[RETURNED_KEY]  # replayed
    assert config[RETURNED_KEY]["learning_rate"] == trial.params["lr"]


def test_the_trainer_sees_the_returned_params_and_reports_to_the_real_trial():
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1.0))
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-2)
    wrapped = ReturnedParamsTrial(trial, {"learning_rate": 0.5})
    assert isinstance(wrapped, optuna.trial.BaseTrial)
    assert wrapped.params == {"learning_rate": 0.5}
    assert wrapped.number == trial.number and wrapped.study is study
    wrapped.report(2.0, step=4)
    assert wrapped.should_prune()
    wrapped.set_user_attr("k", 1)
    assert study.trials[0].intermediate_values == {4: 2.0}
    assert study.trials[0].user_attrs == {"k": 1}
