"""hpo.study.load / validator: a whole study file in one pass, every problem in one error."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.study_files import DELETE, base_study, problems_of, write_study

from hpo.errors import StudyFileError
from hpo.spec import ComponentSpec, ParamSpec, PlacementSpec
from hpo.study import load


def test_valid_study_gets_the_defaults(tmp_path):
    spec = load(write_study(tmp_path))
    assert spec.name == "unit"
    assert spec.backend == "optuna"
    assert spec.workers == 1
    assert spec.keep == "best"
    assert spec.sampler == ComponentSpec("tpe", {"seed": 0})
    assert spec.pruner == ComponentSpec(
        "successive_halving",
        {"min_resource": 20, "reduction_factor": 2, "min_early_stopping_rate": 0},
    )
    assert spec.scheduler is None
    assert spec.storage == f"sqlite:///{tmp_path / 'runs' / 'unit.db'}"
    assert spec.objective.metrics == ("eval_loss",) and spec.objective.directions == ("minimize",)
    assert spec.space == (
        ParamSpec("learning_rate", "float", 1e-4, 1e-2, log=True),
        ParamSpec("model.n_layer", "int", 1, 2),
    )
    assert spec.data.corpus == "pydoc-topics" and spec.data.block_size == 32
    assert spec.warnings == ()
    assert spec.source_path == str(tmp_path / "study.yaml")


def test_validation_creates_nothing(tmp_path):
    write_study(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    load(tmp_path / "study.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/, no database


def test_command_line_overrides(tmp_path):
    spec = load(write_study(tmp_path, {"workers": 2}), n_trials=9, workers=3)
    assert spec.budget.n_trials == 9
    assert spec.workers == 3


def test_command_line_overrides_are_validated(tmp_path):
    problems = problems_of(tmp_path, {}, n_trials=0, workers=0)
    assert any(p.startswith("--n-trials: found 0") for p in problems)
    assert any(p.startswith("--workers: found 0") for p in problems)


def test_many_problems_are_listed_together(tmp_path):
    changes = {
        "name": DELETE,
        "backend": "optuan",
        "workers": 0,
        "budget": {"timeout": "soon"},
        "storage": "mongodb://x/y",
        "sampler": {"name": "tpe", "startup": 3},
        "model": {"config": {"model_type": "gpt3"}},
        "data": {"corpus": DELETE, "files": ["missing.txt"]},
        "training": {"max_step": 10},
        "space": {
            "learning_rate": {"type": "float", "low": 1.0, "high": 0.1},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        },
        "extra": 1,
    }
    problems = problems_of(tmp_path, changes)
    for path in [
        "name",
        "backend",
        "workers",
        "budget.timeout",
        "storage",
        "sampler.startup",
        "data.files[0]",
        "training.max_step",
        "space.learning_rate",
        "space.dropout",
        "extra",
    ]:
        assert any(p.startswith(f"{path}:") for p in problems), (path, problems)
    with pytest.raises(StudyFileError) as caught:
        load(tmp_path / "study.yaml")
    message = str(caught.value)
    assert message.splitlines()[0].endswith(f"{len(problems)} problem(s) in the study file")
    # The model is checked once the file's shape is right (that check imports torch).
    assert not any(p.startswith("model.config") for p in problems)
    fixed = {k: v for k, v in changes.items() if k == "model"}
    assert any(p.startswith("model.config.model_type:") for p in problems_of(tmp_path, fixed))


def _key_paths(mapping: dict, prefix: tuple = ()):
    for key, value in mapping.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from _key_paths(value, (*prefix, key))


def test_any_wrong_shape_is_a_study_file_error_not_a_crash(tmp_path):
    """Each key, and a few the base study lacks, set to values of the wrong shape."""
    import yaml

    extra = [("sampler",), ("pruner",), ("budget", "timeout"), ("data", "files"), ("ray",)]
    cases = 0
    for path in [*_key_paths(base_study()), *extra]:
        for bad in ([], {"a": 1}, -1, [None]):
            study = base_study()
            node = study
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = bad
            (tmp_path / "s.yaml").write_text(yaml.safe_dump(study))
            try:
                load(tmp_path / "s.yaml")
            except StudyFileError as error:
                assert error.problems
            cases += 1
    assert cases > 100


ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "ARCHITECTURE.md"


def contract_example() -> str:
    """The YAML block of docs/ARCHITECTURE.md's "The study file" section, as a user reads it."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text[text.index("## The study file") :]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_design_contract_example_loads(tmp_path):
    """The study file in docs/ARCHITECTURE.md is the contract: it must load as written."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text("some text\n" * 50)
    (tmp_path / "data" / "valid.txt").write_text("more text\n" * 5)
    (tmp_path / "design.yaml").write_text(contract_example())
    spec = load(tmp_path / "design.yaml")
    assert spec.budget.timeout_s == 1200 and spec.budget.max_failed_trials == 3
    assert spec.pruner == ComponentSpec("hyperband", {"min_resource": 100, "reduction_factor": 3})
    assert spec.data.files == (str(tmp_path / "data" / "train.txt"),)
    assert [p.name for p in spec.space] == [
        "learning_rate",
        "warmup_steps",
        "per_device_train_batch_size",
        "model.n_layer",
    ]
    assert spec.ray["address"] == "auto"
    assert spec.placement == PlacementSpec(trials_per_device=1, trial_processes=1)
    assert spec.warnings == ("scheduler: ignored by backend optuna, which prunes with `pruner`",)


def test_on_shape_ok_runs_once_for_a_well_shaped_file_and_never_for_a_typo(tmp_path):
    # `hpo run` starts its workers' imports from this hook: only for a file worth running.
    calls = []
    load(write_study(tmp_path), on_shape_ok=lambda *args: calls.append(args[:2]))
    assert calls == [("optuna", 1)]
    calls.clear()
    with pytest.raises(StudyFileError):
        load(
            write_study(tmp_path, {"budget": {"n_trail": 4}}),
            on_shape_ok=lambda *args: calls.append(args),
        )
    assert calls == []
