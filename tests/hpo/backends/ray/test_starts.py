"""`backend: ray` starting from what is known, on a real local Ray: the `enqueue:` entries are
Tune's points_to_evaluate, the warm-start copies go into the storage (marked, in no budget)
and into TPE's study; a rerun adds neither again; a changed objective is refused before
anything is written."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
import yaml
from helpers.study_files import tiny_gpt2_config

from hpo.attrs import (
    ENQUEUED_CONFIGS_ATTR,
    SPACE_CHANGES_ATTR,
    STUDY_FILE_ATTR,
    WARM_START_ATTR,
)
from hpo.errors import StudyFileError
from hpo.storage import reader

tune = pytest.importorskip("ray.tune")
cloudpickle = pytest.importorskip("ray.cloudpickle")
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "warmup_steps": {"type": "int", "low": 0, "high": 2},
}
ENQUEUED = {"learning_rate": 0.02, "warmup_steps": 1}


def ray_study(tmp_path: Path, old_url: str) -> dict:
    return {
        "name": "ray-starts",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "backend": "ray",
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "budget": {"n_trials": 2},
        "sampler": {"name": "tpe", "seed": 0},
        "scheduler": {"name": "asha", "grace_period": 2, "max_t": 4},
        "ray": {"max_concurrent_trials": 1, "resources_per_trial": {"cpu": 1}},
        "model": {
            "config": tiny_gpt2_config(n_positions=32, n_embd=16, n_layer=1),
            "task": "causal-lm",
        },
        "data": {"corpus": "pydoc-topics", "block_size": 32, "max_eval_samples": 32},
        "training": {
            "output_dir": str(tmp_path / "runs"),
            "max_steps": 4,
            "per_device_train_batch_size": 8,
            "eval_strategy": "steps",
            "eval_steps": 2,
        },
        "space": SPACE,
        "enqueue": [ENQUEUED],
        "warm_start": {"study": "old", "storage": old_url},
    }


def load_spec(tmp_path: Path, study: dict):
    from hpo.study import load

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return load(path)


def old_study(url: str) -> None:
    """Three COMPLETE trials: two fit SPACE, one has warmup_steps outside it."""
    study = optuna.create_study(study_name="old", storage=url)
    distributions = {
        "learning_rate": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True),
        "warmup_steps": optuna.distributions.IntDistribution(0, 10),
    }
    for lr, warmup, value in ((1e-3, 0, 3.0), (3e-2, 2, 2.0), (1e-3, 9, 1.0)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"learning_rate": lr, "warmup_steps": warmup},
                distributions=distributions,
                value=value,
            )
        )


def test_the_searcher_starts_from_the_points_and_the_warm_trials(tmp_path):
    from hpo.backends.ray.search import build_search
    from hpo.backends.ray.starts import SearchStarts
    from hpo.backends.warm_start import copies_of

    old_url = f"sqlite:///{tmp_path}/old.db"
    old_study(old_url)
    spec = load_spec(tmp_path, ray_study(tmp_path, old_url))
    old = optuna.load_study(study_name="old", storage=old_url).get_trials()
    copies, summary = copies_of(spec, old, "old")
    assert summary == (
        "2 of 3 trials taken from study 'old': 1 had params outside this space "
        "(warmup_steps=9 > high=2)"
    )
    searcher, _ = build_search(
        spec,
        metric="eval_loss",
        mode="min",
        max_steps=4,
        starts=SearchStarts(points=[ENQUEUED], evaluated=copies),
    )
    # TPE's own study (Ray keeps it in memory) holds the warm trials as finished ones, and
    # the enqueued point waits first in line.
    ot_study = searcher._ot_study
    finished = ot_study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert [(t.params, t.value) for t in finished] == [(c.params, c.value) for c in copies]
    assert searcher.suggest("first") == ENQUEUED


@pytest.mark.slow
def test_a_ray_study_warm_started_and_enqueued_then_rerun_and_changed(ray_local, tmp_path, capsys):
    from hpo.backends.ray.tuner import run_study

    old_url = f"sqlite:///{tmp_path}/old.db"
    old_study(old_url)
    study = ray_study(tmp_path, old_url)
    spec = load_spec(tmp_path, study)
    assert run_study(spec) == 0
    out = capsys.readouterr().out
    assert "2 of 3 trials taken from study 'old'" in out

    stored = optuna.load_study(study_name=spec.name, storage=spec.storage)
    trials = stored.get_trials()
    copies = [t for t in trials if WARM_START_ATTR in t.user_attrs]
    trained = [t for t in trials if WARM_START_ATTR not in t.user_attrs]
    assert [c.user_attrs[WARM_START_ATTR]["trial"] for c in copies] == [0, 1]
    assert len(trained) == 2  # n_trials: the copies are in no budget
    assert trained[0].params == ENQUEUED  # Tune's first point
    assert stored.user_attrs[STUDY_FILE_ATTR]["space"].keys() == SPACE.keys()
    assert len(stored.user_attrs[ENQUEUED_CONFIGS_ATTR]) == 1
    assert reader.status(spec.storage, spec.name)["warm_start"] == 2
    assert reader.best(spec.storage, spec.name)["number"] in {t.number for t in trained}

    # A rerun restores the finished experiment and adds no copy again.
    assert run_study(spec) == 0
    assert "done by an earlier run (2 trials)" in capsys.readouterr().out
    assert len(optuna.load_study(study_name=spec.name, storage=spec.storage).trials) == 4

    # A changed objective is refused before anything is written.
    before = optuna.load_study(study_name=spec.name, storage=spec.storage).user_attrs
    study["objective"] = {"metric": "eval_loss", "direction": "maximize"}
    with pytest.raises(StudyFileError) as caught:
        run_study(load_spec(tmp_path, study))
    assert caught.value.exit_code == 2
    assert "objective: the study 'ray-starts' was run for minimize eval_loss" in str(caught.value)
    after = optuna.load_study(study_name=spec.name, storage=spec.storage)
    assert after.user_attrs == before and len(after.trials) == 4

    # A changed space goes on (the finished experiment is restored), printed and recorded.
    study["objective"] = {"metric": "eval_loss", "direction": "minimize"}
    study["space"] = {**SPACE, "learning_rate": {**SPACE["learning_rate"], "high": 0.2}}
    capsys.readouterr()
    assert run_study(load_spec(tmp_path, study)) == 0
    out = capsys.readouterr().out
    assert "  changed learning_rate: high 0.1 -> 0.2\n" in out
    assert "a restored Ray experiment keeps the space it was started with" in out
    attrs = optuna.load_study(study_name=spec.name, storage=spec.storage).user_attrs
    assert attrs[SPACE_CHANGES_ATTR][-1]["changes"] == ["changed learning_rate: high 0.1 -> 0.2"]
    assert attrs[STUDY_FILE_ATTR]["space"]["learning_rate"]["high"] == 0.2


@pytest.mark.parametrize("space_kind", ["conditional", "python"])
def test_a_define_by_run_searcher_starts_from_the_points_and_the_warm_trials(space_kind, tmp_path):
    """OptunaSearch over a define-by-run space refuses add_evaluated_point: the copies go into
    its study through ray_compat, and the entries are its points_to_evaluate."""
    from hpo.backends.ray.search import build_search
    from hpo.backends.ray.starts import SearchStarts
    from hpo.backends.warm_start import copies_of

    old_url = f"sqlite:///{tmp_path}/old.db"
    old_study(old_url)
    study = ray_study(tmp_path, old_url)
    if space_kind == "conditional":
        study["space"] = {
            **SPACE,
            "adam_beta2": {"type": "float", "low": 0.9, "high": 0.99, "when": {"warmup_steps": 1}},
        }
        point = {"learning_rate": 0.02, "warmup_steps": 0}  # adam_beta2 does not exist here
    else:
        study["space"] = "helpers.spaces:optim_space"
        point = {"optim": "sgd", "lr": 0.002, "model.n_layer": 1}
    study["enqueue"] = [point]
    spec = load_spec(tmp_path, study)
    old = optuna.load_study(study_name="old", storage=old_url).get_trials()
    copies, _ = copies_of(spec, old, "old")
    assert len(copies) == (2 if space_kind == "conditional" else 0)
    searcher, param_space = build_search(
        spec,
        metric="eval_loss",
        mode="min",
        max_steps=4,
        starts=SearchStarts(points=list(spec.enqueue), evaluated=copies),
    )
    assert param_space == {}
    finished = searcher._ot_study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert [(t.params, t.value) for t in finished] == [(c.params, c.value) for c in copies]
    config = searcher.suggest("first")
    assert {name: config[name] for name in point} == point
    if space_kind == "conditional":
        assert "adam_beta2" not in config
    else:  # the function's returned dict travels in the config
        assert config["hpo_space_returned"]["learning_rate"] == 0.002
