"""hpo.search.membership: a configuration inside the space, or why not, by Optuna's rules."""

from __future__ import annotations

import optuna
import pytest

from hpo.search.membership import fit_config, fit_value
from hpo.search.space import to_optuna_distributions
from hpo.spec import ParamSpec

LR = ParamSpec("learning_rate", "float", low=1e-5, high=1e-1, log=True)
WARMUP = ParamSpec("warmup_steps", "int", low=0, high=60, step=10)
BATCH = ParamSpec("per_device_train_batch_size", "categorical", choices=(8, 16, 32))
DECAY = ParamSpec("weight_decay", "float", low=0.0, high=0.3, step=0.1)
FLAG = ParamSpec("fp16", "categorical", choices=(True, False))


@pytest.mark.parametrize(
    ("param", "value", "reason"),
    [
        (LR, 0.5, "learning_rate=0.5 > high=0.1"),
        (LR, 1e-6, "learning_rate=1e-06 < low=1e-05"),
        (LR, "fast", "learning_rate='fast' is not a number"),
        (LR, float("nan"), "learning_rate=nan is not a finite number"),
        (WARMUP, 15, "warmup_steps=15 is not on the grid low=0 + k * step=10"),
        (WARMUP, 2.5, "warmup_steps=2.5 is not an integer"),
        (WARMUP, True, "warmup_steps=True is not an integer"),
        (BATCH, 12, "per_device_train_batch_size=12 is not among the choices [8, 16, 32]"),
        (FLAG, 1, "fp16=1 is not among the choices [True, False]"),
        (DECAY, 0.25, "weight_decay=0.25 is not on the grid low=0.0 + k * step=0.1"),
    ],
)
def test_a_value_outside_says_which_bound_or_choice_it_missed(param, value, reason):
    assert fit_value(param, value) == (value, reason)


@pytest.mark.parametrize(
    ("param", "value", "held"),
    [
        (LR, 3e-4, 3e-4),
        (LR, 0.05, None),
        (WARMUP, 30, 30),
        (WARMUP, 30.0, 30),
        (BATCH, 16, 16),
        (DECAY, 0.7 - 0.5, 0.19999999999999996),  # on the grid, as decimals go
        (FLAG, False, False),
    ],
)
def test_a_value_inside_is_kept_as_the_space_holds_it(param, value, held):
    fitted, reason = fit_value(param, value)
    assert reason is None
    if held is not None:
        assert fitted == held and type(fitted) is type(held)
    # The same verdict as the distribution optuna builds for the dimension.
    distribution = to_optuna_distributions([param])[param.name]
    assert distribution._contains(distribution.to_internal_repr(fitted))


def test_a_configuration_names_unknown_and_missing_params():
    fitted, reasons = fit_config({"learning_rate": 1e-3, "lr": 1}, [LR, WARMUP])
    assert fitted == {"learning_rate": 1e-3}
    assert reasons == ["lr is not a parameter of the space", "no value for warmup_steps"]
    assert fit_config({"learning_rate": 1e-3}, [LR, WARMUP], complete=False)[1] == []


def test_an_optuna_distribution_agrees_on_the_ends():
    for value in (1e-5, 1e-1):
        assert fit_value(LR, value)[1] is None
        assert optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)._contains(value)
