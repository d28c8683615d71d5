"""hpo.study.sections.hub: push_best_to_hub names a Hub repo id."""

from __future__ import annotations

import pytest
from helpers.study_files import the_problem, write_study

from hpo.study import load


@pytest.mark.parametrize("repo", ["my-user/my-model", "model.v2", "org/Tiny_GPT-2"])
def test_a_repo_id_is_kept(tmp_path, repo):
    assert load(write_study(tmp_path, {"push_best_to_hub": repo})).push_best_to_hub == repo


def test_absent_means_no_push(tmp_path):
    assert load(write_study(tmp_path)).push_best_to_hub is None


@pytest.mark.parametrize(
    "repo", ["my user/model", "a/b/c", "-lead/model", "me/model.", "me/a--b", 12, ["me/x"]]
)
def test_anything_else_is_refused_with_the_rule(tmp_path, repo):
    problem = the_problem(tmp_path, {"push_best_to_hub": repo}, "push_best_to_hub")
    assert "expected a Hub repo id such as my-user/my-model" in problem
