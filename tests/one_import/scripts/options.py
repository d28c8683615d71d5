"""One causal-LM run per Transformers 5 option a script may set: label smoothing, Adafactor,
a compute_loss_func, counting input tokens, gradient checkpointing (with its kwargs), the
multi-device options that mean nothing on one process, tf32 off."""

import common
import torch
from transformers import Trainer, TrainingArguments  # the one import


def summed_cross_entropy(outputs, labels, num_items_in_batch=None):
    logits = outputs.logits[:, :-1].flatten(0, 1)
    loss = torch.nn.functional.cross_entropy(logits, labels[:, 1:].flatten(), reduction="sum")
    return loss / num_items_in_batch


CASES = {
    "label_smoothing": dict(options={"label_smoothing_factor": 0.1}),
    "adafactor": dict(options={"optim": "adafactor"}),
    "optim_args": dict(options={"optim": "adamw_torch", "optim_args": "foreach=False"}),
    "compute_loss_func": dict(options={}, trainer={"compute_loss_func": summed_cross_entropy}),
    "optimizer_cls_and_kwargs": dict(
        options={}, trainer={"optimizer_cls_and_kwargs": (torch.optim.SGD, {"lr": 0.5})}
    ),
    "tokens_seen": dict(options={"include_num_input_tokens_seen": True}),
    "gradient_checkpointing": dict(
        options={
            "gradient_checkpointing": True,
            "gradient_checkpointing_kwargs": {"use_reentrant": False},
        }
    ),
    "activation_checkpointing": dict(
        options={
            "activation_checkpointing": True,
            "activation_checkpointing_kwargs": {"every_n_layers": 2},
        }
    ),
    "single_process_options": dict(
        options={
            "average_tokens_across_devices": False,
            "tf32": False,
            "eval_use_gather_object": True,
            "save_on_each_node": True,
            "log_on_each_node": False,
            "torch_empty_cache_steps": 2,
        }
    ),
}


def main(output_dir, case):
    spec = CASES[case]
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        max_steps=3,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        **spec["options"],
    )
    model = common.gpt2_lm()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=common.lm_rows(8, seed=0),  # one step sees every row
        **spec.get("trainer", {}),
    )
    trainer.train()
    return {
        "losses": common.losses(trainer.state.log_history),
        "optimizer": type(getattr(trainer.optimizer, "optimizer", trainer.optimizer)).__name__,
        "tokens_seen": [row.get("num_input_tokens_seen") for row in trainer.state.log_history],
        "checkpointing": bool(getattr(model, "is_gradient_checkpointing", False)),
    }
