"""hpo.search.space: one declaration, the same values in Optuna and in Ray Tune."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from hpo.search.space import (
    grid_values,
    split_params,
    suggest,
    to_grid_search_space,
    to_optuna_distributions,
    to_ray_param_space,
)
from hpo.spec import ParamSpec

SPACE = (
    ParamSpec("learning_rate", "float", 1e-4, 1e-2, log=True),
    ParamSpec("weight_decay", "float", 0.0, 0.3, step=0.1),
    ParamSpec("warmup_steps", "int", 0, 4),
    ParamSpec("per_device_train_batch_size", "int", 8, 64, log=True),
    ParamSpec("model.n_layer", "int", 1, 7, step=2),
    ParamSpec("lr_scheduler_type", "categorical", choices=("linear", "cosine")),
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_suggest_draws_inside_the_space_and_matches_the_distributions():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, set] = {p.name: set() for p in SPACE}
    for _ in range(60):
        trial = study.ask()
        params = suggest(trial, SPACE)
        assert list(params) == [p.name for p in SPACE]
        assert trial.distributions == to_optuna_distributions(SPACE)
        study.tell(trial, 0.0)
        for name, value in params.items():
            seen[name].add(value)
    assert all(1e-4 <= v <= 1e-2 for v in seen["learning_rate"])
    assert seen["weight_decay"] <= {0.0, 0.1, 0.2, 0.30000000000000004, 0.3}
    assert seen["warmup_steps"] == {0, 1, 2, 3, 4}  # both ends inclusive
    assert seen["model.n_layer"] == {1, 3, 5, 7}  # steps count from low
    assert seen["lr_scheduler_type"] == {"linear", "cosine"}
    assert all(isinstance(v, int) for v in seen["per_device_train_batch_size"])


def test_ray_param_space_draws_the_same_values_as_optuna():
    param_space = to_ray_param_space(SPACE)
    rng = np.random.default_rng(0)

    def draws(name: str) -> set:
        values = param_space[name].sample(size=400, random_state=rng)
        return {v.item() if hasattr(v, "item") else v for v in values}

    # Ray's randint excludes its upper bound; the study file's bound is inclusive.
    assert draws("warmup_steps") == {0, 1, 2, 3, 4}
    # Ray quantizes to multiples of q; Optuna steps from low: 1, 3, 5, 7 must stay odd.
    assert draws("model.n_layer") == {1, 3, 5, 7}
    assert {round(v, 6) for v in draws("weight_decay")} == {0.0, 0.1, 0.2, 0.3}
    learning_rates = draws("learning_rate")
    assert min(learning_rates) >= 1e-4 and max(learning_rates) <= 1e-2
    # log-uniform: about half the draws fall below the geometric midpoint 1e-3
    assert 0.35 < np.mean([v < 1e-3 for v in learning_rates]) < 0.65
    batch_sizes = draws("per_device_train_batch_size")
    assert min(batch_sizes) >= 8 and max(batch_sizes) == 64
    assert draws("lr_scheduler_type") == {"linear", "cosine"}


def test_grid_values_and_grid_search_space():
    assert grid_values(ParamSpec("a", "int", 1, 7, step=2)) == [1, 3, 5, 7]
    assert grid_values(ParamSpec("b", "float", 0.0, 0.3, step=0.1)) == [0.0, 0.1, 0.2, 0.3]
    assert grid_values(ParamSpec("c", "categorical", choices=(8, 16))) == [8, 16]
    with pytest.raises(ValueError, match="give it a step"):
        grid_values(ParamSpec("d", "float", 0.0, 1.0))
    space = (ParamSpec("a", "int", 0, 2), ParamSpec("c", "categorical", choices=("x", "y")))
    sampler = optuna.samplers.GridSampler(to_grid_search_space(space), seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: float(len(str(suggest(t, space)))), n_trials=6)
    assert {tuple(t.params.values()) for t in study.trials} == {
        (a, c) for a in (0, 1, 2) for c in ("x", "y")
    }


def test_split_params_strips_the_model_prefix():
    training, model = split_params(
        {"learning_rate": 0.1, "model.n_layer": 2, "warmup_steps": 3, "model.n_embd": 64}
    )
    assert training == {"learning_rate": 0.1, "warmup_steps": 3}
    assert model == {"n_layer": 2, "n_embd": 64}


def test_importing_space_loads_neither_optuna_nor_ray():
    import subprocess
    import sys

    code = (
        "import sys, hpo.search.space; "
        "print(sorted(m for m in ('optuna', 'ray', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
