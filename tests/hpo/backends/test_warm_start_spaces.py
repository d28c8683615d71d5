"""Warm start and enqueue over a define-by-run space, on real SQLite and a local Ray.

A conditional space: an earlier trial that lacks a param whose `when` does not hold is taken,
one that has such a param (or lacks one whose `when` holds) is not, and the line says why. A
Python space: each earlier trial is judged by replaying the function on its params. On Ray,
the copies seed OptunaSearch's define-by-run study (`ray_compat.add_finished_trials`) and the
entries are its `points_to_evaluate`.
"""

from __future__ import annotations

import dataclasses
import signal
import sys

import optuna
import pytest
from helpers.study_files import tiny_spec
from optuna.trial import TrialState

from hpo.attrs import ENQUEUED_ATTR, STUDY_FILE_ATTR, WARM_START_ATTR
from hpo.backends import EXIT_OK
from hpo.backends.warm_start import load_source
from hpo.spec import BudgetSpec, ComponentSpec, ParamSpec, WarmStartSpec

OPTIM = optuna.distributions.CategoricalDistribution(["adamw_torch", "sgd"])
BETA2 = optuna.distributions.CategoricalDistribution([0.98, 0.999])
LR = optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)
LAYERS = optuna.distributions.IntDistribution(1, 4)

CONDITIONAL = (
    ParamSpec("optim", "categorical", choices=("adamw_torch", "sgd")),
    ParamSpec(
        "adam_beta2", "categorical", choices=(0.98, 0.999), when=(("optim", ("adamw_torch",)),)
    ),
    ParamSpec("learning_rate", "float", low=1e-4, high=1e-2, log=True),
)
# (params, value) of an earlier study over the conditional space: the first two fit.
CONDITIONAL_OLD = [
    ({"optim": "sgd", "learning_rate": 1e-3}, 2.0),
    ({"optim": "adamw_torch", "adam_beta2": 0.98, "learning_rate": 2e-3}, 1.5),
    ({"optim": "sgd", "adam_beta2": 0.98, "learning_rate": 1e-3}, 1.0),
    ({"optim": "adamw_torch", "learning_rate": 1e-3}, 3.0),
]
# The same for helpers.spaces:optim_space (the function's suggested names: lr, beta2).
PYTHON_SPACE = "helpers.spaces:optim_space"
PYTHON_OLD = [
    ({"optim": "sgd", "lr": 1e-3, "model.n_layer": 1}, 2.0),
    ({"optim": "adamw_torch", "lr": 2e-3, "model.n_layer": 2, "beta2": 0.98}, 1.5),
    ({"optim": "sgd", "lr": 1e-3, "model.n_layer": 1, "beta2": 0.98}, 1.0),
    ({"optim": "adamw_torch", "lr": 1e-3, "model.n_layer": 1}, 3.0),
    ({"optim": "sgd", "lr": 0.5, "model.n_layer": 1}, 0.5),
]
DISTRIBUTIONS = {
    "optim": OPTIM,
    "adam_beta2": BETA2,
    "beta2": BETA2,
    "learning_rate": LR,
    "lr": LR,
    "model.n_layer": LAYERS,
}


def old_study(url: str, rows) -> None:
    study = optuna.create_study(study_name="old", storage=url)
    for params, value in rows:
        distributions = {name: DISTRIBUTIONS[name] for name in params}
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=distributions, value=value)
        )


def spec_over(tmp_path, space_kind: str, **changes):
    url = f"sqlite:///{tmp_path}/old.db"
    if space_kind == "conditional":
        old_study(url, CONDITIONAL_OLD)
        space = {"space": CONDITIONAL}
    else:
        old_study(url, PYTHON_OLD)
        space = {"space": (), "space_function": PYTHON_SPACE}
    return dataclasses.replace(
        tiny_spec(tmp_path), warm_start=WarmStartSpec(study="old", storage=url), **space, **changes
    )


def test_a_conditional_space_takes_the_trials_that_fit_it_conditions_included(tmp_path):
    warm = load_source(spec_over(tmp_path, "conditional"))
    assert [t.params for t in warm.trials] == [params for params, _ in CONDITIONAL_OLD[:2]]
    # Each copy has the distributions of the params it had, as suggest draws them.
    assert [set(t.distributions) for t in warm.trials] == [set(t.params) for t in warm.trials]
    assert warm.trials[1].distributions["adam_beta2"] == BETA2
    assert warm.summary == (
        "2 of 4 trials taken from study 'old': 2 had params outside this space (adam_beta2 is "
        "given, but exists only when optim is 'adamw_torch' (here optim='sgd'))"
    )


def test_a_python_space_takes_the_trials_its_function_replays(tmp_path):
    warm = load_source(spec_over(tmp_path, "python"))
    assert [t.params for t in warm.trials] == [params for params, _ in PYTHON_OLD[:2]]
    # The copies carry the distributions the function suggests from, not the old study's.
    assert warm.trials[0].distributions["lr"] == optuna.distributions.FloatDistribution(
        1e-4, 1e-2, log=True
    )
    assert warm.trials[1].distributions["model.n_layer"] == optuna.distributions.IntDistribution(
        1, 2
    )
    assert warm.summary.startswith(
        "2 of 5 trials taken from study 'old': 3 had params outside this space (beta2 is not "
        "a parameter of the space)"
    )


@pytest.fixture(autouse=True)
def keep_signal_handlers():
    """A run installs its own SIGINT and SIGTERM handlers; give the test's back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


ENQUEUED = {
    "conditional": {"optim": "adamw_torch", "adam_beta2": 0.999, "learning_rate": 5e-3},
    "python": {"optim": "adamw_torch", "lr": 5e-3, "model.n_layer": 1, "beta2": 0.999},
}


def check_started(spec, out: str, space_kind: str) -> None:
    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    copies = [t for t in trials if WARM_START_ATTR in t.user_attrs]
    trained = [t for t in trials if WARM_START_ATTR not in t.user_attrs]
    rows = CONDITIONAL_OLD if space_kind == "conditional" else PYTHON_OLD
    assert [c.params for c in copies] == [params for params, _ in rows[:2]]
    assert f"2 of {len(rows)} trials taken from study 'old'" in out
    assert [t.state for t in trained] == [TrialState.COMPLETE] * 2  # copies in no budget
    assert trained[0].params == ENQUEUED[space_kind]  # the entry ran first


@pytest.mark.slow
@pytest.mark.parametrize("space_kind", ["conditional", "python"])
def test_an_optuna_study_over_a_define_by_run_space_starts_from_both(space_kind, tmp_path, capsys):
    from hpo.backends.optuna.supervisor import run_study

    spec = spec_over(
        tmp_path,
        space_kind,
        budget=BudgetSpec(n_trials=2),
        sampler=ComponentSpec("tpe", {"seed": 0}),
        enqueue=(ENQUEUED[space_kind],),
    )
    assert run_study(spec) == EXIT_OK
    check_started(spec, capsys.readouterr().out, space_kind)
    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    assert trials[-2].user_attrs[ENQUEUED_ATTR] == 0


@pytest.mark.slow
@pytest.mark.parametrize("space_kind", ["conditional", "python"])
def test_a_ray_study_over_a_define_by_run_space_starts_from_both(
    space_kind, ray_local, tmp_path, capsys
):
    from ray import cloudpickle

    from hpo.backends.ray.tuner import run_study

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spec = spec_over(
        tmp_path,
        space_kind,
        backend="ray",
        budget=BudgetSpec(n_trials=2),
        sampler=ComponentSpec("tpe", {"seed": 0}),
        scheduler=ComponentSpec(
            "asha", {"time_attr": "training_iteration", "grace_period": 2, "max_t": 2}
        ),
        ray={"max_concurrent_trials": 1, "resources_per_trial": {"cpu": 1}},
        enqueue=(ENQUEUED[space_kind],),
    )
    assert run_study(spec) == EXIT_OK
    check_started(spec, capsys.readouterr().out, space_kind)
    recorded = optuna.load_study(study_name=spec.name, storage=spec.storage).user_attrs
    assert recorded[STUDY_FILE_ATTR].get("space_function") == (
        PYTHON_SPACE if space_kind == "python" else None
    )
