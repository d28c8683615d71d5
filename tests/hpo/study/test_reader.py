"""hpo.study.reader: typed reads of simple values (choices, integers) and their problems."""

from __future__ import annotations

import pytest
from helpers.study_files import the_problem


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
