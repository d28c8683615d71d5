"""Every study in studies/ runs end to end: the example as shipped (its data file, its tokenizer
trained on the spot, its tiny model from a config), made short (2 trials of a few steps, the
pruner's and scheduler's steps scaled to match) in a copy under tmp_path. The Optuna ones
through `hpo run`; postgres.yaml on a fresh PostgreSQL database (`--storage`); the Ray ones on
the session's local Ray."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import optuna
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
STUDIES = REPO / "studies"
TASK_STUDIES = ("regression", "token-classification", "masked-lm", "seq2seq-lm")


def short_copy(tmp_path: Path, name: str) -> Path:
    """studies/<name>.yaml and studies/data copied into tmp_path, cut to 2 trials of 6 steps."""
    shutil.copytree(STUDIES / "data", tmp_path / "studies" / "data")
    study = yaml.safe_load((STUDIES / f"{name}.yaml").read_text())
    study["budget"] = {"n_trials": 2}
    study["training"].update(max_steps=6, eval_steps=3, logging_steps=3)
    if "save_steps" in study["training"]:
        study["training"]["save_steps"] = 3
    if study.get("pruner", {}).get("name") == "hyperband":
        study["pruner"].update(min_resource=3, max_resource=6)
    scheduler = study.get("scheduler", {})
    if scheduler.get("name") == "asha":
        scheduler["grace_period"] = 3
    if scheduler.get("name") == "pbt":
        scheduler["perturbation_interval"] = 3
    if study.get("backend") == "ray":
        study["ray"]["max_concurrent_trials"] = 1
    path = tmp_path / "studies" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", TASK_STUDIES)
def test_task_example_runs_two_trials_to_a_finite_eval_loss(tmp_path, name, run_hpo):
    path = short_copy(tmp_path, name)
    result = run_hpo("run", str(path.relative_to(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    storage = f"sqlite:///{tmp_path / 'runs' / f'{name}.db'}"
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        assert math.isfinite(trial.value)
        assert math.isfinite(trial.user_attrs["train_metrics"]["eval_loss"])
        assert trial.value == pytest.approx(trial.user_attrs["train_metrics"]["eval_loss"])
    spec_space = set(yaml.safe_load((STUDIES / f"{name}.yaml").read_text())["space"])
    assert all(set(t.params) == spec_space for t in trials)


def test_a_task_study_with_a_wrong_column_exits_2_and_creates_nothing(tmp_path, run_hpo):
    path = short_copy(tmp_path, "token-classification")
    study = yaml.safe_load(path.read_text())
    study["data"]["tags_column"] = "labels"
    path.write_text(yaml.safe_dump(study))
    before = sorted(tmp_path.rglob("*"))
    result = run_hpo("run", str(path.relative_to(tmp_path)), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "ner.jsonl has no column 'labels' (found ['tags', 'tokens'])" in result.stderr
    assert "data.tags_column" in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.slow
def test_the_masked_lm_example_searches_its_masking_on_ray_too(tmp_path, ray_local, monkeypatch):
    """On the Ray backend a trial's config dict carries data.mlm_probability to the collator."""
    from hpo import backends
    from hpo.study import load

    monkeypatch.chdir(tmp_path)
    path = short_copy(tmp_path, "masked-lm")
    study = yaml.safe_load(path.read_text())
    study["backend"] = "ray"
    study["scheduler"] = {
        "name": "asha",
        "time_attr": "training_iteration",
        "grace_period": 2,
        "max_t": 2,
    }
    study["ray"] = {"max_concurrent_trials": 1, "resources_per_trial": {"cpu": 1}}
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    spec = load(path)
    assert backends.get("ray").run(spec) == backends.EXIT_OK
    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        assert 0.1 <= trial.params["data.mlm_probability"] <= 0.3
        assert math.isfinite(trial.value)


@pytest.mark.slow
def test_the_quickstart_runs_with_its_two_workers(tmp_path, run_hpo):
    path = short_copy(tmp_path, "quickstart")
    result = run_hpo("run", str(path.relative_to(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    storage = f"sqlite:///{tmp_path / 'runs' / 'quickstart.db'}"
    trials = optuna.load_study(study_name="quickstart", storage=storage).trials
    # The default pruner judges the trial that reaches a rung second against the first: which
    # one that is depends on the two workers' timing, so either may be pruned, never both.
    states = sorted(t.state.name for t in trials)
    assert states in (["COMPLETE", "COMPLETE"], ["COMPLETE", "PRUNED"]), states
    assert all(math.isfinite(t.value) for t in trials if t.state.name == "COMPLETE")


@pytest.mark.slow
def test_the_postgres_example_runs_on_postgresql(tmp_path, pg_url, run_hpo):
    path = short_copy(tmp_path, "postgres")
    result = run_hpo("run", str(path.relative_to(tmp_path)), "--storage", pg_url, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = optuna.load_study(study_name="postgres-demo", storage=pg_url).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 2 and all(t.state.name != "RUNNING" for t in trials)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ray-asha", "ray-pbt"])
def test_the_ray_examples_run(tmp_path, ray_local, monkeypatch, name):
    from hpo import backends
    from hpo.study import load

    monkeypatch.chdir(tmp_path)
    spec = load(short_copy(tmp_path, name))
    assert backends.get("ray").run(spec) == backends.EXIT_OK
    trials = optuna.load_study(study_name=name, storage=spec.storage).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 2
    assert all(math.isfinite(t.value) for t in trials if t.state.name == "COMPLETE")


@pytest.mark.slow
def test_the_masked_lm_best_trial_exports_its_masking_and_retrains(tmp_path, run_hpo):
    path = short_copy(tmp_path, "masked-lm")
    assert run_hpo("run", str(path.relative_to(tmp_path)), cwd=tmp_path).returncode == 0
    exported = run_hpo("export", str(path.relative_to(tmp_path)), "-o", "best.yaml", cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    config = yaml.safe_load((tmp_path / "best.yaml").read_text())
    storage = f"sqlite:///{tmp_path / 'runs' / 'masked-lm.db'}"
    best = optuna.load_study(study_name="masked-lm", storage=storage).best_trial
    assert config["data"]["mlm_probability"] == pytest.approx(best.params["data.mlm_probability"])
    assert not [key for key in config["training"] if key.startswith("data.")]
    assert config["data"]["tokenizer"] == {
        "kind": "wordpiece",
        "vocab_size": 200,
        "min_frequency": 1,
    }
    trained = run_hpo("train", "best.yaml", cwd=tmp_path)
    assert trained.returncode == 0, trained.stdout + trained.stderr
