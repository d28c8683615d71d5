"""hpo.study.sections.search: sampler, pruner and scheduler for the backend, or the defaults."""

from __future__ import annotations

from helpers.study_files import the_problem, write_study

from hpo.spec import ComponentSpec
from hpo.study import default_pruner, default_scheduler, load


def test_multi_objective_switches_pruning_off_with_a_warning(tmp_path):
    changes = {
        "objective": {
            "metric": ["eval_loss", "train_runtime"],
            "direction": ["minimize", "minimize"],
        },
        "pruner": {"name": "median"},
    }
    spec = load(write_study(tmp_path, changes))
    assert spec.objective.is_multi
    assert spec.pruner == ComponentSpec("none")
    assert any("median switched off" in w and "multi-objective" in w for w in spec.warnings)


def test_grid_sampler_needs_a_finite_space(tmp_path):
    problem = the_problem(tmp_path, {"sampler": {"name": "grid"}}, "space.learning_rate")
    assert "cannot be searched by sampler grid" in problem


def test_default_pruner_derives_from_the_evaluation_grid():
    assert default_pruner(
        {"eval_strategy": "steps", "eval_steps": 50, "max_steps": 300}
    ) == ComponentSpec(
        "successive_halving",
        {"min_resource": 50, "reduction_factor": 2, "min_early_stopping_rate": 0},
    )
    # A fraction of the run, as Transformers allows.
    assert (
        default_pruner({"eval_strategy": "steps", "eval_steps": 0.25, "max_steps": 200}).options[
            "min_resource"
        ]
        == 50
    )
    # eval_steps defaults to logging_steps, as in Transformers.
    assert (
        default_pruner({"eval_strategy": "steps", "logging_steps": 10}).options["min_resource"]
        == 10
    )
    assert default_pruner({"eval_strategy": "epoch"}).options["min_resource"] == 1
    assert default_pruner({}) == ComponentSpec("none")  # no intermediate values to prune on


def test_explicit_pruner_without_evaluations_warns(tmp_path):
    spec = load(write_study(tmp_path, {"training": {"eval_strategy": "no"}, "pruner": "median"}))
    assert any("eval_strategy is 'no'" in w for w in spec.warnings)


def test_ray_backend_defaults(tmp_path):
    spec = load(write_study(tmp_path, {"backend": "ray", "workers": 2}))
    assert spec.scheduler == default_scheduler({"max_steps": 60, "eval_steps": 20})
    assert spec.scheduler == ComponentSpec(
        "asha",
        {"time_attr": "training_iteration", "grace_period": 1, "max_t": 3, "reduction_factor": 3},
    )
    assert spec.pruner == ComponentSpec("none")
    assert spec.sampler == ComponentSpec("tpe", {"seed": 0})
    assert spec.ray["max_concurrent_trials"] == 2
    assert spec.ray["resources_per_trial"] == {"cpu": 1, "gpu": 0}


def test_scheduler_values_are_checked_by_constructing_it(tmp_path):
    changes = {"backend": "ray", "scheduler": {"name": "asha", "grace_period": 0}}
    assert "asha rejects" in the_problem(tmp_path, changes, "scheduler")


def test_pbt_mutations_name_space_params(tmp_path):
    changes = {
        "backend": "ray",
        "scheduler": {"name": "pbt", "hyperparam_mutations": {"learning_rat": [0.1]}},
    }
    problem = the_problem(tmp_path, changes, "scheduler.hyperparam_mutations.learning_rat")
    assert "did you mean 'learning_rate'?" in problem
    spec = load(write_study(tmp_path, {"backend": "ray", "scheduler": "pbt"}))
    assert spec.sampler.name == "random"  # PBT explores by itself


def test_scheduler_with_optuna_backend_is_ignored_with_a_warning(tmp_path):
    spec = load(write_study(tmp_path, {"scheduler": {"name": "asha"}}))
    assert spec.scheduler is None
    assert any("scheduler: ignored by backend optuna" in w for w in spec.warnings)


def test_ray_takes_one_objective(tmp_path):
    changes = {
        "backend": "ray",
        "objective": {"metric": ["eval_loss", "x"], "direction": ["minimize", "maximize"]},
    }
    assert "one metric" in the_problem(tmp_path, changes, "objective")
