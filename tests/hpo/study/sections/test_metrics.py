"""hpo.study.sections.metrics: the metrics keys, and the objective checked against what an
evaluation of the task with those metrics reports."""

from __future__ import annotations

from pathlib import Path

from helpers.study_files import DELETE, problems_of, the_problem, write_study

from hpo.spec import MetricsSpec
from hpo.study import load


def classification(tmp_path: Path, **changes) -> dict:
    """base_study() turned into a sequence-classification study of a small CSV."""
    csv = tmp_path / "sentences.csv"
    csv.write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(20)))
    study = {
        "model": {"task": "sequence-classification"},
        "data": {"corpus": DELETE, "files": [str(csv)]},
    }
    study.update(changes)
    return study


def test_metrics_make_the_objective_possible(tmp_path):
    changes = classification(
        tmp_path,
        objective={"metric": "eval_accuracy", "direction": "maximize"},
        metrics=["accuracy", "f1"],
    )
    spec = load(write_study(tmp_path, changes))
    assert spec.metrics == MetricsSpec(names=("accuracy", "f1"))
    assert spec.objective.metrics == ("eval_accuracy",)


def test_an_objective_nothing_reports_lists_what_would_be_reported(tmp_path):
    # The study: accuracy as the objective, no metrics named.
    changes = classification(
        tmp_path, objective={"metric": "eval_accuracy", "direction": "maximize"}
    )
    problem = the_problem(tmp_path, changes, "objective.metric")
    assert (
        "'eval_accuracy' is not reported by an evaluation of task sequence-classification"
        in problem
    )
    assert "it reports eval_loss, eval_runtime" in problem
    assert "add accuracy to metrics (metrics: [accuracy])" in problem


def test_the_objective_may_leave_out_the_eval_prefix_as_in_transformers(tmp_path):
    changes = classification(
        tmp_path, objective={"metric": "f1", "direction": "maximize"}, metrics=["f1"]
    )
    assert load(write_study(tmp_path, changes)).metrics.names == ("f1",)


def test_a_metric_the_task_cannot_compute(tmp_path):
    problems = problems_of(tmp_path, {"metrics": ["accuracy", "f1", "perplexity", "acuracy"]})
    (f1,) = [p for p in problems if p.startswith("metrics[1]:")]
    assert "found 'f1', expected one of accuracy, perplexity for task causal-lm" in f1
    assert "(f1 is a metric of task sequence-classification)" in f1
    (typo,) = [p for p in problems if p.startswith("metrics[3]:")]
    assert "did you mean 'accuracy'?" in typo


def test_metrics_are_a_list_of_names(tmp_path):
    problem = the_problem(tmp_path, {"metrics": {"accuracy": True}}, "metrics")
    assert "a list of metric names, e.g. [accuracy, f1]" in problem


def test_metric_for_best_model_is_checked_too(tmp_path):
    changes = {"metrics": ["accuracy"], "training": {"metric_for_best_model": "perplexity"}}
    problem = the_problem(tmp_path, changes, "training.metric_for_best_model")
    assert "'perplexity' is not reported" in problem
    assert "add perplexity to metrics (metrics: [accuracy, perplexity])" in problem


def test_a_second_objective_may_be_a_training_figure(tmp_path):
    changes = {
        "objective": {"metric": ["eval_loss", "train_runtime"], "direction": ["minimize"] * 2},
        "pruner": {"name": "none"},
    }
    assert load(write_study(tmp_path, changes)).objective.is_multi
    changes["objective"]["metric"] = ["train_runtime", "eval_loss"]
    assert "'train_runtime' is not reported" in the_problem(
        tmp_path, changes, "objective.metric[0]"
    )


def test_a_user_compute_metrics_is_imported_and_its_signature_checked(tmp_path):
    (tmp_path / "metrics_mod_a.py").write_text(
        "def compute(prediction):\n    return {'top5': 1.0}\n"
        "def reduce(logits, labels):\n    return logits\n"
        "def two(a, b):\n    return {}\n"
    )
    changes = {
        "objective": {"metric": "eval_top5", "direction": "maximize"},
        "compute_metrics": "metrics_mod_a:compute",
        "preprocess_logits_for_metrics": "metrics_mod_a:reduce",
    }
    spec = load(write_study(tmp_path, changes))  # any objective: checked at the first evaluation
    assert spec.metrics.compute_metrics == "metrics_mod_a:compute"
    assert spec.metrics.preprocess_logits_for_metrics == "metrics_mod_a:reduce"
    assert not (tmp_path / "__pycache__").exists()

    problem = the_problem(tmp_path, {"compute_metrics": "metrics_mod_a:two"}, "compute_metrics")
    assert "'metrics_mod_a:two' takes (a, b)" in problem
    assert "expected Transformers' compute_metrics(eval_prediction)" in problem
    problem = the_problem(
        tmp_path,
        {
            "compute_metrics": "metrics_mod_a:compute",
            "preprocess_logits_for_metrics": "metrics_mod_a:compute",
        },
        "preprocess_logits_for_metrics",
    )
    assert "preprocess_logits_for_metrics(logits, labels)" in problem


def test_a_compute_metrics_that_does_not_import(tmp_path):
    problem = the_problem(tmp_path, {"compute_metrics": "no_such_module_xyz:f"}, "compute_metrics")
    assert "module 'no_such_module_xyz' could not be imported" in problem
    problem = the_problem(tmp_path, {"compute_metrics": "not a reference"}, "compute_metrics")
    assert "expected 'package.module:function'" in problem


def test_metrics_and_compute_metrics_exclude_each_other(tmp_path):
    (tmp_path / "metrics_mod_b.py").write_text(
        "def compute(prediction):\n    return {}\ndef reduce(logits, labels):\n    return logits\n"
    )
    changes = {"metrics": ["accuracy"], "compute_metrics": "metrics_mod_b:compute"}
    assert "given with compute_metrics" in the_problem(tmp_path, changes, "metrics")
    changes = {"preprocess_logits_for_metrics": "metrics_mod_b:reduce"}
    problem = the_problem(tmp_path, changes, "preprocess_logits_for_metrics")
    assert "given without compute_metrics" in problem
