"""Ray Tune: tune.report with the trainer's checkpoint at every evaluation, and a retried trial
resumes from the checkpoint Tune hands back. Runs on the real local Ray of `ray_local`."""

import json
import os

import pytest
from helpers import tiny_models
from helpers.tiny_models import Regression, RegressionData

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_models_by_value():
    """Ray's workers cannot import `helpers` (pytest's pythonpath is not theirs, and Tune passes
    no PYTHONPATH to a trial): the trainable takes the tiny models with it, pickled by value."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(tiny_models)
    yield
    cloudpickle.unregister_pickle_by_value(tiny_models)


def test_ray_reports_checkpoints_and_resumes_a_retried_trial(
    ray_local, tiny_models_by_value, tmp_path
):
    from ray import tune

    marker_dir = str(tmp_path / "markers")
    os.makedirs(marker_dir)

    def trainable(config):
        from trainer import Trainer, TrainerCallback, TrainingArguments

        attempt = len(os.listdir(marker_dir))
        steps = []

        class FailOnceAfterFirstReport(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                steps.append(state.global_step)
                with open(os.path.join(marker_dir, f"attempt-{attempt}.json"), "w") as handle:
                    json.dump(steps, handle)
                if attempt == 0 and state.global_step == 3:
                    raise RuntimeError("simulated worker crash after the step-2 report")

        args = TrainingArguments(
            output_dir=os.path.join(str(tmp_path), "out", tune.get_context().get_trial_id()),
            max_steps=4,
            per_device_train_batch_size=4,
            eval_strategy="steps",
            eval_steps=2,
            save_strategy="no",
            disable_tqdm=True,
            lr_scheduler_type="constant",
        )
        trainer = Trainer(
            model_init=lambda: Regression(),
            args=args,
            train_dataset=RegressionData(),
            eval_dataset=RegressionData(seed=1),
            callbacks=[FailOnceAfterFirstReport()],
        )
        trainer.train(trial=config)

    tuner = tune.Tuner(
        trainable,
        param_space={"learning_rate": 0.05},
        tune_config=tune.TuneConfig(metric="eval_loss", mode="min", num_samples=1),
        run_config=tune.RunConfig(
            name="trainer_ray",
            storage_path=str(tmp_path / "ray"),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    result = tuner.fit().get_best_result()
    assert result.error is None
    assert result.metrics["step"] == 4 and "eval_loss" in result.metrics
    attempts = sorted(os.listdir(marker_dir))
    assert attempts == ["attempt-0.json", "attempt-1.json"]
    with open(os.path.join(marker_dir, "attempt-1.json")) as handle:
        assert json.load(handle) == [3, 4]  # the retry resumed from the step-2 checkpoint
    with result.checkpoint.as_directory() as directory:
        with open(os.path.join(directory, "trainer_state.json")) as handle:
            state = json.load(handle)
        assert state["global_step"] == 4
        assert os.path.exists(os.path.join(directory, "model.safetensors"))
