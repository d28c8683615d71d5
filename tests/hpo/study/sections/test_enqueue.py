"""hpo.study.sections.enqueue: each entry checked against the space, naming entry and param."""

from __future__ import annotations

from helpers.study_files import problems_of, the_problem, write_study

from hpo.study import load


def test_entries_are_kept_as_the_space_holds_them(tmp_path):
    spec = load(write_study(tmp_path, {"enqueue": [{"learning_rate": 1e-3, "model.n_layer": 2.0}]}))
    assert spec.enqueue == ({"learning_rate": 1e-3, "model.n_layer": 2},)
    assert type(spec.enqueue[0]["model.n_layer"]) is int


def test_an_entry_may_name_some_params_on_optuna(tmp_path):
    assert load(write_study(tmp_path, {"enqueue": [{"learning_rate": 1e-3}]})).enqueue == (
        {"learning_rate": 1e-3},
    )


def test_each_problem_names_the_entry_and_the_param(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "enqueue": [
                {"learning_rate": 0.5},
                {"lr": 1e-3},
                {"model.n_layer": 3},
                {"learning_rate": 1e-3},
                {"learning_rate": 1e-3},
                "fast",
            ]
        },
    )
    assert problems == [
        "enqueue[0]: learning_rate=0.5 > high=0.01; change the entry or the space",
        "enqueue[1]: lr is not a parameter of the space; the space has learning_rate, "
        "model.n_layer",
        "enqueue[2]: model.n_layer=3 > high=2; change the entry or the space",
        "enqueue[4]: the same configuration as enqueue[3]; list it once",
        "enqueue[5]: found 'fast', expected a mapping of {parameter: value}",
    ]


def test_ray_with_tpe_takes_whole_points_only(tmp_path):
    problem = the_problem(
        tmp_path,
        {"backend": "ray", "sampler": {"name": "tpe"}, "enqueue": [{"learning_rate": 1e-3}]},
        "enqueue[0]",
    )
    assert "no value for model.n_layer (with backend: ray and sampler: tpe" in problem


def test_not_a_list_is_refused(tmp_path):
    assert "expected a list of {parameter: value} mappings" in the_problem(
        tmp_path, {"enqueue": {"learning_rate": 1e-3}}, "enqueue"
    )


def test_more_entries_than_the_budget_is_a_warning(tmp_path):
    entries = [{"learning_rate": v} for v in (1e-4, 1e-3, 2e-3, 3e-3, 4e-3)]
    spec = load(write_study(tmp_path, {"enqueue": entries}))
    assert any(
        "enqueue lists 5 configurations but budget.n_trials is 4" in w for w in spec.warnings
    )
