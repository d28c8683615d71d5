"""Conditional params (`when:`) and a Python space, run on both backends: each trial has (in
the storage, in `hpo export`) and trains with exactly the params its branch of the space
defines."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import optuna
import pytest
from helpers.study_files import layers_in, write_study_file
from optuna.trial import TrialState

from hpo import backends
from hpo.attrs import BEST_CHECKPOINT_ATTR
from hpo.report.export import export_best, export_config, read_config, train_from_export
from hpo.report.status import format_best
from hpo.storage import reader
from hpo.study import load as load_study_file

N_TRIALS = 6
BACKEND_SETTINGS = {
    "optuna": {},
    "ray": {
        # grace_period == max_t: ASHA never stops a trial early, so every trial completes.
        "scheduler": {
            "name": "asha",
            "time_attr": "training_iteration",
            "grace_period": 2,
            "max_t": 2,
        },
        "ray": {"max_concurrent_trials": 1, "resources_per_trial": {"cpu": 1}},
    },
}
CONDITIONAL_SPACE = {
    "optim": {"type": "categorical", "choices": ["adamw_torch", "sgd"]},
    "adam_beta2": {
        "type": "categorical",
        "choices": [0.98, 0.999],
        "when": {"optim": "adamw_torch"},
    },
}


@pytest.fixture(params=["optuna", "ray"])
def backend_name(request) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_local")
    return request.param


@pytest.fixture(autouse=True)
def keep_signal_handlers():
    """A run installs its own SIGINT and SIGTERM handlers; give the test's back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def run(tmp_path: Path, backend_name: str, space, sampler="random"):
    study_file = write_study_file(
        tmp_path,
        backend=backend_name,
        budget={"n_trials": N_TRIALS},
        sampler={"name": sampler, "seed": 0},
        keep="all",  # every trial's checkpoint stays, to read what it trained with
        space=space,
        **BACKEND_SETTINGS[backend_name],
    )
    spec = load_study_file(study_file)
    assert backends.get(backend_name).run(spec) == backends.EXIT_OK
    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    assert len(trials) == N_TRIALS
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    return spec, trials


def trained_with(trial) -> dict:
    """The TrainingArguments the trial's last checkpoint was written with."""
    checkpoint = Path(trial.user_attrs[BEST_CHECKPOINT_ATTR])
    return json.loads((checkpoint / "training_args.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_conditional_param_exists_only_where_its_condition_holds(backend_name, sampler, tmp_path):
    spec, trials = run(tmp_path, backend_name, CONDITIONAL_SPACE, sampler)
    branches = set()
    for trial in trials:
        has_adam = trial.params["optim"] == "adamw_torch"
        branches.add(has_adam)
        assert ("adam_beta2" in trial.params) == has_adam, trial.params
        assert set(trial.distributions) == set(trial.params)
        args = trained_with(trial)
        assert args["optim"] == trial.params["optim"]
        assert args["adam_beta2"] == trial.params.get("adam_beta2", 0.999)  # else the default
        # hpo export writes only the params the trial had; the default stays the default.
        config = export_config(spec, {"params": trial.params, "number": trial.number})
        assert ("adam_beta2" in config["training"]) == has_adam
        assert config["training"]["optim"] == trial.params["optim"]
    assert branches == {True, False}  # both branches ran
    # `hpo best` / `hpo status` read the storage by SQL: the best trial's own params only.
    best = reader.best(spec.storage, spec.name)
    stored = next(t for t in trials if t.number == best["number"])
    assert best["params"] == stored.params
    assert ("adam_beta2" in format_best(best)) == ("adam_beta2" in stored.params)


@pytest.mark.slow
def test_a_python_space_runs_and_exports(backend_name, tmp_path):
    spec, trials = run(tmp_path, backend_name, "helpers.spaces:optim_space")
    branches = set()
    for trial in trials:
        # The storage holds what the function suggested, under its names.
        has_adam = trial.params["optim"] == "adamw_torch"
        branches.add(has_adam)
        expected = {"optim", "lr", "model.n_layer"} | ({"beta2"} if has_adam else set())
        assert set(trial.params) == expected
        # The trial trained with what the function returned.
        args = trained_with(trial)
        assert args["learning_rate"] == pytest.approx(trial.params["lr"])
        assert args["optim"] == trial.params["optim"]
        assert args["adam_beta2"] == trial.params.get("beta2", 0.999)
        checkpoint = Path(trial.user_attrs[BEST_CHECKPOINT_ATTR])
        assert layers_in(checkpoint) == trial.params["model.n_layer"]
    assert branches == {True, False}

    best = min(trials, key=lambda t: t.value)
    path = export_best(spec, tmp_path / "best.yaml")
    config = read_config(path)
    assert config["study"]["trial"] == best.number
    assert config["training"]["learning_rate"] == pytest.approx(best.params["lr"])
    assert "lr" not in config["training"] and "beta2" not in config["training"]
    assert ("adam_beta2" in config["training"]) == ("beta2" in best.params)
    assert config["model"]["config"]["n_layer"] == best.params["model.n_layer"]
    output = train_from_export(path)  # `hpo train` of the export
    assert output.global_step == spec.training["max_steps"]
