"""A Trainer subclass with a class-weighted loss (the most common compute_loss override), as
Transformers' documentation shows it."""

import common
import torch
from transformers import Trainer, TrainingArguments  # the one import


class WeightedLossTrainer(Trainer):
    calls = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        WeightedLossTrainer.calls += 1
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        weights = torch.tensor([1.0, 4.0], device=outputs.logits.device)
        loss = torch.nn.functional.cross_entropy(outputs.logits, labels, weight=weights)
        return (loss, outputs) if return_outputs else loss


def main(output_dir):
    tok = common.tokenizer()
    WeightedLossTrainer.calls = 0
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=24,
        max_steps=5,
        learning_rate=5e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    trainer = WeightedLossTrainer(
        model=common.bert_classifier(),
        args=args,
        train_dataset=common.classification_rows(tok, 24, seed=3),
        processing_class=tok,
    )
    trainer.train()
    calls_in_training = WeightedLossTrainer.calls
    metrics = trainer.evaluate(common.classification_rows(tok, 10, seed=4))
    # The unweighted loss of the first step, for comparison: the override must change it.
    plain = Trainer(
        model=common.bert_classifier(),
        args=args,
        train_dataset=common.classification_rows(tok, 24, seed=3),
        processing_class=tok,
    )
    plain.train()
    return {
        "calls_in_training": calls_in_training,
        "calls_in_evaluate": WeightedLossTrainer.calls - calls_in_training,
        "losses": common.losses(trainer.state.log_history),
        "plain_losses": common.losses(plain.state.log_history),
        "eval_loss": metrics["eval_loss"],
    }
