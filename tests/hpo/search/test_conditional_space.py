"""hpo.search.space with `when:`: parents first, children only where their condition holds,
and `fit_config` (the check of a params dict against the space, conditions included)."""

from __future__ import annotations

import pickle

import optuna
import pytest

from hpo.search.membership import fit_config
from hpo.search.space import DefineByRun, in_dependency_order, suggest
from hpo.spec import ParamSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def fits_space(space, params) -> bool:
    return not fit_config(params, space)[1]


SPACE = (
    # the child first: suggest must reorder
    ParamSpec("adam_beta2", "float", 0.95, 0.999, when=(("optim", ("adamw_torch",)),)),
    ParamSpec("optim", "categorical", choices=("adamw_torch", "sgd")),
    ParamSpec("warmup_steps", "int", 0, 10, step=5),
    # conditional on a conditional param: exists only where both hold
    ParamSpec(
        "adam_epsilon",
        "float",
        1e-9,
        1e-7,
        log=True,
        when=(("optim", ("adamw_torch",)), ("warmup_steps", (5, 10))),
    ),
)


def test_dependency_order_puts_parents_first_and_refuses_a_cycle():
    order = [p.name for p in in_dependency_order(SPACE)]
    assert order.index("optim") < order.index("adam_beta2")
    assert order.index("warmup_steps") < order.index("adam_epsilon")
    cycle = (
        ParamSpec("a", "categorical", choices=(1, 2), when=(("b", (1,)),)),
        ParamSpec("b", "categorical", choices=(1, 2), when=(("a", (1,)),)),
    )
    with pytest.raises(ValueError, match="cycle"):
        in_dependency_order(cycle)


def test_a_conditional_param_is_suggested_only_where_its_condition_holds(tmp_path):
    space = SPACE
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        trial = study.ask()
        suggest(trial, space)
        study.tell(trial, 0.0)
    stored = optuna.load_study(study_name=study.study_name, storage=storage).get_trials()
    seen = {"with_beta2": 0, "without_beta2": 0, "epsilon": 0}
    for trial in stored:
        params = trial.params
        assert "optim" in params and "warmup_steps" in params
        has_adam = params["optim"] == "adamw_torch"
        assert ("adam_beta2" in params) == has_adam
        assert ("adam_epsilon" in params) == (has_adam and params["warmup_steps"] in (5, 10))
        assert set(trial.distributions) == set(params)
        assert fits_space(space, params)
        seen["with_beta2" if has_adam else "without_beta2"] += 1
        seen["epsilon"] += "adam_epsilon" in params
    assert all(seen.values()), seen  # both branches and the nested one were drawn


def test_tpe_samples_a_conditional_space():
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4))
    for _ in range(12):
        trial = study.ask()
        params = suggest(trial, SPACE)
        study.tell(trial, params.get("adam_beta2", 1.0))
    assert len(study.trials) == 12


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"optim": "sgd", "warmup_steps": 0}, None),
        ({"optim": "adamw_torch", "warmup_steps": 0, "adam_beta2": 0.99}, None),
        (
            {"optim": "adamw_torch", "warmup_steps": 5, "adam_beta2": 0.99, "adam_epsilon": 1e-8},
            None,
        ),
        # an int written as 5.0 (YAML, JSON) is the int 5
        ({"optim": "sgd", "warmup_steps": 5.0}, None),
        ({"optim": "adamw_torch", "warmup_steps": 0}, "no value for adam_beta2"),
        (
            {"optim": "sgd", "warmup_steps": 0, "adam_beta2": 0.99},
            "adam_beta2 is given, but exists only when optim is 'adamw_torch' (here optim='sgd')",
        ),
        (
            {"optim": "adamw_torch", "warmup_steps": 0, "adam_beta2": 0.99, "adam_epsilon": 1e-8},
            "adam_epsilon is given, but exists only when optim is 'adamw_torch' and "
            "warmup_steps is one of [5, 10] (here optim='adamw_torch', warmup_steps=0)",
        ),
        (
            {"optim": "sgd", "warmup_steps": 3},
            "warmup_steps=3 is not on the grid low=0 + k * step=5",
        ),
        ({"optim": "adam", "warmup_steps": 0}, "optim='adam' is not among the choices"),
        ({"optim": "sgd", "warmup_steps": 0, "seed": 1}, "seed is not a parameter of the space"),
    ],
)
def test_fit_config_checks_values_and_conditions(params, problem):
    fitted, problems = fit_config(params, SPACE)
    if problem is None:
        assert problems == [] and fitted == params
    else:
        assert any(p.startswith(problem) for p in problems), problems


def test_a_child_of_a_rejected_parent_gets_no_second_reason():
    params = {"optim": "adam", "warmup_steps": 0, "adam_beta2": 0.99}
    assert fit_config(params, SPACE)[1] == [
        "optim='adam' is not among the choices ['adamw_torch', 'sgd']"
    ]


def test_a_partial_configuration_names_the_missing_parent_of_a_child_it_gives():
    fitted, problems = fit_config({"adam_beta2": 0.99}, SPACE, complete=False)
    assert problems == [
        "adam_beta2 is given, but exists only when optim is 'adamw_torch' (here no optim)"
    ]
    assert fit_config({"optim": "sgd"}, SPACE, complete=False) == ({"optim": "sgd"}, [])


def test_define_by_run_survives_pickling_as_tune_saves_its_searcher():
    function = pickle.loads(pickle.dumps(DefineByRun(SPACE)))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    assert function(trial) is None
    assert fits_space(SPACE, trial.params)
