"""predict() with compute_metrics and preprocess_logits_for_metrics on a causal LM (the logits
are reduced to token ids per batch, as the Transformers examples do), then predict() on rows
without labels."""

import common
import numpy as np
from transformers import Trainer, TrainingArguments  # the one import


def preprocess_logits_for_metrics(logits, labels):
    return logits.argmax(dim=-1)


def compute_metrics(prediction):
    predicted = prediction.predictions[:, :-1]
    labels = prediction.label_ids[:, 1:]
    mask = labels != -100
    return {"accuracy": float((predicted[mask] == labels[mask]).mean())}


def main(output_dir):
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=4,
        max_steps=4,
        learning_rate=1e-2,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    test = common.lm_rows(10, seed=5)
    trainer = Trainer(
        model=common.gpt2_lm(),
        args=args,
        train_dataset=common.lm_rows(16, seed=0),
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics,
    )
    trainer.train()
    output = trainer.predict(test)
    unlabelled = trainer.predict([{"input_ids": row["input_ids"]} for row in test])
    return {
        "type": type(output).__name__,
        "fields": list(output._fields),
        "predictions_shape": output.predictions.shape,
        "predictions_dtype": str(output.predictions.dtype),
        "label_ids_shape": output.label_ids.shape,
        "metric_keys": sorted(output.metrics),
        "accuracy": output.metrics["test_accuracy"],
        "test_loss": output.metrics["test_loss"],
        "predicted_ids": np.asarray(output.predictions).tolist(),
        "unlabelled_label_ids": unlabelled.label_ids,
        "unlabelled_shape": np.asarray(unlabelled.predictions).shape,
        "unlabelled_metric_keys": sorted(unlabelled.metrics),
    }
