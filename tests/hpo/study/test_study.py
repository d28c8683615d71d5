"""hpo.study.load: every problem of a study file, with its key path, in one error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.study_files import DELETE, write_study

from hpo.durations import format_duration, parse_duration
from hpo.errors import StudyFileError
from hpo.spec import ComponentSpec, ParamSpec
from hpo.study import default_pruner, default_scheduler, load, load_for_inspection, resolve_storage


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Relative paths resolve against the current directory: make it the test's own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)


def problems_of(tmp_path: Path, changes: dict, **overrides) -> list[str]:
    with pytest.raises(StudyFileError) as caught:
        load(write_study(tmp_path, changes), **overrides)
    assert caught.value.exit_code == 2
    return caught.value.problems


def the_problem(tmp_path: Path, changes: dict, path: str, **overrides) -> str:
    """The one problem reported at `path` (and fail if it is not there)."""
    problems = problems_of(tmp_path, changes, **overrides)
    matching = [p for p in problems if p.startswith(f"{path}:")]
    assert matching, f"no problem at {path!r} in {problems}"
    return matching[0]


# ------------------------------------------------------------------ a valid file and its defaults


def test_valid_study_gets_the_defaults(tmp_path):
    spec = load(write_study(tmp_path))
    assert spec.name == "unit"
    assert spec.backend == "optuna"
    assert spec.workers == 1
    assert spec.keep == "best"
    assert spec.sampler == ComponentSpec("tpe", {"seed": 0})
    assert spec.pruner == ComponentSpec(
        "hyperband", {"min_resource": 20, "max_resource": 60, "reduction_factor": 3}
    )
    assert spec.scheduler is None
    assert spec.storage == f"sqlite:///{tmp_path / 'runs' / 'unit.db'}"
    assert spec.objective.metrics == ("eval_loss",) and spec.objective.directions == ("minimize",)
    assert spec.space == (
        ParamSpec("learning_rate", "float", 1e-4, 1e-2, log=True),
        ParamSpec("model.n_layer", "int", 1, 2),
    )
    assert spec.data.corpus == "pydoc-topics" and spec.data.block_size == 32
    assert spec.warnings == ()
    assert spec.source_path == str(tmp_path / "study.yaml")


def test_validation_creates_nothing(tmp_path):
    write_study(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    load(tmp_path / "study.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/, no database


def test_command_line_overrides(tmp_path):
    spec = load(write_study(tmp_path, {"workers": 2}), n_trials=9, workers=3)
    assert spec.budget.n_trials == 9
    assert spec.workers == 3


def test_command_line_overrides_are_validated(tmp_path):
    problems = problems_of(tmp_path, {}, n_trials=0, workers=0)
    assert any(p.startswith("--n-trials: found 0") for p in problems)
    assert any(p.startswith("--workers: found 0") for p in problems)


def test_durations_in_the_budget(tmp_path):
    spec = load(write_study(tmp_path, {"budget": {"timeout": "1h30m", "max_failed_trials": 2}}))
    assert spec.budget.timeout_s == 5400
    assert spec.budget.max_failed_trials == 2
    problem = the_problem(tmp_path, {"budget": {"timeout": "20 minutes"}}, "budget.timeout")
    assert "'20 minutes'" in problem and "90s, 20m, 1h" in problem


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("20m", 1200),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("45", 45),
        (30, 30),
        (1.5, 1.5),
        ("0.5h", 1800),
    ],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "m", "20 minutes", "30m1h", "-5", "1x", True, None, [1], "inf"]
)
def test_durations_that_do_not_parse(text):
    with pytest.raises(ValueError, match="90s, 20m, 1h or 1h30m"):
        parse_duration(text)


def test_format_duration_round_trips():
    assert format_duration(5400) == "1h30m"
    assert parse_duration(format_duration(3725)) == 3725


def test_floats_written_without_a_dot_are_numbers(tmp_path):
    # YAML 1.1 reads `1e-4` as text; a study file reads it as the number a user meant.
    path = tmp_path / "study.yaml"
    write_study(tmp_path)
    path.write_text(path.read_text().replace("0.0001", "1e-4").replace("0.01", "1E-2"))
    assert "1e-4" in path.read_text()
    spec = load(path)
    assert spec.space[0].low == 1e-4 and spec.space[0].high == 1e-2


# ------------------------------------------------------------------ top level, YAML, did-you-mean


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("name: unit\nspace:\n  learning_rate: {type: float, low: 1\n  x: 2\n")
    with pytest.raises(StudyFileError) as caught:
        load(path)
    [problem] = caught.value.problems
    assert problem.startswith("line 4") and "YAML syntax error" in problem


def test_duplicate_key_is_an_error(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("name: a\nworkers: 1\nworkers: 2\n")
    with pytest.raises(StudyFileError) as caught:
        load(path)
    [problem] = caught.value.problems
    assert "duplicate key 'workers' (first given at line 2)" in problem and "line 3" in problem


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(StudyFileError, match="no such file"):
        load(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(StudyFileError, match="expected a mapping"):
        load(tmp_path / "list.yaml")


def test_unknown_top_level_key_with_did_you_mean(tmp_path):
    problem = the_problem(tmp_path, {"sampeler": {"name": "tpe"}}, "sampeler")
    assert "unknown key" in problem and "did you mean 'sampler'?" in problem


def test_name_is_required_and_file_safe(tmp_path):
    assert "missing" in the_problem(tmp_path, {"name": DELETE}, "name")
    assert "'a/b'" in the_problem(tmp_path, {"name": "a/b"}, "name")


@pytest.mark.parametrize(
    ("changes", "path", "expected"),
    [
        ({"backend": "raytune"}, "backend", "expected one of optuna, ray"),
        ({"workers": 0}, "workers", "an integer >= 1"),
        ({"workers": "two"}, "workers", "an integer >= 1"),
        ({"keep": "some"}, "keep", "one of best, all"),
        ({"budget": {"n_trials": 2.5}}, "budget.n_trials", "an integer >= 1"),
        ({"budget": {"max_failed_trials": -1}}, "budget.max_failed_trials", "an integer >= 0"),
        ({"budget": {"trials": 3}}, "budget.trials", "did you mean 'n_trials'?"),
    ],
)
def test_simple_values(tmp_path, changes, path, expected):
    assert expected in the_problem(tmp_path, changes, path)


# ------------------------------------------------------------------ objective


def test_objective_lengths_must_match(tmp_path):
    changes = {"objective": {"metric": ["eval_loss", "eval_accuracy"], "direction": "minimize"}}
    problem = the_problem(tmp_path, changes, "objective")
    assert "2 metric(s)" in problem and "1 direction(s)" in problem


def test_objective_direction_spelling(tmp_path):
    problem = the_problem(tmp_path, {"objective": {"direction": "minimise"}}, "objective.direction")
    assert "did you mean 'minimize'?" in problem


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


# ------------------------------------------------------------------ search space


@pytest.mark.parametrize(
    ("param", "path", "expected"),
    [
        ({"type": "float", "low": 0.1, "high": 0.01}, "space.weight_decay", "low 0.1 > high 0.01"),
        (
            {"type": "float", "low": 0.0, "high": 0.1, "log": True},
            "space.weight_decay.low",
            "low > 0",
        ),
        ({"type": "float", "low": "small", "high": 0.1}, "space.weight_decay.low", "a number"),
        ({"type": "float", "high": 0.1}, "space.weight_decay.low", "missing"),
        (
            {"type": "float", "low": 0.1, "high": 0.2, "log": "yes"},
            "space.weight_decay.log",
            "true or false",
        ),
        (
            {"type": "float", "low": 1e-4, "high": 0.1, "log": True, "step": 0.01},
            "space.weight_decay.step",
            "no step",
        ),
        ({"type": "float", "low": 0.1, "high": 0.2, "step": -1}, "space.weight_decay.step", "> 0"),
        (
            {"type": "real", "low": 0.1, "high": 0.2},
            "space.weight_decay.type",
            "one of float, int, categorical",
        ),
        (
            {"type": "float", "low": 0.1, "high": 0.2, "choices": [1]},
            "space.weight_decay.choices",
            "applies to type categorical",
        ),
        (
            {"type": "float", "low": 0.1, "hihg": 0.2},
            "space.weight_decay.hihg",
            "did you mean 'high'?",
        ),
        ({"type": "categorical", "choices": []}, "space.weight_decay.choices", "a non-empty list"),
        (
            {"type": "categorical", "choices": [0.1, 0.1]},
            "space.weight_decay.choices",
            "distinct values",
        ),
        (
            {"type": "categorical", "choices": [[1, 2]]},
            "space.weight_decay.choices[0]",
            "a number, text",
        ),
        ("0.1", "space.weight_decay", "{type: float|int|categorical"),
    ],
)
def test_space_parameter_problems(tmp_path, param, path, expected):
    problem = the_problem(tmp_path, {"space": {"weight_decay": param}}, path)
    assert expected in problem


def test_int_parameters_need_integers(tmp_path):
    problem = the_problem(
        tmp_path,
        {"space": {"warmup_steps": {"type": "int", "low": 0.5, "high": 10}}},
        "space.warmup_steps.low",
    )
    assert "found 0.5, expected an integer" in problem


def test_space_names_must_be_fields_or_model_attributes(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "space": {
                "learnin_rate": {"type": "float", "low": 0.1, "high": 0.2},
                "model.n_layers": {"type": "int", "low": 1, "high": 2},
            }
        },
    )
    assert any(
        p.startswith("space.learnin_rate:")
        and "neither a TrainingArguments field nor model." in p
        and "did you mean 'learning_rate'?" in p
        for p in problems
    )
    assert any(
        p.startswith("space.model.n_layers:")
        and "not an attribute of a gpt2 config" in p
        and "did you mean 'n_layer'?" in p
        for p in problems
    )


def test_empty_space(tmp_path):
    path = write_study(tmp_path, {"space": DELETE})
    path.write_text(path.read_text() + "space: {}\n")
    with pytest.raises(StudyFileError) as caught:
        load(path)
    assert any(p.startswith("space: empty") for p in caught.value.problems)
    assert "missing" in the_problem(tmp_path, {"space": DELETE}, "space")


def test_space_ends_are_judged_by_training_arguments(tmp_path):
    # warmup_steps takes an integer, or a fraction below 1: 2.5 at the high end is neither.
    changes = {"space": {"warmup_steps": {"type": "float", "low": 0.0, "high": 2.5}}}
    problem = the_problem(tmp_path, changes, "space.warmup_steps")
    assert "at the high end of the space" in problem and "warmup_steps=2.5" in problem


def test_space_ends_are_judged_by_the_model_config(tmp_path):
    changes = {"space": {"model.n_layer": {"type": "categorical", "choices": [1, "two"]}}}
    problem = the_problem(tmp_path, changes, "space (model.n_layer)")
    assert "gpt2 rejects" in problem and "n_layer" in problem


# ------------------------------------------------------------------ training


def test_training_keys_must_be_training_arguments_fields(tmp_path):
    problem = the_problem(tmp_path, {"training": {"learning_rat": 0.1}}, "training.learning_rat")
    assert "not a TrainingArguments field" in problem and "did you mean 'learning_rate'?" in problem


def test_training_values_rejected_by_training_arguments(tmp_path):
    problem = the_problem(tmp_path, {"training": {"max_steps": -5}}, "training.max_steps")
    assert "max_steps=-5" in problem and "positive integer" in problem


def test_training_combination_rejected_by_training_arguments(tmp_path):
    changes = {"training": {"bf16": True, "fp16": True}}
    problem = the_problem(tmp_path, changes, "training.bf16")
    assert "bf16=True and fp16=True" in problem


# ------------------------------------------------------------------ sampler, pruner, scheduler


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


def test_grid_sampler_needs_a_finite_space(tmp_path):
    problem = the_problem(tmp_path, {"sampler": {"name": "grid"}}, "space.learning_rate")
    assert "cannot be searched by sampler grid" in problem


def test_grid_sampler_search_space_is_built_by_hpo(tmp_path):
    changes = {
        "sampler": {"name": "grid", "search_space": {"a": [1]}},
        "space": {"learning_rate": {"type": "categorical", "choices": [0.1, 0.01]}},
    }
    assert "set by hpo" in the_problem(tmp_path, changes, "sampler.search_space")


def test_default_pruner_derives_from_the_evaluation_grid():
    assert default_pruner(
        {"eval_strategy": "steps", "eval_steps": 50, "max_steps": 300}
    ) == ComponentSpec(
        "hyperband", {"min_resource": 50, "max_resource": 300, "reduction_factor": 3}
    )
    assert (
        default_pruner({"eval_strategy": "steps", "eval_steps": 50}).options["max_resource"]
        == "auto"
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


def test_ray_scheduler_problems(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "backend": "ray",
            "scheduler": {"name": "asha", "grace_periods": 2},
            "sampler": {"name": "cmaes"},
            "ray": {"resources_per_trial": {"cpu": -1, "tpu": 1}, "adress": "auto"},
        },
    )
    assert any(
        p.startswith("scheduler.grace_periods:") and "did you mean 'grace_period'?" in p
        for p in problems
    )
    assert any(
        p.startswith("sampler.name: found 'cmaes'") and "one of random, tpe" in p for p in problems
    )
    assert any(p.startswith("ray.resources_per_trial.cpu: found -1") for p in problems)
    assert any(p.startswith("ray.resources_per_trial.tpu:") for p in problems)
    assert any(p.startswith("ray.adress:") and "did you mean 'address'?" in p for p in problems)


def test_unknown_scheduler(tmp_path):
    problem = the_problem(
        tmp_path, {"backend": "ray", "scheduler": {"name": "ashа"}}, "scheduler.name"
    )
    assert "one of asha, hyperband, pbt, pb2, median" in problem


def test_scheduler_values_are_checked_by_constructing_it(tmp_path):
    changes = {"backend": "ray", "scheduler": {"name": "asha", "grace_period": 0}}
    assert "asha rejects" in the_problem(tmp_path, changes, "scheduler")


def test_scheduler_metric_is_set_from_the_objective(tmp_path):
    changes = {"backend": "ray", "scheduler": {"name": "asha", "metric": "loss"}}
    assert "set by hpo" in the_problem(tmp_path, changes, "scheduler.metric")


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


# ------------------------------------------------------------------ model and data


def test_unknown_model_type_and_task(tmp_path):
    problems = problems_of(
        tmp_path, {"model": {"config": {"model_type": "gtp2"}, "task": "causal_lm"}}
    )
    assert any(
        p.startswith("model.config.model_type: found 'gtp2'") and "did you mean 'gpt2'?" in p
        for p in problems
    )
    assert any(
        p.startswith("model.task: found 'causal_lm'") and "did you mean 'causal-lm'?" in p
        for p in problems
    )


def test_model_config_keys_and_values(tmp_path):
    problems = problems_of(tmp_path, {"model": {"config": {"n_layers": 2, "n_embd": "wide"}}})
    assert any(
        p.startswith("model.config.n_layers:") and "did you mean 'n_layer'?" in p for p in problems
    )
    assert any(
        p.startswith("model.config:") and "gpt2 rejects it" in p and "n_embd" in p for p in problems
    )


def test_model_is_built_on_the_meta_device_to_catch_inconsistent_configs(tmp_path):
    problem = the_problem(tmp_path, {"model": {"config": {"n_embd": 33}}}, "model.config")
    assert "no causal-lm model can be built" in problem and "divisible" in problem
    changes = {"space": {"model.n_embd": {"type": "categorical", "choices": [32, 33]}}}
    problem = the_problem(tmp_path, changes, "space (model.n_layer, model.n_embd)")
    assert "at the high end" in problem and "divisible" in problem


def test_model_type_without_a_model_for_the_task(tmp_path):
    import yaml
    from helpers.study_files import base_study

    study = base_study()
    study["model"]["config"] = {"model_type": "t5", "vocab_size": 256, "d_model": 32}
    study["space"] = {"learning_rate": study["space"]["learning_rate"]}
    (tmp_path / "t5.yaml").write_text(yaml.safe_dump(study))
    with pytest.raises(StudyFileError) as caught:
        load(tmp_path / "t5.yaml")
    [problem] = caught.value.problems
    assert problem.startswith("model.config: no causal-lm model can be built from it")


def test_exactly_one_model_source_and_one_data_source(tmp_path):
    problems = problems_of(
        tmp_path,
        {"model": {"pretrained": "gpt2"}, "data": {"hub": "wikitext"}},
    )
    assert any(p.startswith("model: found config and pretrained") for p in problems)
    assert any(p.startswith("data: found corpus and hub") for p in problems)
    problems = problems_of(tmp_path, {"data": {"corpus": DELETE}})
    assert any(p.startswith("data: found none; expected exactly one of files") for p in problems)


def test_missing_local_paths(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "model": {"config": DELETE, "pretrained": "./no-such-model"},
            "data": {
                "corpus": DELETE,
                "files": ["train.txt", "notes.pdf"],
                "tokenizer": "/no/tokenizer",
            },
        },
    )
    assert any(
        p.startswith("model.pretrained:") and "no such file or directory" in p for p in problems
    )
    assert any(p.startswith("data.files[0]:") and "does not exist" in p for p in problems)
    assert any(p.startswith("data.files[1]:") and ".txt, .jsonl, .csv" in p for p in problems)
    assert any(p.startswith("data.tokenizer:") and "no such file" in p for p in problems)


def test_data_files_resolve_against_the_current_directory(tmp_path):
    (tmp_path / "train.txt").write_text("hello world\n" * 10)
    (tmp_path / "valid.txt").write_text("hello again\n")
    spec = load(
        write_study(
            tmp_path,
            {"data": {"corpus": DELETE, "files": "train.txt", "eval_files": ["valid.txt"]}},
        )
    )
    assert spec.data.files == (str(tmp_path / "train.txt"),)
    assert spec.data.eval_files == (str(tmp_path / "valid.txt"),)


def test_eval_files_need_files(tmp_path):
    (tmp_path / "valid.txt").write_text("x\n")
    problem = the_problem(tmp_path, {"data": {"eval_files": ["valid.txt"]}}, "data.eval_files")
    assert "without data.files" in problem


def test_model_must_fit_the_data(tmp_path):
    problems = problems_of(
        tmp_path,
        {"model": {"config": {"vocab_size": 100}}, "data": {"block_size": 128}},
    )
    assert any(
        p.startswith("model.config.vocab_size: found 100") and ">= 256" in p for p in problems
    )
    assert any(p.startswith("data.block_size: found 128") and "64 positions" in p for p in problems)


def test_data_values(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "data": {
                "corpus": "wiki",
                "eval_fraction": 1.5,
                "block_size": 1,
                "max_eval_samples": 0,
                "tokeniser": "bytes",
            }
        },
    )
    for path, text in [
        ("data.corpus", "one of pydoc-topics"),
        ("data.eval_fraction", "between 0 and 1"),
        ("data.block_size", "an integer >= 2"),
        ("data.max_eval_samples", "an integer >= 1"),
        ("data.tokeniser", "did you mean 'tokenizer'?"),
    ]:
        assert any(p.startswith(f"{path}:") and text in p for p in problems), (path, problems)


def test_factories_are_imported_and_checked(tmp_path):
    (tmp_path / "my_factories.py").write_text("def make_model():\n    return None\n")
    study = write_study(
        tmp_path,
        {
            "model": {"config": DELETE, "factory": "my_factories:make_model"},
            "space": {"model.n_layer": DELETE},
        },
        name="factory.yaml",
    )
    load(study)
    assert not (tmp_path / "__pycache__").exists()  # validation writes nothing, not even bytecode
    spec = load(
        write_study(
            tmp_path,
            {
                "model": {"config": DELETE, "factory": "my_factories:make_model"},
                "space": {"model.n_layer": DELETE},
            },
        )
    )
    assert spec.model.factory == "my_factories:make_model"
    problems = problems_of(
        tmp_path, {"model": {"config": DELETE, "factory": "my_factories:make_modle"}}
    )
    assert any(p.startswith("model.factory:") and "make_modle" in p for p in problems)
    problems = problems_of(
        tmp_path, {"model": {"config": DELETE, "factory": "no_such_module_here:f"}}
    )
    assert any(p.startswith("model.factory:") and "no_such_module_here" in p for p in problems)


# ------------------------------------------------------------------ storage


def test_storage_precedence(tmp_path, monkeypatch):
    env = {}
    assert resolve_storage(None, None, "s", env) == ("sqlite:///runs/s.db", "storage (default)")
    assert resolve_storage(None, "sqlite:///f.db", "s", env)[0] == "sqlite:///f.db"
    env["HPO_STORAGE"] = "sqlite:///env.db"
    assert resolve_storage(None, "sqlite:///f.db", "s", env) == ("sqlite:///env.db", "HPO_STORAGE")
    assert resolve_storage("sqlite:///cli.db", "sqlite:///f.db", "s", env) == (
        "sqlite:///cli.db",
        "--storage",
    )

    path = write_study(tmp_path, {"storage": "sqlite:///file.db"})
    assert load(path).storage == f"sqlite:///{tmp_path / 'file.db'}"
    monkeypatch.setenv("HPO_STORAGE", "sqlite:///env.db")
    assert load(path).storage == f"sqlite:///{tmp_path / 'env.db'}"
    assert load(path, storage="sqlite:///cli.db").storage == f"sqlite:///{tmp_path / 'cli.db'}"


def test_postgresql_url_gets_an_installed_driver(tmp_path):
    spec = load(write_study(tmp_path, {"storage": "postgresql://postgres@127.0.0.1:5432/postgres"}))
    assert spec.storage.startswith("postgresql") and spec.storage.endswith(
        "@127.0.0.1:5432/postgres"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "not a URL"),
        ("oracle://scott:tiger@db/orcl", "dialect 'oracle' is not supported"),
        ("postgresql+nodriver://scott:tiger@db/x", "no driver"),
        ("postgresql://scott:tiger@db", "no database name"),
    ],
)
def test_malformed_storage_urls(tmp_path, url, expected):
    problem = the_problem(tmp_path, {"storage": url}, "storage")
    assert expected in problem
    assert "tiger" not in problem  # passwords never appear


def test_storage_source_is_named_in_the_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_STORAGE", "oracle://db/x")
    assert "oracle" in the_problem(tmp_path, {}, "HPO_STORAGE")
    assert "oracle" in the_problem(tmp_path, {}, "--storage", storage="oracle://db/y")


def test_in_memory_sqlite_cannot_be_shared_by_workers(tmp_path):
    assert "in-memory" in the_problem(tmp_path, {"storage": "sqlite://", "workers": 2}, "storage")


# ------------------------------------------------------------------ everything at once


def test_many_problems_are_listed_together(tmp_path):
    changes = {
        "name": DELETE,
        "backend": "optuan",
        "workers": 0,
        "budget": {"timeout": "soon"},
        "storage": "mongodb://x/y",
        "sampler": {"name": "tpe", "startup": 3},
        "model": {"config": {"model_type": "gpt3"}},
        "data": {"corpus": DELETE, "files": ["missing.txt"]},
        "training": {"max_step": 10},
        "space": {
            "learning_rate": {"type": "float", "low": 1.0, "high": 0.1},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        },
        "extra": 1,
    }
    problems = problems_of(tmp_path, changes)
    for path in [
        "name",
        "backend",
        "workers",
        "budget.timeout",
        "storage",
        "sampler.startup",
        "model.config.model_type",
        "data.files[0]",
        "training.max_step",
        "space.learning_rate",
        "space.dropout",
        "extra",
    ]:
        assert any(p.startswith(f"{path}:") for p in problems), (path, problems)
    with pytest.raises(StudyFileError) as caught:
        load(tmp_path / "study.yaml")
    message = str(caught.value)
    assert message.splitlines()[0].endswith(f"{len(problems)} problem(s) in the study file")


# ------------------------------------------------------------------ inspection


def test_load_for_inspection_reads_name_and_storage_only(tmp_path):
    # A study that would not run (unknown model) can still be inspected.
    path = write_study(
        tmp_path, {"model": {"config": {"model_type": "nope"}}, "storage": "sqlite:///s.db"}
    )
    ref = load_for_inspection(path)
    assert ref.name == "unit"
    assert ref.storage == f"sqlite:///{tmp_path / 's.db'}"
    assert load_for_inspection(path, storage="sqlite:///other.db").storage.endswith("other.db")
    assert ref.output_dir == "runs/unit"
    with pytest.raises(StudyFileError, match="storage"):
        load_for_inspection(write_study(tmp_path, {"storage": "bogus"}))
    assert not (tmp_path / "s.db").exists()
    assert os.listdir(tmp_path) == ["study.yaml"]


# ------------------------------------------------------------------ never a traceback


def _key_paths(mapping: dict, prefix: tuple = ()):
    for key, value in mapping.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from _key_paths(value, (*prefix, key))


def test_any_wrong_shape_is_a_study_file_error_not_a_crash(tmp_path):
    """Each key, and a few the base study lacks, set to values of the wrong shape."""
    import yaml
    from helpers.study_files import base_study

    extra = [("sampler",), ("pruner",), ("budget", "timeout"), ("data", "files"), ("ray",)]
    cases = 0
    for path in [*_key_paths(base_study()), *extra]:
        for bad in ([], {"a": 1}, -1, [None]):
            study = base_study()
            node = study
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = bad
            (tmp_path / "s.yaml").write_text(yaml.safe_dump(study))
            try:
                load(tmp_path / "s.yaml")
            except StudyFileError as error:
                assert error.problems
            cases += 1
    assert cases > 100


DESIGN_EXAMPLE = """
name: quickstart                  # required; the study's name in the storage
storage: sqlite:///runs/quickstart.db   # default: sqlite file under runs/; HPO_STORAGE or --storage override
backend: optuna                   # optuna | ray
objective: {metric: eval_loss, direction: minimize}   # lists of both for multi-objective
budget: {n_trials: 12, timeout: 20m, max_failed_trials: 3}
workers: 2                        # trials in parallel on this machine
sampler: {name: tpe, seed: 0}     # optuna sampler and its options
pruner: {name: hyperband, min_resource: 100, reduction_factor: 3}   # or none
scheduler: {name: asha, grace_period: 100, reduction_factor: 3}     # ray backend
ray: {address: auto, resources_per_trial: {cpu: 1, gpu: 0}}
model:
  config: {model_type: gpt2, vocab_size: 256, n_positions: 128, n_embd: 64, n_layer: 2, n_head: 2}
  task: causal-lm                 # causal-lm | sequence-classification
data:
  files: [data/train.txt]         # or a built-in offline corpus, or a datasets hub id
  eval_files: [data/valid.txt]    # optional; otherwise a held-out fraction of files
  tokenizer: bytes                # byte-level, offline; or a tokenizer path / hub id
  block_size: 128
training:                         # TrainingArguments shared by every trial (HF names)
  output_dir: runs/quickstart     # each trial writes under its own subfolder
  max_steps: 300
  per_device_train_batch_size: 16
  eval_strategy: steps
  eval_steps: 50
space:                            # what the search varies
  learning_rate: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
  warmup_steps: {type: int, low: 0, high: 60}
  per_device_train_batch_size: {type: categorical, choices: [8, 16, 32]}
  model.n_layer: {type: int, low: 1, high: 4}     # model.* reaches model_init
"""


def test_the_design_contract_example_loads(tmp_path):
    """The study file shown in DESIGN.md is the contract: it must load as written."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text("some text\n" * 50)
    (tmp_path / "data" / "valid.txt").write_text("more text\n" * 5)
    (tmp_path / "design.yaml").write_text(DESIGN_EXAMPLE)
    spec = load(tmp_path / "design.yaml")
    assert spec.budget.timeout_s == 1200 and spec.budget.max_failed_trials == 3
    assert spec.pruner == ComponentSpec("hyperband", {"min_resource": 100, "reduction_factor": 3})
    assert spec.data.files == (str(tmp_path / "data" / "train.txt"),)
    assert [p.name for p in spec.space] == [
        "learning_rate",
        "warmup_steps",
        "per_device_train_batch_size",
        "model.n_layer",
    ]
    assert spec.ray["address"] == "auto"
    assert spec.warnings == ("scheduler: ignored by backend optuna, which prunes with `pruner`",)
