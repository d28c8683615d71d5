"""A BERT-style sentence classifier as a Transformers user writes it: a tokenizer as
processing_class (no data_collator: rows of different lengths are padded), compute_metrics,
early stopping, load_best_model_at_end, then evaluate on a test split, predict, and load the
best checkpoint with from_pretrained."""

import os

import common
import numpy as np
from transformers import EarlyStoppingCallback, Trainer, TrainingArguments  # the one import
from transformers.models.auto import AutoModelForSequenceClassification


def accuracy(prediction):
    return {
        "accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())
    }


def main(output_dir):
    tok = common.tokenizer()
    train = common.classification_rows(tok, 32, seed=0)
    valid = common.classification_rows(tok, 16, seed=1)
    test = common.classification_rows(tok, 12, seed=2)
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=32,  # one batch per step: the data order cannot differ
        per_device_eval_batch_size=5,  # batches of different padded lengths
        learning_rate=5e-3,
        max_steps=12,
        eval_strategy="steps",
        eval_steps=2,
        save_steps=2,
        logging_steps=1,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        report_to="none",
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(
        model=common.bert_classifier(),
        args=args,
        train_dataset=train,
        eval_dataset=valid,
        processing_class=tok,
        compute_metrics=accuracy,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=2)],
    )
    result = trainer.train()
    test_metrics = trainer.evaluate(test, metric_key_prefix="test")
    predicted = trainer.predict(test)
    best = trainer.state.best_model_checkpoint
    reloaded = AutoModelForSequenceClassification.from_pretrained(best)
    return {
        "global_step": result.global_step,
        "train_metric_keys": sorted(result.metrics),
        "losses": common.losses(trainer.state.log_history),
        "eval_rows": [
            {k: v for k, v in row.items() if k in ("step", "eval_loss", "eval_accuracy")}
            for row in trainer.state.log_history
            if "eval_loss" in row
        ],
        "best_checkpoint": os.path.basename(best),
        "best_metric": trainer.state.best_metric,
        "checkpoints": sorted(n for n in os.listdir(output_dir) if n.startswith("checkpoint-")),
        "checkpoint_files": sorted(os.listdir(best)),
        "test_metric_keys": sorted(test_metrics),
        "test_loss": test_metrics["test_loss"],
        "predictions_shape": predicted.predictions.shape,
        "label_ids": predicted.label_ids.tolist(),
        "predict_metric_keys": sorted(predicted.metrics),
        "predict_accuracy": predicted.metrics["test_accuracy"],
        "reloaded_class": type(reloaded).__name__,
        "reloaded_config_labels": reloaded.config.num_labels,
    }
