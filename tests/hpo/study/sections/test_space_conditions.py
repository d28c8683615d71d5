"""hpo.study.sections.space_conditions: `when:` checked against the whole space."""

from __future__ import annotations

import pytest
from helpers.study_files import problems_of, the_problem, write_study

from hpo.study import load

OPTIM = {"type": "categorical", "choices": ["adamw_torch", "sgd"]}
BETA2 = {"type": "float", "low": 0.95, "high": 0.999, "when": {"optim": "adamw_torch"}}


def test_a_conditional_param_loads_with_its_condition(tmp_path):
    spec = load(
        write_study(
            tmp_path,
            {
                "space": {
                    # before its parent: the order in the file does not matter
                    "adam_beta2": {
                        "type": "categorical",
                        "choices": [0.95, 0.99, 0.999],
                        "when": {"optim": "adamw_torch"},
                    },
                    "optim": OPTIM,
                    "warmup_steps": {"type": "int", "low": 0, "high": 10, "step": 5},
                    "adam_epsilon": {
                        "type": "float",
                        "low": 1e-9,
                        "high": 1e-7,
                        "log": True,
                        # a parent that is itself conditional; a list means "one of"
                        "when": {"adam_beta2": [0.95, 0.999], "warmup_steps": [0, 10]},
                    },
                }
            },
        )
    )
    by_name = {p.name: p for p in spec.space}
    assert by_name["adam_beta2"].when == (("optim", ("adamw_torch",)),)
    assert by_name["adam_epsilon"].when == (
        ("adam_beta2", (0.95, 0.999)),
        ("warmup_steps", (0, 10)),
    )
    assert not by_name["optim"].is_conditional
    assert spec.is_define_by_run


@pytest.mark.parametrize(
    ("beta2_when", "path", "expected"),
    [
        (
            {"optimm": "adamw_torch"},
            "space.adam_beta2.when.optimm",
            "unknown param 'optimm' (did you mean 'optim'?); when: names params of this space",
        ),
        (
            {"optim": "adamw"},
            "space.adam_beta2.when.optim",
            "'adamw' is a value optim never takes (choices ['adamw_torch', 'sgd'])",
        ),
        (
            {"warmup_steps": 3},
            "space.adam_beta2.when.warmup_steps",
            "3 is a value warmup_steps never takes (int 0..10 step 5)",
        ),
        (
            {"warmup_steps": 11},
            "space.adam_beta2.when.warmup_steps",
            "11 is a value warmup_steps never takes",
        ),
        (
            {"learning_rate": 0.001},
            "space.adam_beta2.when.learning_rate",
            "learning_rate is a continuous float",
        ),
        (
            {"adam_beta2": 0.99},
            "space.adam_beta2.when.adam_beta2",
            "cannot depend on itself",
        ),
        ({"optim": []}, "space.adam_beta2.when.optim", "a value or a non-empty list"),
        ("optim", "space.adam_beta2.when", "{param: value or [values]}"),
    ],
)
def test_condition_problems(tmp_path, beta2_when, path, expected):
    space = {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "optim": OPTIM,
        "warmup_steps": {"type": "int", "low": 0, "high": 10, "step": 5},
        "adam_beta2": {**BETA2, "when": beta2_when},
    }
    problem = the_problem(tmp_path, {"space": space}, path)
    assert expected in problem, problem


def test_true_is_not_one(tmp_path):
    space = {
        "gradient_checkpointing": {"type": "categorical", "choices": [True, False]},
        "adam_beta2": {**BETA2, "when": {"gradient_checkpointing": 1}},
    }
    problem = the_problem(
        tmp_path, {"space": space}, "space.adam_beta2.when.gradient_checkpointing"
    )
    assert "1 is a value gradient_checkpointing never takes" in problem


def test_a_cycle_is_reported_with_its_path(tmp_path):
    space = {
        "optim": {**OPTIM, "when": {"warmup_steps": 5}},
        "warmup_steps": {"type": "int", "low": 0, "high": 10, "when": {"adam_beta2": 0.99}},
        "adam_beta2": {"type": "categorical", "choices": [0.99, 0.999], "when": {"optim": "sgd"}},
    }
    problems = problems_of(tmp_path, {"space": space})
    cycles = [p for p in problems if "form a cycle" in p]
    assert len(cycles) == 1, problems
    assert "optim -> warmup_steps -> adam_beta2 -> optim" in cycles[0]
    assert "remove one of these conditions" in cycles[0]


def test_every_condition_problem_is_reported_at_once(tmp_path):
    space = {
        "optim": OPTIM,
        "adam_beta2": {**BETA2, "when": {"optim": "adamw"}},
        "adam_beta1": {"type": "float", "low": 0.8, "high": 0.9, "when": {"nope": 1}},
    }
    problems = problems_of(tmp_path, {"space": space})
    assert any(p.startswith("space.adam_beta2.when.optim:") for p in problems)
    assert any(p.startswith("space.adam_beta1.when.nope:") for p in problems)


@pytest.mark.parametrize(
    ("changes", "path", "expected"),
    [
        ({"sampler": {"name": "grid"}}, "sampler.name", "grid needs a fixed list of values"),
        (
            {"backend": "ray", "scheduler": {"name": "pbt", "perturbation_interval": 20}},
            "scheduler.name",
            "pbt mutates each param of a running trial on its own",
        ),
    ],
)
def test_searches_that_need_a_flat_space_are_refused(tmp_path, changes, path, expected):
    space = {
        "optim": OPTIM,
        "warmup_steps": {"type": "int", "low": 0, "high": 10, "when": {"optim": "sgd"}},
    }
    problem = the_problem(tmp_path, {"space": space, **changes}, path)
    assert expected in problem and "conditional params (warmup_steps)" in problem
