"""hpo.study.keys: the study's name rule."""

from __future__ import annotations

from helpers.study_files import DELETE, the_problem


def test_name_is_required_and_file_safe(tmp_path):
    assert "missing" in the_problem(tmp_path, {"name": DELETE}, "name")
    assert "'a/b'" in the_problem(tmp_path, {"name": "a/b"}, "name")
