"""hpo.study.sections.run: workers, objective and budget."""

from __future__ import annotations

from helpers.study_files import the_problem, write_study

from hpo.study import load


def test_durations_in_the_budget(tmp_path):
    spec = load(write_study(tmp_path, {"budget": {"timeout": "1h30m", "max_failed_trials": 2}}))
    assert spec.budget.timeout_s == 5400
    assert spec.budget.max_failed_trials == 2
    problem = the_problem(tmp_path, {"budget": {"timeout": "20 minutes"}}, "budget.timeout")
    assert "'20 minutes'" in problem and "90s, 20m, 1h" in problem


def test_objective_lengths_must_match(tmp_path):
    changes = {"objective": {"metric": ["eval_loss", "eval_accuracy"], "direction": "minimize"}}
    problem = the_problem(tmp_path, changes, "objective")
    assert "2 metric(s)" in problem and "1 direction(s)" in problem


def test_objective_direction_spelling(tmp_path):
    problem = the_problem(tmp_path, {"objective": {"direction": "minimise"}}, "objective.direction")
    assert "did you mean 'minimize'?" in problem
