"""A causal LM run as a Transformers user writes it: gradient accumulation, a cosine schedule
with warmup, checkpoint rotation, then more steps by assigning to the arguments and resuming
from the newest checkpoint; the checkpoint loads with AutoModelForCausalLM."""

import os

import common
from transformers import Trainer, TrainingArguments  # the one import
from transformers.models.auto import AutoModelForCausalLM


def main(output_dir):
    train = common.lm_rows(16, seed=0)
    valid = common.lm_rows(8, seed=1)
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,  # 16 rows: one optimizer step sees all of them
        learning_rate=1e-2,
        lr_scheduler_type="cosine",
        warmup_steps=2,
        max_steps=6,
        logging_steps=1,
        save_steps=2,
        save_total_limit=2,
        eval_strategy="steps",
        eval_steps=3,
        report_to="none",
        disable_tqdm=True,
        seed=0,
    )
    first = Trainer(model=common.gpt2_lm(), args=args, train_dataset=train, eval_dataset=valid)
    first.train()
    after_first = sorted(n for n in os.listdir(output_dir) if n.startswith("checkpoint-"))
    first_rates = common.rates(first.state.log_history)
    # More steps: assign to the arguments and resume from the newest checkpoint.
    args.max_steps = 8
    resumed = Trainer(model=common.gpt2_lm(), args=args, train_dataset=train, eval_dataset=valid)
    out = resumed.train(resume_from_checkpoint=True)
    newest = os.path.join(output_dir, "checkpoint-8")
    reloaded = AutoModelForCausalLM.from_pretrained(newest)
    return {
        "first_losses": common.losses(first.state.log_history),
        "first_rates": first_rates,
        "checkpoints_after_first": after_first,
        "checkpoints_after_resume": sorted(
            n for n in os.listdir(output_dir) if n.startswith("checkpoint-")
        ),
        "resumed_losses": {
            step: loss
            for step, loss in common.losses(resumed.state.log_history).items()
            if step > 6
        },
        "global_step": out.global_step,
        "eval_losses": {
            r["step"]: r["eval_loss"] for r in resumed.state.log_history if "eval_loss" in r
        },
        "checkpoint_files": sorted(os.listdir(newest)),
        "reloaded_class": type(reloaded).__name__,
    }
