"""hpo.study.sections.warm_start: a study name and a storage URL (default: the study's own)."""

from __future__ import annotations

from helpers.study_files import problems_of, the_problem, write_study

from hpo.spec import WarmStartSpec
from hpo.study import load


def test_the_storage_defaults_to_the_study_s_own(tmp_path):
    spec = load(write_study(tmp_path, {"warm_start": {"study": "old"}}))
    assert spec.warm_start == WarmStartSpec(study="old", storage=spec.storage)


def test_a_sqlite_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load(
        write_study(tmp_path, {"warm_start": {"study": "old", "storage": "sqlite:///o.db"}})
    )
    assert spec.warm_start.storage == f"sqlite:///{tmp_path}/o.db"


def test_shape_problems_are_named(tmp_path):
    problems = problems_of(
        tmp_path,
        {"warm_start": {"study": "a b", "storage": "mongodb://u:secret@h/db", "from": 1}},
    )
    assert "warm_start.from: unknown key; expected one of study, storage" in problems
    assert any(p.startswith("warm_start.study: found 'a b'") for p in problems)
    storage = [p for p in problems if p.startswith("warm_start.storage:")]
    assert storage and "dialect 'mongodb' is not supported" in storage[0]
    assert "secret" not in " ".join(problems)


def test_the_study_itself_is_refused(tmp_path):
    assert "names this study itself" in the_problem(
        tmp_path, {"warm_start": {"study": "unit"}}, "warm_start.study"
    )


def test_a_missing_name_is_refused(tmp_path):
    assert "missing" in the_problem(
        tmp_path, {"warm_start": {"storage": "sqlite:///o.db"}}, "warm_start.study"
    )
