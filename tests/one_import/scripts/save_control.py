"""A callback that cancels a checkpoint from on_evaluate, and a run whose last step is off the
evaluation and save grid (7 steps, every 2): when each trainer evaluates and saves."""

import os

import common
from transformers import Trainer, TrainerCallback, TrainingArguments  # the one import


class SkipTheSecondSave(TrainerCallback):
    """Cancels the save of step 4 once its evaluation is in; records evaluations and saves."""

    def __init__(self):
        self.evaluated, self.saved = [], []

    def on_evaluate(self, args, state, control, **kwargs):
        self.evaluated.append(state.global_step)
        if state.global_step == 4:
            control.should_save = False

    def on_save(self, args, state, control, **kwargs):
        self.saved.append(state.global_step)


def main(output_dir):
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=8,
        max_steps=7,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        report_to="none",
        disable_tqdm=True,
    )
    recorder = SkipTheSecondSave()
    trainer = Trainer(
        model=common.gpt2_lm(),
        args=args,
        train_dataset=common.lm_rows(16, seed=0),
        eval_dataset=common.lm_rows(8, seed=1),
        callbacks=[recorder],
    )
    trainer.train()
    return {
        "evaluated": recorder.evaluated,
        "saved": recorder.saved,
        "checkpoints": sorted(n for n in os.listdir(output_dir) if n.startswith("checkpoint-")),
    }
