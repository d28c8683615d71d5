"""The README's promise, tested the way a user meets it: real-world-style scripts under
`one_import/` run through `transformers.Trainer` and through ours, where the only difference is
the import line (`from trainer import ...` becomes `from transformers import ...`), and the
behaviour is compared: metric keys, prediction shapes, losses within tolerance where the runs
are comparable (one batch per step, no dropout, same initial weights), files on disk.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "one_import"
OURS, THEIRS = "from trainer import", "from transformers import"


def run_script(name: str, library: str, output_dir: Path) -> dict[str, Any]:
    """Runs `one_import/<name>.py`'s main(output_dir) with the import line of `library`."""
    source = (SCRIPTS / f"{name}.py").read_text()
    assert source.count(OURS) == 1, f"{name}.py must import from trainer exactly once"
    if library == "transformers":
        source = source.replace(OURS, THEIRS)
    namespace: dict[str, Any] = {"__name__": f"one_import_{name}_{library}"}
    sys.path.insert(0, str(SCRIPTS))
    try:
        exec(compile(source, str(SCRIPTS / f"{name}.py"), "exec"), namespace)
        return namespace["main"](str(output_dir / library))
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.fixture(autouse=True)
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def both(name: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return run_script(name, "trainer", tmp_path), run_script(name, "transformers", tmp_path)


def assert_close(ours: dict[int, float], theirs: dict[int, float], rel: float = 1e-3) -> None:
    assert sorted(ours) == sorted(theirs)
    for step in ours:
        assert ours[step] == pytest.approx(theirs[step], rel=rel, abs=1e-5), f"step {step}"


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


# Transformers' causal-LM eval loss divides the summed token losses by all label tokens,
# the first of each row included, which the shift leaves without a target: with rows of 16
# tokens it is low by 15/16. Ours is the mean over the 15 predicted tokens.
CAUSAL_EVAL_RATIO = 16 / 15


def test_causal_lm_with_accumulation_cosine_rotation_and_resume(tmp_path):
    ours, theirs = both("causal_lm", tmp_path)
    assert_close(ours["first_losses"], theirs["first_losses"])
    # The rate each step used, as Transformers logs it (warmup from 0, cosine, never the next
    # step's rate: the last one is not 0).
    assert ours["first_rates"] == pytest.approx(theirs["first_rates"], rel=1e-9)
    assert ours["first_rates"][6] > 0
    assert ours["checkpoints_after_first"] == theirs["checkpoints_after_first"]
    assert ours["checkpoints_after_resume"] == theirs["checkpoints_after_resume"]
    assert ours["global_step"] == theirs["global_step"] == 8
    assert_close(ours["resumed_losses"], theirs["resumed_losses"])
    assert sorted(ours["eval_losses"]) == sorted(theirs["eval_losses"])
    for step, loss in ours["eval_losses"].items():
        assert loss == pytest.approx(theirs["eval_losses"][step] * CAUSAL_EVAL_RATIO, rel=1e-4)
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
    assert ours["test_loss"] == pytest.approx(theirs["test_loss"] * CAUSAL_EVAL_RATIO, rel=1e-4)
