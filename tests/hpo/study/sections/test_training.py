"""hpo.study.sections.training: TrainingArguments fields, judged by TrainingArguments."""

from __future__ import annotations

from helpers.study_files import the_problem


def test_space_ends_are_judged_by_training_arguments(tmp_path):
    # warmup_steps takes an integer, or a fraction below 1: 2.5 at the high end is neither.
    changes = {"space": {"warmup_steps": {"type": "float", "low": 0.0, "high": 2.5}}}
    problem = the_problem(tmp_path, changes, "space.warmup_steps")
    assert "at the high end of the space" in problem and "warmup_steps=2.5" in problem


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
