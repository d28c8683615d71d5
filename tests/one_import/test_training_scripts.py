"""The README's promise for training scripts: real-world-style Transformers scripts in
`scripts/` (classification, causal LM, a compute_loss subclass, predict, every hook, the
Transformers 5 options) run through `transformers.Trainer` and through ours, where the only
difference is the marked import line (helpers.one_import), and the behaviour is compared:
metric keys, prediction shapes, losses within tolerance where the runs are comparable (one
batch per step, no dropout, same initial weights), files on disk.

Unlike the hyperparameter_search and push_to_hub scripts (fresh processes), these run in this
process, calling each script's main(): there are many of them, and the import of torch and
transformers would dominate.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.one_import import SCRIPTS, swapped_source

pytestmark = pytest.mark.slow  # each script trains twice


def run_script(name: str, library: str, output_dir: Path, **kwargs: Any) -> dict[str, Any]:
    """Runs `scripts/<name>.py`'s main(output_dir, **kwargs) with the import line of `library`
    ('transformers', or 'trainer' for ours)."""
    source = swapped_source(SCRIPTS / f"{name}.py", "ours" if library == "trainer" else library)
    namespace: dict[str, Any] = {"__name__": f"one_import_{name}_{library}"}
    sys.path.insert(0, str(SCRIPTS))
    try:
        exec(compile(source, str(SCRIPTS / f"{name}.py"), "exec"), namespace)
        return namespace["main"](str(output_dir / library), **kwargs)
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.fixture(autouse=True)
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def both(name: str, tmp_path: Path, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        run_script(name, "trainer", tmp_path, **kwargs),
        run_script(name, "transformers", tmp_path, **kwargs),
    )


def assert_close(
    ours: dict[int, float], theirs: dict[int, float], rel: float = 1e-3, ratio: float = 1.0
) -> None:
    """Same steps, and ours == theirs * ratio at each (within rel)."""
    assert sorted(ours) == sorted(theirs)
    for step in ours:
        assert ours[step] == pytest.approx(theirs[step] * ratio, rel=rel, abs=1e-5), f"step {step}"


# Transformers' Trainer normalises a GPT-2 loss by every label token, the first of each row
# included, which the causal shift leaves without a target: its class name
# (GPT2LMHeadModel) does not tell Transformers' Trainer that the loss shifts. With rows of 16
# tokens its losses (training and evaluation) are low by 15/16; ours divide by the 15 tokens
# really predicted. Every GPT-2 comparison below checks ours == theirs * 16/15.
CAUSAL_RATIO = 16 / 15


def test_classification_with_early_stopping_best_model_and_predict(tmp_path):
    ours, theirs = both("classification", tmp_path)
    # Same steps (early stopping stops both at the same evaluation), same losses and accuracies.
    assert ours["global_step"] == theirs["global_step"]
    assert_close(ours["losses"], theirs["losses"])
    assert [r["step"] for r in ours["eval_rows"]] == [r["step"] for r in theirs["eval_rows"]]
    for mine, other in zip(ours["eval_rows"], theirs["eval_rows"], strict=True):
        assert mine["eval_accuracy"] == other["eval_accuracy"]
        assert mine["eval_loss"] == pytest.approx(other["eval_loss"], rel=1e-3)
    assert ours["best_checkpoint"] == theirs["best_checkpoint"]
    assert ours["best_metric"] == theirs["best_metric"]
    assert ours["checkpoints"] == theirs["checkpoints"]
    # The best model was loaded at the end: the test split gives the same loss.
    assert ours["test_loss"] == pytest.approx(theirs["test_loss"], rel=1e-3)
    # Transformers' extra keys are its FLOP count and memory figures, which we do not report.
    assert set(ours["test_metric_keys"]) == set(theirs["test_metric_keys"])
    assert set(theirs["train_metric_keys"]) - set(ours["train_metric_keys"]) <= {"total_flos"}
    assert ours["predictions_shape"] == theirs["predictions_shape"] == (12, 2)
    assert ours["label_ids"] == theirs["label_ids"]
    assert ours["predict_metric_keys"] == theirs["predict_metric_keys"]
    assert ours["predict_accuracy"] == theirs["predict_accuracy"]
    # A checkpoint loads with from_pretrained, as Transformers' does.
    assert ours["reloaded_class"] == theirs["reloaded_class"] == "BertForSequenceClassification"
    assert {"config.json", "model.safetensors"} <= set(ours["checkpoint_files"])


def test_causal_lm_with_accumulation_cosine_rotation_and_resume(tmp_path):
    ours, theirs = both("causal_lm", tmp_path)
    assert_close(ours["first_losses"], theirs["first_losses"], ratio=CAUSAL_RATIO)
    # The rate each step used, as Transformers logs it (warmup from 0, cosine, never the next
    # step's rate: the last one is not 0).
    assert ours["first_rates"] == pytest.approx(theirs["first_rates"], rel=1e-9)
    assert ours["first_rates"][6] > 0
    assert ours["checkpoints_after_first"] == theirs["checkpoints_after_first"]
    assert ours["checkpoints_after_resume"] == theirs["checkpoints_after_resume"]
    assert ours["global_step"] == theirs["global_step"] == 8
    assert_close(ours["resumed_losses"], theirs["resumed_losses"], ratio=CAUSAL_RATIO)
    assert sorted(ours["eval_losses"]) == sorted(theirs["eval_losses"])
    for step, loss in ours["eval_losses"].items():
        assert loss == pytest.approx(theirs["eval_losses"][step] * CAUSAL_RATIO, rel=1e-4)
    assert {"config.json", "generation_config.json"} <= set(ours["checkpoint_files"])
    assert ours["reloaded_class"] == theirs["reloaded_class"] == "GPT2LMHeadModel"


def test_compute_loss_subclass_with_class_weights(tmp_path):
    ours, theirs = both("weighted_loss", tmp_path)
    # The override runs at every training step and in evaluate (for the eval loss).
    assert ours["calls_in_training"] == theirs["calls_in_training"] == 5
    assert ours["calls_in_evaluate"] == theirs["calls_in_evaluate"] > 0
    assert_close(ours["losses"], theirs["losses"])
    assert ours["eval_loss"] == pytest.approx(theirs["eval_loss"], rel=1e-4)
    # ...and it changed the loss: the plain trainer's differs.
    assert ours["losses"][1] != pytest.approx(ours["plain_losses"][1], rel=1e-4)
    assert_close(ours["plain_losses"], theirs["plain_losses"])


def test_predict_with_compute_metrics_and_preprocess_logits(tmp_path):
    ours, theirs = both("predict_metrics", tmp_path)
    for key in (
        "type",
        "fields",
        "predictions_shape",
        "predictions_dtype",
        "label_ids_shape",
        "metric_keys",
        "unlabelled_label_ids",
        "unlabelled_shape",
        "unlabelled_metric_keys",
    ):
        assert ours[key] == theirs[key], key
    assert ours["predictions_shape"] == (10, 16)
    assert ours["unlabelled_label_ids"] is None
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"])
    assert ours["predicted_ids"] == theirs["predicted_ids"]
    assert ours["test_loss"] == pytest.approx(theirs["test_loss"] * CAUSAL_RATIO, rel=1e-4)


def test_every_hook_a_subclass_overrides_is_called_as_transformers_calls_it(tmp_path):
    ours, theirs = both("hooks", tmp_path)
    assert ours["calls"] == theirs["calls"]
    assert set(ours["calls"]) >= {
        "compute_loss",
        "training_step",
        "prediction_step",
        "evaluate",
        "create_optimizer",
        "create_scheduler",
        "get_train_dataloader",
        "get_eval_dataloader",
        "log",
    }
    assert ours["custom_rows"] == theirs["custom_rows"] > 0
    assert_close(ours["losses"], theirs["losses"], ratio=CAUSAL_RATIO)


@pytest.mark.parametrize(
    "case",
    [
        "label_smoothing",
        "adafactor",
        "optim_args",
        "compute_loss_func",
        "optimizer_cls_and_kwargs",
        "tokens_seen",
        "gradient_checkpointing",
        "activation_checkpointing",
        "single_process_options",
    ],
)
def test_transformers_5_options_behave_as_in_transformers(tmp_path, case):
    ours, theirs = both("options", tmp_path, case=case)
    assert_close(ours["losses"], theirs["losses"], ratio=CAUSAL_RATIO)
    assert ours["optimizer"] == theirs["optimizer"]
    assert ours["tokens_seen"] == theirs["tokens_seen"]
    assert ours["checkpointing"] == theirs["checkpointing"]
    if case in ("gradient_checkpointing", "activation_checkpointing"):
        assert ours["checkpointing"] is True
    if case == "adafactor":
        assert ours["optimizer"] == "Adafactor"
    if case == "optimizer_cls_and_kwargs":
        assert ours["optimizer"] == "SGD"
    if case == "tokens_seen":
        assert ours["tokens_seen"][0] == 8 * 16  # one step: 8 rows of 16 tokens


def test_a_callback_cancels_a_save_from_on_evaluate_and_the_last_step_is_saved(tmp_path):
    # Transformers decides the save after the evaluation, so a callback's on_evaluate can
    # cancel it; and it evaluates and saves the last step although 7 is off the grid of 2.
    ours, theirs = both("save_control", tmp_path)
    assert theirs == {
        "evaluated": [2, 4, 6, 7],
        "saved": [2, 6, 7],
        "checkpoints": ["checkpoint-2", "checkpoint-6", "checkpoint-7"],
    }
    assert ours == theirs
