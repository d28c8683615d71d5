"""A summarisation-style script: a tiny T5 (built from a config) learns to copy the start of
short token sequences, then evaluate() and predict() score the ids generate() produces
(predict_with_generate), as the Transformers translation and summarisation examples do."""

import random

import numpy as np
import torch
import transformers
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments  # the one import

PAD, EOS = 0, 1


def rows(count, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        source = [rng.randrange(2, 12) for _ in range(6)]
        out.append(
            {
                "input_ids": torch.tensor(source + [EOS]),
                "attention_mask": torch.ones(7, dtype=torch.long),
                "labels": torch.tensor(source[:4] + [EOS]),
            }
        )
    return out


def tiny_t5():
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=16,
        d_model=16,
        d_ff=32,
        d_kv=8,
        num_layers=2,
        num_heads=2,
        dropout_rate=0.0,  # no dropout: both trainers see the same numbers
        decoder_start_token_id=PAD,
        pad_token_id=PAD,
        eos_token_id=EOS,
    )
    return transformers.T5ForConditionalGeneration(config)


def compute_metrics(prediction):
    predicted, labels = prediction.predictions, prediction.label_ids
    # Generated ids start with the decoder start token; labels do not.
    width = min(predicted.shape[1] - 1, labels.shape[1])
    predicted, labels = predicted[:, 1 : 1 + width], labels[:, :width]
    mask = (labels != -100) & (labels != PAD)
    return {"token_accuracy": float((predicted[mask] == labels[mask]).mean())}


def main(output_dir):
    args = Seq2SeqTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=3,  # 6 rows: equal batches (see test_seq2seq.py)
        max_steps=30,
        learning_rate=3e-2,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        predict_with_generate=True,
        generation_max_length=8,
    )
    trainer = Seq2SeqTrainer(
        model=tiny_t5(),
        args=args,
        train_dataset=rows(16, seed=0),
        compute_metrics=compute_metrics,
    )
    train = trainer.train()
    test = rows(16, seed=0)[:6]  # rows it has learned: generation gets some of them right
    output = trainer.predict(test)
    beams = trainer.predict(test, max_length=6, num_beams=2)
    metrics = trainer.evaluate(eval_dataset=test)
    loss_only = Seq2SeqTrainer(model=trainer.model, args=args).evaluate(eval_dataset=test)
    return {
        "train_loss": train.training_loss,
        "predicted_ids": np.asarray(output.predictions).tolist(),
        "label_ids": np.asarray(output.label_ids).tolist(),
        "metric_keys": sorted(output.metrics),
        "test_loss": output.metrics["test_loss"],
        "token_accuracy": output.metrics["test_token_accuracy"],
        "beam_ids": np.asarray(beams.predictions).tolist(),
        "eval_keys": sorted(k for k in metrics if k != "epoch"),
        "eval_token_accuracy": metrics["eval_token_accuracy"],
        "loss_only_generates": any("accuracy" in key for key in loss_only),
        "loss_only": loss_only["eval_loss"],
        "eval_loss": metrics["eval_loss"],
        "to_dict_keys": sorted(k for k in args.to_dict() if "generat" in k or "sortish" in k),
    }
