"""Trials: params onto a copy of the args before seeding, model params to model_init, optuna
reporting and pruning with a real SQLite study, release of every trial's model."""

import gc
import os
import subprocess
import sys
import weakref

import optuna
import pytest
import torch
from helpers.tiny_models import Regression, RegressionData

from trainer import Trainer, TrainingArguments
from trainer.trainer import NonFiniteLossError

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A subprocess imports `helpers` as pytest does (pythonpath = ["tests"]), this checkout first.
PATHS = [os.path.dirname(TESTS), TESTS, os.environ.get("PYTHONPATH", "")]
TESTS_ON_PYTHONPATH = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in PATHS if p)}


def _args(tmp_path, **kwargs):
    base = dict(
        output_dir=str(tmp_path),
        max_steps=8,
        per_device_train_batch_size=4,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="no",
        disable_tqdm=True,
        learning_rate=0.05,
        lr_scheduler_type="constant",
    )
    base.update(kwargs)
    return TrainingArguments(**base)


def test_importing_and_training_loads_neither_optuna_nor_ray():
    code = (
        "import sys\n"
        "import trainer\n"
        "from trainer import Trainer, TrainingArguments, TrainOutput, TrainerState, TrainerCallback\n"
        "from trainer import TrainerControl, EarlyStoppingCallback\n"
        "import trainer.trial, trainer.trainer\n"
        "from helpers.tiny_models import Regression, RegressionData\n"
        "import tempfile\n"
        "args = TrainingArguments(output_dir=tempfile.mkdtemp(), max_steps=2, disable_tqdm=True)\n"
        "Trainer(model=Regression(), args=args, train_dataset=RegressionData()).train(trial={'learning_rate': 0.1})\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'ray'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=TESTS_ON_PYTHONPATH)


def test_trial_params_go_onto_a_copy_before_seeding_and_model_init(tmp_path):
    built = []

    def model_init(trial):
        model = Regression(features=trial["model.features"])
        built.append(model.linear.weight.detach().clone())
        return model

    args = _args(tmp_path, eval_strategy="no", max_steps=1, seed=1)
    trainer = Trainer(model_init=model_init, args=args, train_dataset=RegressionData(features=3))
    trainer.train(trial={"seed": 123, "learning_rate": 0.5, "model.features": 3})
    torch.manual_seed(123)
    expected = Regression(features=3).linear.weight
    assert torch.equal(built[0], expected)  # built under the trial's seed, not args.seed=1
    assert trainer.args.learning_rate == 0.5 and trainer.args.seed == 123
    assert args.learning_rate == 0.05 and args.seed == 1  # the shared args are untouched
    assert trainer.state.trial_params == {"seed": 123, "learning_rate": 0.5, "model.features": 3}
    # the next trial gets its own seed, not the previous trial's
    trainer.train(trial={"seed": 5, "model.features": 3})
    torch.manual_seed(5)
    assert torch.equal(built[1], Regression(features=3).linear.weight)


def test_a_param_nothing_reads_is_an_error(tmp_path):
    args = _args(tmp_path, eval_strategy="no", max_steps=1)
    reads_width = Trainer(
        model_init=lambda trial: Regression(features=trial["model.features"]),
        args=args,
        train_dataset=RegressionData(),
    )
    with pytest.raises(
        ValueError, match=r"\['model.dropout'\] are neither TrainingArguments fields nor read"
    ):
        reads_width.train(trial={"model.features": 4, "model.dropout": 0.1})
    no_args = Trainer(model_init=lambda: Regression(), args=args, train_dataset=RegressionData())
    with pytest.raises(ValueError, match=r"model_init takes no arguments"):
        no_args.train(trial={"model.features": 4})
    with_model = Trainer(model=Regression(), args=args, train_dataset=RegressionData())
    with pytest.raises(ValueError, match=r"no model_init"):
        with_model.train(trial={"learning_rte": 0.1})
    with pytest.raises(ValueError, match=r"learning_rate=-1"):
        with_model.train(trial={"learning_rate": -1})


def _study(tmp_path, pruner):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    return optuna.create_study(study_name="t", storage=storage, pruner=pruner), storage


def test_optuna_reports_every_evaluation_and_prunes_cleanly(tmp_path):
    study, storage = _study(
        tmp_path, optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    )
    study.enqueue_trial({"learning_rate": 0.05})
    study.enqueue_trial({"learning_rate": 0.0})  # never improves: worse than the median at step 2
    models = []
    outcomes = []

    def model_init(trial):
        model = Regression()
        models.append(weakref.ref(model))
        return model

    def objective(trial):
        trial.suggest_float("learning_rate", 0.0, 0.1)
        trainer = Trainer(
            model_init=model_init,
            args=_args(tmp_path / str(trial.number)),
            train_dataset=RegressionData(),
            eval_dataset=RegressionData(seed=1),
        )
        try:
            output = trainer.train(trial=trial)
        except optuna.TrialPruned:
            outcomes.append(("pruned", trainer.state.global_step, trainer.model, trainer.optimizer))
            raise
        return output.metrics["eval_loss"]

    study.optimize(objective, n_trials=2)
    reloaded = optuna.load_study(study_name="t", storage=storage)
    done, pruned = reloaded.trials
    assert done.state == optuna.trial.TrialState.COMPLETE
    assert sorted(done.intermediate_values) == [2, 4, 6, 8]
    assert done.value == pytest.approx(done.intermediate_values[8])
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert sorted(pruned.intermediate_values) == [2]  # the loop stopped at the pruning evaluation
    assert outcomes == [("pruned", 2, None, None)]  # model and optimizer released before raising
    gc.collect()
    assert models[1]() is None


def test_optuna_threshold_pruner_and_metric_for_best_model(tmp_path):
    study, _ = _study(tmp_path, optuna.pruners.ThresholdPruner(lower=0.99))

    def compute_metrics(_prediction):
        return {"accuracy": 0.5}

    def objective(trial):
        args = _args(tmp_path, metric_for_best_model="accuracy")
        trainer = Trainer(
            model_init=lambda: Regression(),
            args=args,
            train_dataset=RegressionData(),
            eval_dataset=RegressionData(),
            compute_metrics=compute_metrics,
        )
        return trainer.train(trial=trial).metrics["eval_accuracy"]

    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {2: 0.5}


def test_every_trial_releases_its_model_on_every_exit_path(tmp_path):
    refs = []

    class NanModel(Regression):
        def forward(self, x, y):
            out = super().forward(x, y)
            return {"loss": out["loss"] * float("nan")}

    def model_init(trial):
        model = NanModel() if trial["model.nan"] else Regression()
        refs.append(weakref.ref(model))
        return model

    trainer = Trainer(
        model_init=model_init,
        args=_args(tmp_path, eval_strategy="no", max_steps=3),
        train_dataset=RegressionData(),
    )
    trainer.train(trial={"model.nan": False})
    first_optimizer = weakref.ref(trainer.optimizer) if trainer.optimizer is not None else None
    with pytest.raises(NonFiniteLossError) as failure:
        trainer.train(trial={"model.nan": True})
    gc.collect()
    # the exception (still held here, as optuna holds it) no longer keeps the model alive
    assert failure.value is not None
    assert refs[0]() is None and refs[1]() is None
    assert first_optimizer is None or first_optimizer() is None
    trainer.train(trial={"model.nan": False})
    assert refs[2]() is trainer.model


def test_a_trial_is_not_pruned_at_its_last_step(tmp_path):
    # A pruner that prunes at every evaluation: the trial stops at its first evaluation (step 2),
    # but one whose only evaluation is its last step (a rung on max_steps) keeps its finished
    # model and completes with that value. transformers.Trainer prunes there and discards it.
    study, _ = _study(tmp_path, optuna.pruners.ThresholdPruner(upper=-1.0))

    def objective(trial):
        trial.suggest_float("learning_rate", 0.01, 0.1)
        max_steps = 2 if trial.number == 0 else 8
        args = _args(tmp_path / str(trial.number), max_steps=max_steps, eval_steps=2)
        trainer = Trainer(
            model_init=lambda: Regression(),
            args=args,
            train_dataset=RegressionData(),
            eval_dataset=RegressionData(seed=1),
        )
        return trainer.train(trial=trial).metrics["eval_loss"]

    study.optimize(objective, n_trials=2)
    last_step_only, pruned = study.trials
    assert last_step_only.state == optuna.trial.TrialState.COMPLETE
    assert last_step_only.value == pytest.approx(last_step_only.intermediate_values[2])
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert sorted(pruned.intermediate_values) == [2]
