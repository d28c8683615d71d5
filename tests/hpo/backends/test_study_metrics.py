"""A classifier tuned for accuracy, end to end: `metrics: [accuracy, f1]` in the study file, the
values recorded in the storage checked against scikit-learn on the checkpoints' predictions,
on both backends; a study whose objective no evaluation reports refused before anything runs;
a user's compute_metrics; the example study in studies/."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from helpers.cli_runner import snapshot
from optuna.trial import TrialState
from sklearn.metrics import accuracy_score, f1_score

from hpo import backends
from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    FAIL_REASON_ATTR,
    LAST_CHECKPOINT_ATTR,
    TRAIN_METRICS_ATTR,
)
from hpo.study import load

REPO = Path(__file__).resolve().parents[3]

GOOD = ["lovely", "superb", "charming", "great", "warm", "bright"]
BAD = ["awful", "dull", "boring", "cold", "noisy", "bland"]
THINGS = ["the film", "this soup", "the hotel", "our trip", "the song", "that book", "the show"]


def write_sentences(path: Path, n: int, seed: int) -> Path:
    """`n` labelled sentences (text,label), positive or negative by their adjective."""
    rng = random.Random(seed)
    lines = ["text,label"]
    for _ in range(n):
        label = rng.choice(["positive", "negative"])
        word = rng.choice(GOOD if label == "positive" else BAD)
        lines.append(f"{rng.choice(THINGS)} was {word},{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def classification_study(tmp_path: Path, **changes) -> Path:
    """The issue's study: a tiny byte-level GPT-2 classifier tuned for eval_accuracy. 300 eval
    rows: evaluations during the search see a fixed subset of 256, a completed trial's value
    comes from all 300."""
    study = {
        "name": "sentiment",
        "storage": f"sqlite:///{tmp_path}/sentiment.db",
        "objective": {"metric": "eval_accuracy", "direction": "maximize"},
        "metrics": ["accuracy", "f1"],
        "budget": {"n_trials": 2},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "keep": "all",
        "model": {
            "task": "sequence-classification",
            "config": {
                "model_type": "gpt2",
                "vocab_size": 256,
                "n_positions": 48,
                "n_embd": 32,
                "n_layer": 1,
                "n_head": 2,
            },
        },
        "data": {
            "files": [str(write_sentences(tmp_path / "train.csv", 160, seed=1))],
            "eval_files": [str(write_sentences(tmp_path / "eval.csv", 300, seed=2))],
            "tokenizer": "bytes",
            "block_size": 48,
        },
        "training": {
            "output_dir": str(tmp_path / "runs"),
            "max_steps": 16,
            "per_device_train_batch_size": 8,
            "per_device_eval_batch_size": 100,
            "eval_strategy": "steps",
            "eval_steps": 8,
            "seed": 0,
        },
        "space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
    }
    study.update(changes)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def predicted_classes(checkpoint: str, dataset) -> np.ndarray:
    """The checkpoint's predicted class of each row of `dataset`, from the saved model alone."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    batch = dataset.get_batch if hasattr(dataset, "get_batch") else None
    if batch is None:  # a torch Subset of the eval set
        rows = dataset.dataset.get_batch(dataset.indices)
    else:
        rows = batch(range(len(dataset)))
    with torch.no_grad():
        logits = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"]).logits
    return logits.argmax(-1).numpy(), rows["labels"].numpy()


def step_of(checkpoint: str) -> int:
    return int(Path(checkpoint).name.removeprefix("checkpoint-"))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    return tmp_path


@pytest.mark.slow
def test_the_best_trials_accuracy_is_what_sklearn_computes_from_its_checkpoints(in_tmp, run_hpo):
    from hpo.backends.objective import search_eval_datasets
    from hpo.data import load_datasets

    study_file = classification_study(in_tmp)
    result = run_hpo("run", str(study_file), cwd=in_tmp)
    assert result.returncode == 0, result.stderr

    spec = load(study_file)
    best = optuna.load_study(study_name=spec.name, storage=spec.storage).best_trial
    _, eval_dataset = load_datasets(spec)
    search_eval, final_eval = search_eval_datasets(spec, eval_dataset)
    assert len(search_eval) == 256 and len(final_eval) == 300

    # The search's evaluations: accuracy on the fixed subset, at the best checkpoint's step.
    best_checkpoint = best.user_attrs[BEST_CHECKPOINT_ATTR]
    classes, labels = predicted_classes(best_checkpoint, search_eval)
    recorded = best.intermediate_values[step_of(best_checkpoint)]
    assert recorded == pytest.approx(accuracy_score(labels, classes), abs=1e-12)
    assert recorded == max(best.intermediate_values.values())

    # The trial's value: the final evaluation of the last weights on the whole eval set, with
    # f1 (macro, the default average) beside it in the trial's recorded metrics.
    last_checkpoint = best.user_attrs[LAST_CHECKPOINT_ATTR]
    assert step_of(last_checkpoint) == 16
    classes, labels = predicted_classes(last_checkpoint, final_eval)
    assert best.value == pytest.approx(accuracy_score(labels, classes), abs=1e-12)
    metrics = best.user_attrs[TRAIN_METRICS_ATTR]
    assert metrics["eval_accuracy"] == best.value
    assert metrics["eval_f1"] == pytest.approx(f1_score(labels, classes, average="macro"))


@pytest.mark.slow
def test_the_ray_backend_records_eval_accuracy(in_tmp, ray_local):
    study_file = classification_study(
        in_tmp,
        backend="ray",
        keep="best",
        pruner=None,
        scheduler={
            "name": "asha",
            "time_attr": "training_iteration",
            "grace_period": 2,
            "max_t": 2,
        },
        ray={"max_concurrent_trials": 1, "resources_per_trial": {"cpu": 1}},
    )
    spec = load(study_file)
    assert backends.get("ray").run(spec) == backends.EXIT_OK

    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        metrics = trial.user_attrs[TRAIN_METRICS_ATTR]
        assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and "eval_f1" in metrics
        assert trial.value == metrics["eval_accuracy"]
        assert set(trial.intermediate_values) == {8, 16}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (  # the study: accuracy as the objective, no metrics named
            {"metrics": None},
            "objective.metric: 'eval_accuracy' is not reported by an evaluation of task "
            "sequence-classification with no metrics; it reports eval_loss, eval_runtime, "
            "eval_samples_per_second, eval_steps_per_second; add accuracy to metrics",
        ),
        (
            {"metrics": ["f1", "mse"]},
            "metrics[1]: found 'mse', expected one of accuracy, f1, f1_macro",
        ),
        (
            {"metrics": ["f1"]},
            "objective.metric: 'eval_accuracy' is not reported by an evaluation of task "
            "sequence-classification with metrics [f1]; it reports eval_loss, eval_f1,",
        ),
        (
            {"metrics": None, "compute_metrics": "absent_metrics_module:compute"},
            "compute_metrics: 'absent_metrics_module:compute': module 'absent_metrics_module' "
            "could not be imported",
        ),
    ],
    ids=["no-metrics", "metric-of-another-task", "objective-not-named", "compute-not-importable"],
)
def test_an_objective_no_evaluation_reports_is_refused_before_anything_runs(
    in_tmp, changes, expected, run_hpo
):
    study_file = classification_study(in_tmp)
    study = yaml.safe_load(study_file.read_text())
    for key, value in changes.items():
        if value is None:
            study.pop(key)
        else:
            study[key] = value
    study_file.write_text(yaml.safe_dump(study, sort_keys=False))
    before = snapshot(in_tmp)
    result = run_hpo("run", "study.yaml", cwd=in_tmp)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert snapshot(in_tmp) == before  # no database, no output folder, no data cache


def test_a_refused_objective_creates_nothing_in_postgresql(in_tmp, pg_url, run_hpo):
    import sqlalchemy

    study_file = classification_study(in_tmp, storage=pg_url, metrics=["f1"])
    result = run_hpo("run", "study.yaml", cwd=in_tmp)
    assert result.returncode == 2, result.stderr
    assert "objective.metric: 'eval_accuracy' is not reported" in result.stderr
    engine = sqlalchemy.create_engine(pg_url)
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == []  # no optuna schema, no study
    finally:
        engine.dispose()
    assert not (in_tmp / "runs").exists() and study_file.exists()


USER_METRICS = """
from sklearn.metrics import balanced_accuracy_score


def compute(prediction):
    classes = prediction.predictions.argmax(-1)
    return {"balanced": balanced_accuracy_score(prediction.label_ids, classes)}


def reduce(logits, labels):
    return logits
"""


@pytest.mark.slow
def test_a_user_compute_metrics_and_an_objective_it_does_not_return(in_tmp, pg_url, run_hpo):
    """On PostgreSQL: the same code path as SQLite, the other storage a study may name."""
    (in_tmp / "user_metrics.py").write_text(USER_METRICS)
    training = {
        "output_dir": str(in_tmp / "runs"),
        "max_steps": 4,
        "per_device_train_batch_size": 8,
        "eval_strategy": "steps",
        "eval_steps": 4,
    }
    common = {
        "metrics": None,
        "compute_metrics": "user_metrics:compute",
        "preprocess_logits_for_metrics": "user_metrics:reduce",
        "budget": {"n_trials": 1, "max_failed_trials": 0},
        "training": training,
        "storage": pg_url,
    }
    study_file = classification_study(
        in_tmp, **common, objective={"metric": "eval_balanced", "direction": "maximize"}
    )
    study = yaml.safe_load(study_file.read_text())
    result = run_hpo("run", "study.yaml", cwd=in_tmp)
    assert result.returncode == 0, result.stderr
    (trial,) = optuna.load_study(study_name="sentiment", storage=load(study_file).storage).trials
    assert 0.0 <= trial.value <= 1.0
    assert trial.user_attrs[TRAIN_METRICS_ATTR]["eval_balanced"] == trial.value

    # The same function, an objective it never returns: the first evaluation says so.
    study.update(name="typo", objective={"metric": "eval_balance", "direction": "maximize"})
    study["training"]["output_dir"] = str(in_tmp / "runs-typo")
    study_file.write_text(yaml.safe_dump(study, sort_keys=False))
    result = run_hpo("run", "study.yaml", cwd=in_tmp)
    assert result.returncode == 1
    (trial,) = optuna.load_study(study_name="typo", storage=load(study_file).storage).trials
    assert trial.state == TrialState.FAIL
    expected = (
        "objective.metric 'eval_balance' is not among the metrics of the first evaluation "
        "(eval_loss, eval_balanced); return it from compute_metrics 'user_metrics:compute'"
    )
    assert expected in trial.user_attrs[FAIL_REASON_ATTR]
    assert f"trial 0 failed: HpoError: {expected}" in result.stderr


@pytest.mark.slow
def test_the_classification_example_runs(tmp_path, run_hpo):
    """studies/classification.yaml, as a user runs it from a checkout (one trial)."""
    shutil.copytree(REPO / "studies", tmp_path / "studies")
    result = run_hpo("run", "studies/classification.yaml", "--n-trials", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spec_storage = f"sqlite:///{tmp_path}/runs/classification.db"
    (trial,) = optuna.load_study(study_name="classification", storage=spec_storage).trials
    assert trial.state == TrialState.COMPLETE
    metrics = trial.user_attrs[TRAIN_METRICS_ATTR]
    assert {"eval_accuracy", "eval_f1", "eval_matthews_correlation"} <= set(metrics)
    assert trial.value == metrics["eval_accuracy"]
