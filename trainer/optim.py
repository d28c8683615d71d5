"""The optimizer and the learning-rate schedule: built as Transformers builds them, and given
back their own hyperparameters after a checkpoint's state is loaded into them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch

from trainer.args import TrainingArguments
from trainer.compat import reschedule_from

# The optimizers built here; every other `optim` name goes to Transformers' factory.
OWN_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "sgd")


def build_optimizer(
    model: torch.nn.Module,
    args: TrainingArguments,
    factory: Callable[..., tuple[Any, dict[str, Any]]] | None = None,
) -> torch.optim.Optimizer:
    """The optimizer `args.optim` names over two groups: decayed weights, then biases and norms
    without decay. AdamW and SGD are built here; any other name by `factory` (Transformers'
    `Trainer.get_optimizer_cls_and_kwargs`), which raises naming a missing library."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    decayed = set(decay_parameter_names(model))
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if name in decayed else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # Always the same two groups (Transformers' layout), whatever weight_decay is: a checkpoint
    # must load into a run with another weight_decay (PBT mutates it), and group 0 is the
    # decayed one for code that adjusts it.
    groups = [group for group in groups if group["params"]]
    if args.optim not in OWN_OPTIMIZERS or args.optim_args:
        if factory is None:
            from transformers import Trainer as TransformersTrainer

            # It reads our TrainingArguments by Transformers' field names (duck-typed).
            factory = cast(
                Callable[..., tuple[Any, dict[str, Any]]],
                TransformersTrainer.get_optimizer_cls_and_kwargs,
            )
        optimizer_cls, kwargs = factory(args, model)
        return optimizer_cls(groups, **kwargs)
    if args.optim == "sgd":
        return torch.optim.SGD(groups, lr=args.learning_rate)
    return torch.optim.AdamW(
        groups,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        # Same algorithm either way; the multi-tensor kernel is faster than torch's default
        # per-parameter loop on CPU (where torch does not pick it by itself).
        fused=True if args.optim == "adamw_torch_fused" else None,
        foreach=True if args.optim == "adamw_torch" else None,
    )


def decay_parameter_names(model: torch.nn.Module) -> list[str]:
    """The trainable parameters that get weight decay. Transformers' rule: none on biases and
    normalisation weights (a module whose class name holds "norm")."""
    norm_params = {
        id(p)
        for module in model.modules()
        if "norm" in type(module).__name__.lower()
        for p in module.parameters(recurse=False)
    }
    return [
        name
        for name, param in model.named_parameters()
        if param.requires_grad and not name.endswith("bias") and id(param) not in norm_params
    ]


def build_scheduler(
    optimizer: torch.optim.Optimizer, args: TrainingArguments, max_steps: int
) -> Any:
    """`transformers.get_scheduler` for `lr_scheduler_type`, with the run's warmup."""
    from transformers.optimization import get_scheduler

    return get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=args.get_warmup_steps(max_steps),
        num_training_steps=max_steps,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs or {},
    )


def steps_on_metrics(scheduler: Any) -> bool:
    """Whether the scheduler steps on each evaluation's metric instead of on each step: a
    ReduceLROnPlateau or Transformers' GreedyLR, whether `lr_scheduler_type` built it or the
    user passed it in `optimizers=(optimizer, scheduler)` (Transformers checks the type too)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return True
    try:
        from transformers.optimization import GreedyLR
    except ImportError:  # a Transformers release without it
        return False
    return isinstance(scheduler, GreedyLR)


def apply_hyperparameters(
    optimizer: torch.optim.Optimizer, scheduler: Any, args: TrainingArguments
) -> None:
    """After loading an optimizer state, put this run's hyperparameters back over the saved ones.

    `load_state_dict` restores the learning rate, decay and betas the checkpoint was saved with;
    a run resumed with other values (a PBT mutation, a user's change) must train with its own.
    The optimizer's moments and the schedule's position are kept. With unchanged values this
    changes nothing, so an exact resume stays bitwise exact.
    """
    for index, group in enumerate(optimizer.param_groups):
        if index == 0 and len(optimizer.param_groups) == 2:
            group["weight_decay"] = args.weight_decay  # group 1 holds biases and norms: no decay
        if "betas" in group:
            group["betas"] = (args.adam_beta1, args.adam_beta2)
            group["eps"] = args.adam_epsilon
    lr_changed = any(
        group.get("initial_lr", args.learning_rate) != args.learning_rate
        for group in optimizer.param_groups
    )
    if not lr_changed or not hasattr(scheduler, "base_lrs") or not hasattr(scheduler, "lr_lambdas"):
        return
    for group in optimizer.param_groups:
        group["initial_lr"] = args.learning_rate
    reschedule_from(scheduler, args.learning_rate)
