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


# --- a conditional space: an entry names a conditional param only where its `when` holds ----

CONDITIONAL = {
    "optim": {"type": "categorical", "choices": ["adamw_torch", "sgd"]},
    "adam_beta2": {"type": "float", "low": 0.95, "high": 0.999, "when": {"optim": "adamw_torch"}},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
}


def test_an_entry_lacks_a_param_whose_condition_does_not_hold(tmp_path):
    entries = [
        {"optim": "sgd", "learning_rate": 1e-3},
        {"optim": "adamw_torch", "adam_beta2": 0.99, "learning_rate": 1e-3},
    ]
    spec = load(write_study(tmp_path, {"space": CONDITIONAL, "enqueue": entries}))
    assert spec.enqueue == tuple(entries)


def test_an_entry_with_a_param_whose_condition_does_not_hold_is_refused(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "space": CONDITIONAL,
            "enqueue": [
                {"optim": "sgd", "adam_beta2": 0.99, "learning_rate": 1e-3},
                {"adam_beta2": 0.99},
            ],
        },
    )
    assert problems == [
        "enqueue[0]: adam_beta2 is given, but exists only when optim is 'adamw_torch' "
        "(here optim='sgd'); change the entry or the space",
        "enqueue[1]: adam_beta2 is given, but exists only when optim is 'adamw_torch' "
        "(here no optim); change the entry or the space",
    ]


def test_ray_over_a_conditional_space_takes_partial_points(tmp_path):
    study = {"backend": "ray", "sampler": {"name": "tpe"}, "space": CONDITIONAL}
    # whole: adam_beta2 does not exist where optim is sgd
    whole = {"optim": "sgd", "learning_rate": 1e-3, "model.n_layer": 1}
    assert load(write_study(tmp_path, {**study, "enqueue": [whole]})).enqueue == (whole,)
    # OptunaSearch over a define-by-run space enqueues a point as Optuna does: the sampler
    # draws what it lacks.
    partial = {"optim": "adamw_torch"}
    assert load(write_study(tmp_path, {**study, "enqueue": [partial]})).enqueue == (partial,)


# --- a Python space: each entry replayed through the function -------------------------------

PYTHON_SPACE = """
def hp_space(trial):
    optim = trial.suggest_categorical("optim", ["adamw_torch", "sgd"])
    params = {"learning_rate": trial.suggest_float("lr", 1e-4, 1e-2, log=True), "optim": optim}
    if optim == "adamw_torch":
        params["adam_beta2"] = trial.suggest_float("adam_beta2", 0.95, 0.999)
    return params
"""


def python_space(tmp_path, name: str) -> str:
    (tmp_path / f"{name}.py").write_text(PYTHON_SPACE)  # the tests' cwd is tmp_path
    return f"{name}:hp_space"


def test_a_python_space_entry_that_the_function_replays_is_kept(tmp_path):
    ref = python_space(tmp_path, "enqueue_space_ok")
    entries = [
        {"optim": "sgd", "lr": 1e-3},
        {"optim": "adamw_torch", "lr": 1e-3, "adam_beta2": 0.99},
    ]
    spec = load(write_study(tmp_path, {"space": ref, "enqueue": entries}))
    assert spec.enqueue == tuple(entries)


def test_a_python_space_entry_the_function_refuses_is_exit_2_with_why(tmp_path):
    ref = python_space(tmp_path, "enqueue_space_bad")
    problems = problems_of(
        tmp_path,
        {
            "space": ref,
            "enqueue": [
                {"optim": "sgd", "lr": 0.5},
                {"optim": "sgd", "lr": 1e-3, "adam_beta2": 0.99},
                {"optim": "adamw_torch", "lr": 1e-3},
            ],
        },
    )
    assert problems[0] == ("enqueue[0]: lr=0.5 > high=0.01; change the entry or the space function")
    assert problems[1] == (
        "enqueue[1]: adam_beta2 is not a parameter of the space; change the entry or the "
        "space function"
    )
    assert problems[2].startswith(
        f"enqueue[2]: space: {ref} raised ValueError: The value of the parameter 'adam_beta2' "
        "is not found."
    )
    assert "each entry names every param the function suggests for it" in problems[2]
    assert len(problems) == 3


def test_a_python_space_that_fails_its_dry_run_is_reported_once_not_per_entry(tmp_path):
    (tmp_path / "enqueue_space_raises.py").write_text(
        "def hp_space(trial):\n    raise RuntimeError('no GPU here')\n"
    )
    problems = problems_of(
        tmp_path,
        {"space": "enqueue_space_raises:hp_space", "enqueue": [{"lr": 1e-3}, {"lr": 2e-3}]},
    )
    assert len(problems) == 1 and problems[0].startswith("space: enqueue_space_raises:hp_space")
