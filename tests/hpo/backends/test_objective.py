"""hpo.backends.objective: one trial from the study's spec, with a real tiny GPT-2 and a real study.

The tiny study these tests run (`tiny_spec`, `write_study_file`) lives in helpers.study_files.
"""

from __future__ import annotations

import dataclasses

import optuna
import pytest
from helpers.study_files import layers_in, tiny_spec, write_study_file

from hpo.backends.objective import (
    json_safe_metrics,
    objective_values,
    prepare,
    train_trial,
    training_arguments,
)
from hpo.errors import HpoError
from hpo.search.space import suggest
from hpo.spec import (
    ObjectiveSpec,
)

# ---------------------------------------------------------------------------------------------
# TrainingArguments for a trial


def test_training_arguments_save_at_every_evaluation_and_track_the_objective(tmp_path):
    spec = tiny_spec(
        tmp_path,
        objective=ObjectiveSpec(("eval_accuracy",), ("maximize",)),
        training={"eval_steps": 5, "save_steps": 7},
    )
    args = training_arguments(spec, tmp_path / "trial-0000")
    assert args.output_dir == str(tmp_path / "trial-0000")
    # A checkpoint at every evaluation: a retry loses at most one evaluation's steps.
    assert (args.save_strategy, args.save_steps) == ("steps", 5)
    assert args.metric_for_best_model == "eval_accuracy"
    assert args.greater_is_better is True
    assert args.disable_tqdm is True
    assert args.seed == 0


def test_training_arguments_follow_an_epoch_evaluation(tmp_path):
    spec = tiny_spec(tmp_path, training={"eval_strategy": "epoch", "max_steps": -1})
    args = training_arguments(spec, tmp_path / "t")
    assert args.save_strategy == "epoch"
    assert args.greater_is_better is False


# ---------------------------------------------------------------------------------------------
# objective values


def test_objective_values_single_and_multi(tmp_path):
    metrics = {"eval_loss": 2.5, "train_loss": 3.0, "train_runtime": 1.0}
    spec = tiny_spec(tmp_path)
    assert objective_values(spec, metrics) == 2.5
    multi = dataclasses.replace(
        spec, objective=ObjectiveSpec(("loss", "train_loss"), ("minimize", "minimize"))
    )
    # "loss" is found as the trainer's "eval_loss".
    assert objective_values(multi, metrics) == [2.5, 3.0]


def test_a_missing_objective_metric_names_the_metrics_that_exist(tmp_path):
    spec = dataclasses.replace(
        tiny_spec(tmp_path), objective=ObjectiveSpec(("eval_bleu",), ("maximize",))
    )
    with pytest.raises(HpoError) as error:
        objective_values(spec, {"eval_loss": 1.0, "train_loss": 2.0})
    assert "eval_bleu" in str(error.value)
    assert "eval_loss" in str(error.value) and "train_loss" in str(error.value)


def test_a_nan_objective_is_an_error(tmp_path):
    with pytest.raises(HpoError, match="nan"):
        objective_values(tiny_spec(tmp_path), {"eval_loss": float("nan")})


def test_json_safe_metrics_unwraps_scalars_and_keeps_non_finite_as_text():
    import numpy as np

    safe = json_safe_metrics({"a": np.float32(1.5), "b": float("inf"), "c": 3})
    assert safe == {"a": 1.5, "b": "inf", "c": 3}


# ---------------------------------------------------------------------------------------------
# A real trial


def test_prepare_once_then_train_real_trials_that_report_every_evaluation(tmp_path, capsys):
    spec = tiny_spec(tmp_path)
    ctx = prepare(spec)
    assert len(ctx.train_dataset) > 50 and ctx.eval_dataset is not None
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/o.db", study_name="o")
    outputs = []
    for number in range(2):
        trial = study.ask()
        params = suggest(trial, spec.space)
        output = train_trial(ctx, trial, output_dir=tmp_path / f"trial-{number}")
        study.tell(trial, objective_values(spec, output.metrics))
        outputs.append((params, output))
    trials = study.get_trials()
    for (params, output), stored in zip(outputs, trials, strict=True):
        assert output.global_step == 8
        assert stored.params == params
        # Reported by the trainer at every evaluation, as steps.
        assert sorted(stored.intermediate_values) == [4, 8]
        assert stored.value == pytest.approx(output.metrics["eval_loss"])
        assert stored.intermediate_values[8] == pytest.approx(output.metrics["eval_loss"])
    # No printed log rows from trials (disable_tqdm=True gives the trainer a PrinterCallback,
    # which the trial removes): the storage and the live view report them.
    assert "{'loss'" not in capsys.readouterr().out
    # Each trial's model follows its own model.n_layer (model_init reads the trial).
    for number, (params, _) in enumerate(outputs):
        assert layers_in(tmp_path / f"trial-{number}" / "checkpoint-8") == params["model.n_layer"]
    # A trial's checkpoint (what `hpo best` prints) loads the way a Transformers user loads one.
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "trial-1" / "checkpoint-8"))
    assert loaded.config.n_layer == outputs[1][0]["model.n_layer"]


def test_the_study_file_twin_of_tiny_spec_loads(tmp_path):
    from hpo.study import load

    spec = load(write_study_file(tmp_path))
    expected = tiny_spec(tmp_path)
    assert (spec.name, spec.storage, spec.training) == (
        expected.name,
        expected.storage,
        expected.training,
    )
    assert spec.space == expected.space


def test_search_evaluations_use_a_subset_and_a_completed_trial_is_valued_on_the_whole_set(
    tmp_path,
):
    # Evaluations that only feed the pruner cost a fixed subset of the eval rows; the
    # value of a trial that completes comes from the whole eval set.
    from helpers.study_files import write_corpus

    from hpo.spec import DataSpec
    from hpo.study.defaults import SEARCH_EVAL_SAMPLES
    from trainer import Trainer, TrainerCallback

    corpus = write_corpus(tmp_path / "big.txt", n_words=30_000)
    spec = tiny_spec(tmp_path, data=DataSpec(files=(str(corpus),), block_size=32))
    ctx = prepare(spec)
    n_eval = len(ctx.final_eval_dataset)
    assert n_eval > SEARCH_EVAL_SAMPLES
    assert len(ctx.eval_dataset) == SEARCH_EVAL_SAMPLES
    # The same rows for every trial and every worker.
    assert list(ctx.eval_dataset.indices) == list(prepare(spec).eval_dataset.indices)

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/o.db", study_name="o")
    trial = study.ask()
    suggest(trial, spec.space)
    trained = {}

    class KeepModel(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            trained["model"] = model

    output = train_trial(ctx, trial, output_dir=tmp_path / "trial-0", callbacks=[KeepModel()])
    stored = study.get_trials()[0]
    assert sorted(stored.intermediate_values) == [4, 8]

    model = trained["model"]
    args = training_arguments(spec, tmp_path / "check")

    def loss_on(dataset):
        return Trainer(model=model, args=args, eval_dataset=dataset).evaluate()["eval_loss"]

    assert output.metrics["eval_loss"] == pytest.approx(loss_on(ctx.final_eval_dataset), rel=1e-5)
    assert stored.intermediate_values[8] == pytest.approx(loss_on(ctx.eval_dataset), rel=1e-5)
    assert output.metrics["eval_loss"] != pytest.approx(stored.intermediate_values[8], rel=1e-6)


def test_a_study_that_sets_max_eval_samples_evaluates_that_subset_throughout(tmp_path):
    ctx = prepare(tiny_spec(tmp_path))  # data.max_eval_samples: 32
    assert len(ctx.eval_dataset) == 32 and ctx.final_eval_dataset is None


# ---------------------------------------------------------------------------------------------
# memory between trials


def test_a_finished_trials_model_is_freed_by_reference_counting_alone(tmp_path):
    # The worker collects garbage after a trial only when `trial_memory_alive()` says a model
    # (or its weights) outlived the trial; here nothing should, with the collector off.
    import gc

    spec = tiny_spec(tmp_path)
    ctx = prepare(spec)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/o.db", study_name="o")
    trial = study.ask()
    suggest(trial, spec.space)
    train_trial(ctx, trial, output_dir=tmp_path / "trial-0")
    gc.collect()  # whatever the first trial of a process leaves in cycles (lazy imports)
    assert not ctx.trial_memory_alive()
    gc.disable()
    try:
        trial = study.ask()
        suggest(trial, spec.space)
        output = train_trial(ctx, trial, output_dir=tmp_path / "trial-1")
        assert output.global_step == 8
        # The model and its first parameter were tracked, and both are gone already.
        assert len(ctx.built) == 2 and all(ref() is None for ref in ctx.built)
        assert not ctx.trial_memory_alive()
    finally:
        gc.enable()


def test_a_model_held_by_a_reference_cycle_is_reported_alive_until_collected(tmp_path):
    import gc

    ctx = prepare(tiny_spec(tmp_path))
    gc.disable()
    try:
        model = ctx.model_init()
        weights_only = [next(iter(ctx.model_init().parameters()))]  # module gone, weights kept
        assert ctx.trial_memory_alive()
        cycle: list = [model]
        cycle.append(cycle)
        del model, cycle
        assert ctx.trial_memory_alive()  # the cycle keeps the model
        gc.collect()
        assert ctx.trial_memory_alive()  # the parameter is still referenced here
        weights_only.clear()
        assert not ctx.trial_memory_alive()
    finally:
        gc.enable()


def test_the_tracking_model_init_keeps_the_signature_the_trainer_reads(tmp_path):
    import inspect

    from hpo.backends.objective import TrialContext

    def with_trial(trial):
        return None

    ctx = TrialContext(
        spec=tiny_spec(tmp_path), train_dataset=[], eval_dataset=None, model_init=with_trial
    )
    assert list(inspect.signature(ctx.model_init).parameters) == ["trial"]
    assert ctx.model_init is not with_trial and ctx.model_init.__wrapped__ is with_trial
