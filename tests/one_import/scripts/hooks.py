"""A Trainer subclass that overrides every hook Transformers users customise, each recording
that it ran and then doing the default work (super()), so both trainers train alike."""

import collections

import common
from transformers import Trainer, TrainingArguments  # the one import

CALLS = collections.Counter()


class RecordingTrainer(Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        CALLS["compute_loss"] += 1
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def training_step(self, model, inputs, num_items_in_batch=None):
        CALLS["training_step"] += 1
        return super().training_step(model, inputs, num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        CALLS["prediction_step"] += 1
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        CALLS["evaluate"] += 1
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def create_optimizer(self, model=None):
        CALLS["create_optimizer"] += 1
        return super().create_optimizer()

    def create_scheduler(self, num_training_steps, optimizer=None):
        CALLS["create_scheduler"] += 1
        CALLS[f"scheduled_steps={num_training_steps}"] += 1
        return super().create_scheduler(num_training_steps, optimizer)

    def get_train_dataloader(self):
        CALLS["get_train_dataloader"] += 1
        return super().get_train_dataloader()

    def get_eval_dataloader(self, eval_dataset=None):
        CALLS["get_eval_dataloader"] += 1
        return super().get_eval_dataloader(eval_dataset)

    def log(self, logs, start_time=None):
        CALLS["log"] += 1
        logs["custom"] = 1.0  # what an override adds reaches the log history
        super().log(logs, start_time)


def main(output_dir):
    CALLS.clear()
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=4,
        max_steps=4,
        learning_rate=1e-2,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    trainer = RecordingTrainer(
        model=common.gpt2_lm(),
        args=args,
        train_dataset=common.lm_rows(8, seed=0),  # one batch: the same order in both
        eval_dataset=common.lm_rows(8, seed=1),
    )
    trainer.train()
    return {
        "calls": dict(CALLS),
        "losses": common.losses(trainer.state.log_history),
        "custom_rows": sum("custom" in row for row in trainer.state.log_history),
    }
