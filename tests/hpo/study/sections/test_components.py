"""hpo.study.sections.components: a sampler, pruner or scheduler checked against its class."""

from __future__ import annotations

import pytest
from helpers.study_files import problems_of, the_problem, write_study

from hpo.spec import ComponentSpec
from hpo.study import load


def test_unknown_sampler_and_pruner_names(tmp_path):
    problems = problems_of(tmp_path, {"sampler": {"name": "tpee"}, "pruner": "hyperbnd"})
    assert any(
        p.startswith("sampler.name: found 'tpee'") and "did you mean 'tpe'?" in p for p in problems
    )
    assert any(
        p.startswith("pruner.name: found 'hyperbnd'") and "did you mean 'hyperband'?" in p
        for p in problems
    )


def test_sampler_options_are_checked_against_its_constructor(tmp_path):
    problem = the_problem(
        tmp_path, {"sampler": {"name": "tpe", "n_startup_trial": 3}}, "sampler.n_startup_trial"
    )
    assert (
        "not an option of sampler tpe" in problem and "did you mean 'n_startup_trials'?" in problem
    )


def test_sampler_options_pass_through(tmp_path):
    spec = load(
        write_study(tmp_path, {"sampler": {"name": "tpe", "n_startup_trials": 3, "seed": 7}})
    )
    assert spec.sampler == ComponentSpec("tpe", {"n_startup_trials": 3, "seed": 7})
    spec = load(write_study(tmp_path, {"sampler": {"name": "random", "seed": None}}))
    assert spec.sampler == ComponentSpec("random", {"seed": None})


def test_pruner_option_values_are_checked_by_constructing_it(tmp_path):
    problem = the_problem(
        tmp_path, {"pruner": {"name": "percentile", "percentile": 150.0}}, "pruner"
    )
    assert "percentile rejects" in problem and "150" in problem


def test_pruner_required_option(tmp_path):
    problem = the_problem(tmp_path, {"pruner": {"name": "percentile"}}, "pruner.percentile")
    assert "requires it" in problem


def test_patient_pruner_wraps_a_checked_pruner(tmp_path):
    changes = {
        "pruner": {
            "name": "patient",
            "patience": 2,
            "wrapped_pruner": {"name": "median", "n_startup_trials": 1},
        }
    }
    spec = load(write_study(tmp_path, changes))
    assert spec.pruner.options["wrapped_pruner"] == ComponentSpec("median", {"n_startup_trials": 1})
    bad = {"pruner": {"name": "patient", "patience": 2, "wrapped_pruner": {"name": "medain"}}}
    assert "did you mean 'median'?" in the_problem(tmp_path, bad, "pruner.wrapped_pruner.name")


def test_grid_sampler_search_space_is_built_by_hpo(tmp_path):
    changes = {
        "sampler": {"name": "grid", "search_space": {"a": [1]}},
        "space": {"learning_rate": {"type": "categorical", "choices": [0.1, 0.01]}},
    }
    assert "set by hpo" in the_problem(tmp_path, changes, "sampler.search_space")


@pytest.mark.parametrize(
    ("changes", "module", "package"),
    [
        ({"sampler": "cmaes"}, "cmaes", "cmaes"),
        ({"sampler": "qmc"}, "scipy", "scipy"),
        ({"pruner": "wilcoxon"}, "scipy", "scipy"),
        ({"backend": "ray", "scheduler": "pb2"}, "sklearn", "scikit-learn"),
    ],
)
def test_components_needing_extra_packages(tmp_path, changes, module, package):
    """Installed (as the project's dependencies are): the component validates and is used.
    Missing: the problem names the package to install."""
    import importlib.util

    kind = (
        "scheduler" if "scheduler" in changes else "sampler" if "sampler" in changes else "pruner"
    )
    if importlib.util.find_spec(module) is not None:
        spec = load(write_study(tmp_path, changes))
        assert getattr(spec, kind).name == changes[kind]
        return
    problem = the_problem(tmp_path, changes, f"{kind}.name")
    assert f"pip install {package}" in problem


def test_unknown_scheduler(tmp_path):
    problem = the_problem(
        tmp_path, {"backend": "ray", "scheduler": {"name": "ashа"}}, "scheduler.name"
    )
    assert "one of asha, hyperband, pbt, pb2, median" in problem


def test_scheduler_metric_is_set_from_the_objective(tmp_path):
    changes = {"backend": "ray", "scheduler": {"name": "asha", "metric": "loss"}}
    assert "set by hpo" in the_problem(tmp_path, changes, "scheduler.metric")
