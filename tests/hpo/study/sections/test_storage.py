"""hpo.study.sections.storage: which storage URL wins, and whether it can be opened here."""

from __future__ import annotations

import pytest
from helpers.study_files import the_problem, write_study

from hpo.study import load, resolve_storage


def test_storage_precedence(tmp_path, monkeypatch):
    env = {}
    assert resolve_storage(None, None, "s", env) == ("sqlite:///runs/s.db", "storage (default)")
    assert resolve_storage(None, "sqlite:///f.db", "s", env)[0] == "sqlite:///f.db"
    env["HPO_STORAGE"] = "sqlite:///env.db"
    assert resolve_storage(None, "sqlite:///f.db", "s", env) == ("sqlite:///env.db", "HPO_STORAGE")
    assert resolve_storage("sqlite:///cli.db", "sqlite:///f.db", "s", env) == (
        "sqlite:///cli.db",
        "--storage",
    )

    path = write_study(tmp_path, {"storage": "sqlite:///file.db"})
    assert load(path).storage == f"sqlite:///{tmp_path / 'file.db'}"
    monkeypatch.setenv("HPO_STORAGE", "sqlite:///env.db")
    assert load(path).storage == f"sqlite:///{tmp_path / 'env.db'}"
    assert load(path, storage="sqlite:///cli.db").storage == f"sqlite:///{tmp_path / 'cli.db'}"


def test_postgresql_url_gets_an_installed_driver(tmp_path):
    spec = load(write_study(tmp_path, {"storage": "postgresql://postgres@127.0.0.1:5432/postgres"}))
    assert spec.storage.startswith("postgresql") and spec.storage.endswith(
        "@127.0.0.1:5432/postgres"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "not a URL"),
        ("oracle://scott:tiger@db/orcl", "dialect 'oracle' is not supported"),
        ("postgresql+nodriver://scott:tiger@db/x", "no driver"),
        ("postgresql://scott:tiger@db", "no database name"),
    ],
)
def test_malformed_storage_urls(tmp_path, url, expected):
    problem = the_problem(tmp_path, {"storage": url}, "storage")
    assert expected in problem
    assert "tiger" not in problem  # passwords never appear


def test_storage_source_is_named_in_the_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_STORAGE", "oracle://db/x")
    assert "oracle" in the_problem(tmp_path, {}, "HPO_STORAGE")
    assert "oracle" in the_problem(tmp_path, {}, "--storage", storage="oracle://db/y")


def test_in_memory_sqlite_cannot_be_shared_by_workers(tmp_path):
    assert "in-memory" in the_problem(tmp_path, {"storage": "sqlite://", "workers": 2}, "storage")
