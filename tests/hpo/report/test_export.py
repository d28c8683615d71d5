"""`hpo export` / `hpo train`: the best trial as a config that retrains, and that a Trainer loads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import optuna
import pytest
import yaml
from helpers.study_files import layers_in, tiny_spec
from optuna.trial import TrialState, create_trial

from hpo.errors import HpoError
from hpo.report.export import export_best, read_config, train_from_export
from hpo.search.space import to_optuna_distributions
from hpo.spec import MetricsSpec, ObjectiveSpec
from trainer import TrainingArguments


def study_with_trials(spec) -> optuna.Study:
    study = optuna.create_study(storage=spec.storage, study_name=spec.name)
    distributions = to_optuna_distributions(spec.space)
    for number, (lr, layers, value) in enumerate([(1e-3, 2, 2.0), (5e-3, 1, 1.5), (1e-4, 2, 3.0)]):
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                value=value,
                params={"learning_rate": lr, "model.n_layer": layers},
                distributions=distributions,
                user_attrs={"best_checkpoint": f"/ckpt/{number}"},
            )
        )
    return study


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_export_writes_the_best_params_into_a_training_config(tmp_path, suffix):
    spec = tiny_spec(tmp_path)
    study_with_trials(spec)
    path = export_best(spec, tmp_path / f"best{suffix}")
    text = path.read_text()
    config = yaml.safe_load(text) if suffix == ".yaml" else json.loads(text)
    assert config["study"]["trial"] == 1
    assert config["study"]["value"] == 1.5
    assert config["study"]["checkpoint"] == "/ckpt/1"
    assert config["training"]["learning_rate"] == 5e-3
    assert config["training"]["max_steps"] == spec.training["max_steps"]
    assert config["model"]["config"]["n_layer"] == 1  # model.* params go into the config
    assert config["data"]["files"] == list(spec.data.files)
    # A Trainer user loads it as is.
    args = TrainingArguments(**config["training"])
    assert args.learning_rate == 5e-3 and args.metric_for_best_model == "eval_loss"


def test_train_from_export_retrains_with_the_best_params(tmp_path):
    spec = tiny_spec(tmp_path)
    study_with_trials(spec)
    path = export_best(spec, tmp_path / "best.yaml")
    output = train_from_export(path)
    assert output.global_step == spec.training["max_steps"]
    assert "eval_loss" in output.metrics
    out_dir = Path(read_config(path)["training"]["output_dir"])
    checkpoint = out_dir / f"checkpoint-{spec.training['max_steps']}"
    assert layers_in(checkpoint) == 1  # the best trial's model.n_layer


def test_an_exported_study_tuned_for_a_metric_retrains_with_it(tmp_path):
    spec = dataclasses.replace(
        tiny_spec(tmp_path),
        objective=ObjectiveSpec(("eval_perplexity",), ("minimize",)),
        metrics=MetricsSpec(names=("accuracy", "perplexity")),
    )
    study_with_trials(spec)
    path = export_best(spec, tmp_path / "best.yaml")
    assert read_config(path)["metrics"]["names"] == ["accuracy", "perplexity"]
    output = train_from_export(path)  # metric_for_best_model is eval_perplexity
    assert {"eval_accuracy", "eval_perplexity"} <= set(output.metrics)


def test_export_of_a_study_without_a_complete_trial_says_so(tmp_path):
    spec = tiny_spec(tmp_path)
    optuna.create_study(storage=spec.storage, study_name=spec.name)
    with pytest.raises(HpoError, match="no complete trial"):
        export_best(spec, tmp_path / "best.yaml")


def test_a_file_that_is_not_an_export_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("name: x\n")
    with pytest.raises(HpoError, match="missing section"):
        train_from_export(path)
    with pytest.raises(HpoError, match="no such file"):
        train_from_export(tmp_path / "missing.yaml")


def test_hpo_export_then_hpo_train_from_the_command_line(tmp_path, capsys):
    from helpers.study_files import write_study_file

    from hpo.cli import main

    study_file = write_study_file(tmp_path)
    study_with_trials(tiny_spec(tmp_path))
    assert main(["export", str(study_file), "-o", str(tmp_path / "best.json")]) == 0
    config = json.loads((tmp_path / "best.json").read_text())
    assert config["study"]["trial"] == 1
    assert config["training"]["learning_rate"] == 5e-3
    assert "wrote" in capsys.readouterr().out
