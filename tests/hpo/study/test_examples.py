"""Every study in studies/ loads and validates: the files users copy first must be right."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.study import load

REPO = Path(__file__).resolve().parents[3]
STUDIES = sorted((REPO / "studies").glob("*.yaml"))


@pytest.fixture(autouse=True)
def no_env_storage(monkeypatch):
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    # The examples name their data files relative to the repository root, where users run them
    # (validation only reads: nothing is created there).
    monkeypatch.chdir(REPO)


def test_the_examples_are_there():
    names = {p.name for p in STUDIES}
    assert {
        "quickstart.yaml",
        "postgres.yaml",
        "ray-asha.yaml",
        "ray-pbt.yaml",
        "classification.yaml",
    } <= names
    tasks = {"regression", "token-classification", "masked-lm", "seq2seq-lm"}
    assert {f"{task}.yaml" for task in tasks} <= names
    assert {load(p).model.task for p in STUDIES} >= tasks


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_example_study_validates(path):
    spec = load(path)
    assert spec.name == path.stem or spec.name.startswith(path.stem.split("-")[0])
    assert spec.warnings == ()
    assert spec.space
    assert spec.budget.n_trials


def test_example_names_are_distinct():
    names = [load(p).name for p in STUDIES]
    assert len(names) == len(set(names))


def test_quickstart_is_offline_sqlite_with_two_workers():
    spec = load(STUDIES[[p.name for p in STUDIES].index("quickstart.yaml")])
    assert spec.storage.startswith("sqlite:///") and spec.storage.endswith("runs/quickstart.db")
    assert spec.workers == 2
    assert spec.data.corpus == "pydoc-topics" and spec.data.tokenizer == "bytes"
    assert spec.model.config["model_type"] == "gpt2"
    assert spec.pruner.name == "successive_halving"  # the default, derived from eval_steps
    assert spec.pruner.options["min_resource"] == spec.training["eval_steps"]


def test_postgres_study_uses_the_local_server():
    spec = load(STUDIES[[p.name for p in STUDIES].index("postgres.yaml")])
    assert spec.storage.startswith("postgresql")
    assert spec.storage.endswith("@127.0.0.1:5432/postgres")
    assert spec.workers == 2


@pytest.mark.parametrize(
    ("file", "scheduler"), [("ray-asha.yaml", "asha"), ("ray-pbt.yaml", "pbt")]
)
def test_ray_studies(file, scheduler):
    spec = load(STUDIES[[p.name for p in STUDIES].index(file)])
    assert spec.backend == "ray"
    assert spec.scheduler.name == scheduler
