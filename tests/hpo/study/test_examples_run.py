"""Every study in studies/ that has no server or cluster to reach runs end to end with `hpo run`:
the example as shipped (its data file, its tokenizer trained on the spot, its tiny model from a
config), made short (2 trials of a few steps) in a copy under tmp_path."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
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
    path = tmp_path / "studies" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run_hpo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HPO_STORAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("name", TASK_STUDIES)
def test_task_example_runs_two_trials_to_a_finite_eval_loss(tmp_path, name):
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


def test_a_task_study_with_a_wrong_column_exits_2_and_creates_nothing(tmp_path):
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
