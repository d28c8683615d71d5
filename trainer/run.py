"""What one call of train() sets up before its loop: the `Run` (model, optimizer, schedule,
batch geometry), the length of the schedule, and the state it starts from (fresh or restored
from a checkpoint)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from trainer import checkpoint as ckpt
from trainer.args import TrainingArguments
from trainer.data import EpochBatches, is_map_style
from trainer.model_prep import prepare_model
from trainer.optim import apply_hyperparameters
from trainer.state import TrainerState
from trainer.trial import TrialPlan

logger = logging.getLogger(__name__)

# The fields of a resumed run's state that come from this run, not from the checkpoint.
_FIELDS_OF_THIS_RUN = frozenset(
    {
        "max_steps",
        "num_train_epochs",
        "logging_steps",
        "eval_steps",
        "save_steps",
        "is_hyper_param_search",
        "trial_name",
        "trial_params",
    }
)


@dataclass
class Run:
    """Everything one call of train() builds and must release on every exit path."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any | None
    device: torch.device
    batch_size: int
    accumulation: int
    max_steps: int
    steps_per_epoch: int | None
    num_epochs: int
    plan: TrialPlan
    ignore_keys_for_eval: list[str] | None
    last_eval_step: int = -1
    last_save_step: int = -1
    save_declined_step: int = -1  # a save the strategy wanted and a callback cancelled
    last_metrics: dict[str, float] = field(default_factory=dict)
    stopped_by_reporter: bool = False
    last_lr: float = 0.0  # the rate the last optimizer step used (what a log shows)
    hooks: list[Any] = field(default_factory=list)  # NEFTune's, removed when the run ends
    train_loader: Any = None  # a subclass's get_train_dataloader(), iterated every epoch


def build_run(
    args: TrainingArguments,
    plan: TrialPlan,
    model: torch.nn.Module,
    dataset: Any,
    *,
    batch_size: int,
    accumulation: int,
    create_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
    create_scheduler: Callable[[torch.optim.Optimizer, int], Any],
    ignore_keys_for_eval: list[str] | None,
    train_loader: Any = None,
) -> Run:
    """Moves the model to the training device in train mode, applies the model arguments
    (gradient checkpointing, NEFTune, ...), sizes the schedule, and has the trainer's
    create_optimizer / create_scheduler build (or hand back) the optimizer and scheduler."""
    device = args.device
    model = model.to(device)
    model.train()
    hooks = prepare_model(model, args)
    steps_per_epoch, max_steps, num_epochs = schedule_length(
        dataset, args, batch_size, accumulation, train_loader
    )
    optimizer = create_optimizer(model)
    scheduler = create_scheduler(optimizer, max_steps)
    return Run(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler(device.type) if args.fp16 else None,
        device=device,
        batch_size=batch_size,
        accumulation=accumulation,
        max_steps=max_steps,
        steps_per_epoch=steps_per_epoch,
        num_epochs=num_epochs,
        plan=plan,
        ignore_keys_for_eval=ignore_keys_for_eval,
        hooks=hooks,
        train_loader=train_loader,
    )


def schedule_length(
    dataset: Any, args: TrainingArguments, batch_size: int, accumulation: int, loader: Any = None
) -> tuple[int | None, int, int]:
    """(optimizer steps per epoch or None, total optimizer steps, epochs to iterate); `loader`
    is a subclass's own train loader, whose length (if it has one) counts the batches."""
    if loader is not None:
        try:
            batches = len(loader)
        except TypeError:
            batches = None
        if batches is None:
            return None, args.max_steps, 1_000_000_000
    elif not is_map_style(dataset):
        return None, args.max_steps, 1_000_000_000  # epochs end when the iterable does
    else:
        batches = len(
            EpochBatches(len(dataset), batch_size, 0, 0, drop_last=args.dataloader_drop_last)
        )
    if batches == 0:
        raise ValueError(
            f"train_dataset has {len(dataset)} rows: fewer than one batch of "
            f"{batch_size} with dataloader_drop_last=True"
        )
    steps_per_epoch = math.ceil(batches / accumulation)  # a short last group is a step too
    if args.max_steps > 0:
        return steps_per_epoch, args.max_steps, math.ceil(args.max_steps / steps_per_epoch)
    max_steps = math.ceil(args.num_train_epochs * steps_per_epoch)
    return steps_per_epoch, max_steps, math.ceil(args.num_train_epochs)


def fresh_state(run: Run, args: TrainingArguments) -> TrainerState:
    """The state at step 0, with the intervals (a fraction of max_steps or a count) in steps."""

    def steps(value: float | None) -> float:
        if value is None:
            return 0
        return math.ceil(run.max_steps * value) if value < 1 else int(value)

    return TrainerState(
        max_steps=run.max_steps,
        num_train_epochs=run.num_epochs if run.steps_per_epoch else 0,
        logging_steps=steps(args.logging_steps),
        eval_steps=steps(args.eval_steps),
        save_steps=steps(args.save_steps),
        train_batch_size=run.batch_size,
        gradient_accumulation_steps=run.accumulation,
        is_hyper_param_search=run.plan.trial is not None,
        trial_name=run.plan.trial_name,
        trial_params=run.plan.params or None,
    )


def restore(
    checkpoint: str,
    saved: TrainerState,
    run: Run,
    state: TrainerState,
    args: TrainingArguments,
    *,
    own_hyperparameters: bool,
) -> None:
    """Loads a checkpoint into the run and its progress into `state` (keeping this run's
    schedule and trial fields); with own_hyperparameters, the optimizer and the schedule then
    train with this run's values, not the saved ones."""
    ckpt.load_weights(checkpoint, run.model)
    ckpt.load_training_state(
        checkpoint, optimizer=run.optimizer, scheduler=run.scheduler, scaler=run.scaler
    )
    if own_hyperparameters:
        apply_hyperparameters(run.optimizer, run.scheduler, args)
    if saved.max_steps != run.max_steps:
        logger.warning(
            "resuming %s: it was trained for max_steps=%s, this run has %s",
            checkpoint,
            saved.max_steps,
            run.max_steps,
        )
    for name, value in vars(saved).items():
        if name not in _FIELDS_OF_THIS_RUN:
            setattr(state, name, value)
    run.last_save_step = saved.global_step
    if args.ignore_data_skip:
        state.steps_in_epoch = 0
