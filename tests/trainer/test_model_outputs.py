"""Transformers' model-output conventions, the model release, metric-stepped schedulers and
label reading in prediction_step: each snippet runs through `transformers.Trainer` and ours,
and the outcomes are compared.

Every run here has one batch per optimizer step that holds the whole training set, and no
dropout, so the two trainers see the same data at every step (their shuffling orders differ)
and their losses agree to float rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

LIBRARIES = ("transformers", "trainer")
ROWS = 16


def classes(library: str) -> tuple[Any, Any]:
    """(Trainer, TrainingArguments) of `library`: the one import a script changes."""
    if library == "transformers":
        from transformers import Trainer, TrainingArguments
    else:
        from trainer import Trainer, TrainingArguments
    return Trainer, TrainingArguments


def arguments(library: str, output_dir: Any, **kwargs: Any) -> Any:
    base: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=ROWS,
        per_device_eval_batch_size=ROWS,
        learning_rate=0.05,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    base.update(kwargs)
    return classes(library)[1](**base)


class TupleRegression(torch.nn.Module):
    """A plain module that returns a tuple, as a Transformers model does with
    return_dict=False: (loss, logits) given labels, else (logits,)."""

    def __init__(self, features: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(features, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple:
        logits = self.linear(x).squeeze(-1)
        if labels is None:
            return (logits,)
        return (torch.nn.functional.mse_loss(logits, labels), logits)


class RegressionRows(torch.utils.data.Dataset):
    def __init__(self, rows: int = ROWS, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(rows, 4, generator=generator)
        self.y = self.x @ torch.arange(1.0, 5.0) + 0.5

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index], "labels": self.y[index]}


def losses(trainer: Any) -> list[float]:
    return [row["loss"] for row in trainer.state.log_history if "loss" in row]


def learning_rates(trainer: Any) -> list[float]:
    return [row["learning_rate"] for row in trainer.state.log_history if "learning_rate" in row]


def mse(prediction: Any) -> dict[str, float]:
    return {"mse": float(((prediction.predictions - prediction.label_ids) ** 2).mean())}


def run_both(snippet: Any, tmp_path: Any) -> dict[str, Any]:
    return {library: snippet(library, tmp_path / library) for library in LIBRARIES}


# --- a model that returns a tuple ---
def tuple_model_snippet(library: str, output_dir: Any) -> dict[str, Any]:
    Trainer, _ = classes(library)
    trainer = Trainer(
        model=TupleRegression(),
        args=arguments(library, output_dir, max_steps=4),
        train_dataset=RegressionRows(),
        eval_dataset=RegressionRows(seed=1),
        compute_metrics=mse,
    )
    trainer.train()
    metrics = trainer.evaluate()
    with_labels = trainer.predict(RegressionRows(seed=2))
    without_labels = trainer.predict([{"x": row["x"]} for row in RegressionRows(seed=2)])
    return {
        "losses": losses(trainer),
        "eval_loss": metrics["eval_loss"],
        "eval_mse": metrics["eval_mse"],
        "predictions": with_labels.predictions,
        "label_ids": with_labels.label_ids,
        "unlabelled_predictions": without_labels.predictions,
        "unlabelled_label_ids": without_labels.label_ids,
    }


def test_a_model_returning_a_tuple_trains_and_evaluates_as_in_transformers(tmp_path):
    runs = run_both(tuple_model_snippet, tmp_path)
    ours, theirs = runs["trainer"], runs["transformers"]
    assert len(ours["losses"]) == 4
    assert ours["losses"] == pytest.approx(theirs["losses"], rel=1e-4)
    assert ours["losses"][-1] < ours["losses"][0]  # it trained on outputs[0]
    assert ours["eval_loss"] == pytest.approx(theirs["eval_loss"], rel=1e-4)
    # compute_metrics saw the logits (outputs[1:]) and the labels, as in Transformers
    assert ours["eval_mse"] == pytest.approx(ours["eval_loss"], rel=1e-4)
    assert ours["eval_mse"] == pytest.approx(theirs["eval_mse"], rel=1e-4)
    assert ours["predictions"].shape == theirs["predictions"].shape == (ROWS,)
    np.testing.assert_allclose(ours["predictions"], theirs["predictions"], rtol=1e-4)
    np.testing.assert_array_equal(ours["label_ids"], theirs["label_ids"])
    # without labels the whole tuple is the logits
    np.testing.assert_allclose(
        ours["unlabelled_predictions"], theirs["unlabelled_predictions"], rtol=1e-4
    )
    assert ours["unlabelled_label_ids"] is theirs["unlabelled_label_ids"] is None


# --- a PreTrainedModel without an embedding layer ---
def tabular_model() -> torch.nn.Module:
    from transformers import PretrainedConfig, PreTrainedModel

    class TabularConfig(PretrainedConfig):
        model_type = "tabular-test"

        def __init__(self, features: int = 4, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.features = features

    class TabularRegressor(PreTrainedModel):
        config_class = TabularConfig

        def __init__(self, config: TabularConfig) -> None:
            super().__init__(config)
            self.head = torch.nn.Linear(config.features, 1)
            self.post_init()

        def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
            logits = self.head(x).squeeze(-1)
            out = {"logits": logits}
            if labels is not None:
                out["loss"] = torch.nn.functional.mse_loss(logits, labels)
            return out

    torch.manual_seed(0)
    return TabularRegressor(TabularConfig())


def tabular_snippet(library: str, output_dir: Any) -> dict[str, Any]:
    Trainer, _ = classes(library)
    model = tabular_model()
    trainer = Trainer(
        model=model,
        args=arguments(library, output_dir, max_steps=3),
        train_dataset=RegressionRows(),
    )
    output = trainer.train()
    return {"losses": losses(trainer), "global_step": output.global_step}


def test_a_pretrained_model_without_embeddings_finishes_training_as_in_transformers(tmp_path):
    with pytest.raises(NotImplementedError):
        tabular_model().get_input_embeddings()
    runs = run_both(tabular_snippet, tmp_path)
    assert runs["trainer"]["global_step"] == runs["transformers"]["global_step"] == 3
    assert runs["trainer"]["losses"] == pytest.approx(runs["transformers"]["losses"], rel=1e-4)


def test_neftune_on_a_model_without_embeddings_is_refused_with_the_fix(tmp_path):
    from trainer import Trainer

    trainer = Trainer(
        model=tabular_model(),
        args=arguments("trainer", tmp_path, max_steps=1, neftune_noise_alpha=5.0),
        train_dataset=RegressionRows(),
    )
    with pytest.raises(ValueError, match="no get_input_embeddings.*leave neftune_noise_alpha"):
        trainer.train()


# --- ReduceLROnPlateau ---
def plateau_snippet(library: str, output_dir: Any, passed_in: bool) -> dict[str, Any]:
    Trainer, _ = classes(library)
    model = TupleRegression()
    # mode="max" on a falling eval_loss: every evaluation after the first is "no better", so
    # with patience 0 each one halves the rate; a scheduler stepped without the metric (or
    # every step) could not give this sequence.
    plateau = {"mode": "max", "patience": 0, "factor": 0.5}
    common = dict(max_steps=5, eval_strategy="steps", eval_steps=1, metric_for_best_model="loss")
    if passed_in:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **plateau)
        extra: dict[str, Any] = {"optimizers": (optimizer, scheduler)}
        args = arguments(library, output_dir, **common)
    else:
        extra = {}
        args = arguments(
            library,
            output_dir,
            lr_scheduler_type="reduce_lr_on_plateau",
            lr_scheduler_kwargs=plateau,
            optim="sgd",
            **common,
        )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=RegressionRows(),
        eval_dataset=RegressionRows(seed=1),
        **extra,
    )
    trainer.train()
    return {
        "rates": learning_rates(trainer),
        "final_rate": trainer.optimizer.param_groups[0]["lr"],
        "losses": losses(trainer),
    }


@pytest.mark.parametrize("passed_in", [True, False], ids=["optimizers=", "lr_scheduler_type"])
def test_reduce_lr_on_plateau_steps_on_the_metric_as_in_transformers(tmp_path, passed_in):
    runs = {
        library: plateau_snippet(library, tmp_path / library, passed_in) for library in LIBRARIES
    }
    ours, theirs = runs["trainer"], runs["transformers"]
    assert ours["rates"] == pytest.approx([0.05, 0.05, 0.025, 0.0125, 0.00625])
    assert ours["rates"] == pytest.approx(theirs["rates"])
    assert ours["final_rate"] == pytest.approx(theirs["final_rate"]) == 0.05 / 16
    assert ours["losses"] == pytest.approx(theirs["losses"], rel=1e-4)


# --- compute_loss that pops the labels ---
def popping_snippet(library: str, output_dir: Any) -> dict[str, Any]:
    Trainer, _ = classes(library)

    class PoppingTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")  # Transformers' documented pattern
            (logits,) = model(**inputs)
            loss = torch.nn.functional.l1_loss(logits, labels)
            # outputs as a model's ModelOutput: a dict, read by key
            return (loss, {"logits": logits}) if return_outputs else loss

    trainer = PoppingTrainer(
        model=TupleRegression(),
        args=arguments(library, output_dir, max_steps=3),
        train_dataset=RegressionRows(),
        eval_dataset=RegressionRows(seed=1),
        compute_metrics=mse,
    )
    trainer.train()
    metrics = trainer.evaluate()
    predicted = trainer.predict(RegressionRows(seed=2))
    return {
        "losses": losses(trainer),
        "eval_loss": metrics["eval_loss"],
        "eval_mse": metrics["eval_mse"],
        "predictions": predicted.predictions,
        "label_ids": predicted.label_ids,
        "test_loss": predicted.metrics["test_loss"],
    }


def test_a_compute_loss_that_pops_the_labels_evaluates_and_predicts_as_in_transformers(
    tmp_path,
):
    runs = run_both(popping_snippet, tmp_path)
    ours, theirs = runs["trainer"], runs["transformers"]
    assert ours["losses"] == pytest.approx(theirs["losses"], rel=1e-4)
    for key in ("eval_loss", "eval_mse", "test_loss"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-4), key
    assert ours["eval_loss"] != pytest.approx(ours["eval_mse"])  # the override's L1 loss
    np.testing.assert_allclose(ours["predictions"], theirs["predictions"], rtol=1e-4)
    np.testing.assert_array_equal(ours["label_ids"], theirs["label_ids"])
    np.testing.assert_array_equal(ours["label_ids"], RegressionRows(seed=2).y.numpy())


# --- batch_eval_metrics ---
class BatchedMeanError:
    """compute_metrics for batch_eval_metrics: called per batch, the summary on the last."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.errors: list[float] = []

    def __call__(self, prediction: Any, compute_result: bool) -> dict[str, float] | None:
        self.calls.append(compute_result)
        # per batch, the tensors as the model gave them (Transformers does not numpify them)
        assert isinstance(prediction.predictions, torch.Tensor)
        self.errors.extend((prediction.predictions - prediction.label_ids).abs().tolist())
        if compute_result:
            result = {"mean_error": sum(self.errors) / len(self.errors)}
            self.errors = []
            return result
        return None


def batched_metrics_snippet(library: str, output_dir: Any) -> dict[str, Any]:
    Trainer, _ = classes(library)
    metric = BatchedMeanError()
    trainer = Trainer(
        model=TupleRegression(),
        args=arguments(library, output_dir, per_device_eval_batch_size=5, batch_eval_metrics=True),
        train_dataset=RegressionRows(),
        eval_dataset=RegressionRows(seed=1),  # 16 rows: batches of 5, 5, 5 and 1
        compute_metrics=metric,
    )
    metrics = trainer.evaluate()
    calls_in_evaluate = list(metric.calls)
    predicted = trainer.predict(RegressionRows(seed=2))
    return {
        "metrics": metrics,
        "calls_in_evaluate": calls_in_evaluate,
        "predictions": predicted.predictions,
        "test_mean_error": predicted.metrics["test_mean_error"],
    }


def test_batch_eval_metrics_calls_compute_metrics_per_batch_as_in_transformers(tmp_path):
    runs = run_both(batched_metrics_snippet, tmp_path)
    ours, theirs = runs["trainer"], runs["transformers"]
    assert ours["calls_in_evaluate"] == theirs["calls_in_evaluate"] == [False] * 3 + [True]
    for key in ("eval_loss", "eval_mean_error"):
        assert ours["metrics"][key] == pytest.approx(theirs["metrics"][key], rel=1e-5), key
    assert ours["test_mean_error"] == pytest.approx(theirs["test_mean_error"], rel=1e-5)
    assert ours["predictions"].shape == theirs["predictions"].shape == (ROWS,)
    np.testing.assert_allclose(ours["predictions"], theirs["predictions"], rtol=1e-5)


@pytest.mark.parametrize("library", LIBRARIES)
def test_batch_eval_metrics_needs_compute_result(tmp_path, library):
    Trainer, _ = classes(library)
    with pytest.raises(ValueError, match="compute_result"):
        Trainer(
            model=TupleRegression(),
            args=arguments(library, tmp_path, batch_eval_metrics=True),
            eval_dataset=RegressionRows(),
            compute_metrics=mse,  # no compute_result argument
        ).evaluate()


# --- fp16_full_eval / bf16_full_eval ---
def full_eval_snippet(library: str, output_dir: Any) -> dict[str, Any]:
    from helpers.tiny_models import TokenDataset, gpt2

    Trainer, _ = classes(library)
    # token ids in: the cast model takes them as they are (float inputs would need a cast too,
    # which neither trainer does)
    trainer = Trainer(
        model=gpt2(dropout=0.0, seed=1),
        args=arguments(
            library,
            output_dir,
            max_steps=2,
            eval_strategy="steps",
            eval_steps=1,
            bf16_full_eval=True,
            use_cpu=True,  # else Transformers refuses bf16 without a GPU
        ),
        train_dataset=TokenDataset(rows=16),
        eval_dataset=TokenDataset(rows=16, seed=1),
    )
    trainer.train()  # its evaluations run in the training precision
    dtype_after_train = trainer.model.lm_head.weight.dtype
    metrics = trainer.evaluate()  # outside train(): the model is cast first
    return {
        "after_train": dtype_after_train,
        "after_evaluate": trainer.model.lm_head.weight.dtype,
        "eval_loss": metrics["eval_loss"],
    }


def test_bf16_full_eval_casts_the_model_outside_train_as_in_transformers(tmp_path):
    runs = run_both(full_eval_snippet, tmp_path)
    ours, theirs = runs["trainer"], runs["transformers"]
    assert ours["after_train"] == theirs["after_train"] == torch.float32
    assert ours["after_evaluate"] == theirs["after_evaluate"] == torch.bfloat16
    # the documented normalisation: ours counts 15 of 16 label tokens per row (bf16 rounding)
    assert ours["eval_loss"] * 15 / 16 == pytest.approx(theirs["eval_loss"], rel=2e-2)


@pytest.mark.parametrize("library", LIBRARIES)
def test_bf16_and_fp16_full_eval_together_are_refused(tmp_path, library):
    with pytest.raises(ValueError, match="full.eval"):
        arguments(library, tmp_path, bf16_full_eval=True, fp16_full_eval=True, use_cpu=True)
