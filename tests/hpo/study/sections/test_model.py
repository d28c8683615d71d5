"""hpo.study.sections.model: the model section, and a model built from it on the meta device."""

from __future__ import annotations

import pytest
from helpers.study_files import DELETE, base_study, problems_of, the_problem

from hpo.errors import StudyFileError
from hpo.study import load


def test_space_ends_are_judged_by_the_model_config(tmp_path):
    # (low and high removed: a file of the wrong shape is reported before the model checks)
    param = {"type": "categorical", "choices": [1, "two"], "low": DELETE, "high": DELETE}
    changes = {"space": {"model.n_layer": param}}
    problem = the_problem(tmp_path, changes, "space (model.n_layer)")
    assert "gpt2 rejects" in problem and "n_layer" in problem


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

    study = base_study()
    study["model"]["config"] = {"model_type": "t5", "vocab_size": 256, "d_model": 32}
    study["space"] = {"learning_rate": study["space"]["learning_rate"]}
    (tmp_path / "t5.yaml").write_text(yaml.safe_dump(study))
    with pytest.raises(StudyFileError) as caught:
        load(tmp_path / "t5.yaml")
    [problem] = caught.value.problems
    assert problem.startswith("model.config: no causal-lm model can be built from it")
