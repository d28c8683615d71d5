"""hpo.study.sections.space: each parameter's name and range."""

from __future__ import annotations

import pytest
from helpers.study_files import DELETE, problems_of, the_problem, write_study

from hpo.errors import StudyFileError
from hpo.study import load


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
    # model.* names are judged against the built config, once the file's shape is right
    # (building it imports transformers: a typo elsewhere is reported before that).
    problems = problems_of(
        tmp_path,
        {"space": {"model.n_layers": {"type": "int", "low": 1, "high": 2}}},
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
