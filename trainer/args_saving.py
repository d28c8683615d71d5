"""The evaluation and checkpoint fields of TrainingArguments; their derived defaults (the
evaluation interval, the best model's metric and direction) and their checks.

`EvaluationFields` and `CheckpointFields` are dataclass bases of `TrainingArguments`
(trainer/args.py), after the logging fields, as Transformers lists them. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainer.args_logging import INTERVAL_STRATEGIES
from trainer.args_problems import (
    ArgumentProblem,
    Problems,
    enum_values,
    is_int,
    positive_steps,
    set_derived,
    whole_steps,
)

SAVE_STRATEGIES = ("no", "steps", "epoch", "best")
_STEPS = "an integer >= 1 or a fraction in (0, 1)"


@dataclass
class EvaluationFields:
    # --- evaluation ---
    eval_strategy: str = "no"
    eval_steps: float | None = None
    eval_delay: float = 0
    eval_on_start: bool = False
    eval_accumulation_steps: int | None = None
    prediction_loss_only: bool = False
    eval_use_gather_object: bool = False  # one process: nothing to gather
    # compute_metrics(EvalPrediction, compute_result=) per batch, the last batch's value the
    # metrics (trainer/evaluation.py)
    batch_eval_metrics: bool = False


@dataclass
class CheckpointFields:
    # --- checkpoints ---
    save_strategy: str = "steps"
    save_steps: float = 500
    save_total_limit: int | None = None
    save_only_model: bool = False
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    resume_from_checkpoint: str | None = None
    ignore_data_skip: bool = False
    # Rebuild stateful callbacks (those with Transformers' `state()`) from a resumed checkpoint.
    restore_callback_states_from_checkpoint: bool = False
    # After SIGTERM (and a grace period), checkpoint at the next step boundary and stop.
    enable_jit_checkpoint: bool = False
    save_on_each_node: bool = False  # one process: one node


def normalise_saving(args: Any) -> None:
    """Run after the logging fields': `eval_steps` defaults to `logging_steps`."""
    enum_values(args, "eval_strategy", "save_strategy")
    if args.eval_strategy != "no" and args.do_eval is False:
        set_derived(args, "do_eval", True)
    if args.eval_strategy == "steps" and not args.eval_steps:
        set_derived(args, "eval_steps", args.logging_steps)
    if args.load_best_model_at_end and args.metric_for_best_model is None:
        set_derived(args, "metric_for_best_model", "loss")
    if args.greater_is_better is None and args.metric_for_best_model is not None:
        set_derived(args, "greater_is_better", not args.metric_for_best_model.endswith("loss"))
    whole_steps(args, "eval_steps", "save_steps")


def check_strategies(args: Any, problems: Problems) -> None:
    for name, allowed in (
        ("eval_strategy", INTERVAL_STRATEGIES),
        ("save_strategy", SAVE_STRATEGIES),
    ):
        problems.need(getattr(args, name) in allowed, name, f"one of {', '.join(allowed)}")


def check_save_steps(args: Any, problems: Problems) -> None:
    problems.need(positive_steps(args.save_steps), "save_steps", _STEPS)


def check_intervals(args: Any, problems: Problems) -> None:
    """The evaluation interval (when evaluating by steps) and how many checkpoints to keep."""
    if args.eval_strategy == "steps":
        problems.need(positive_steps(args.eval_steps), "eval_steps", _STEPS)
    problems.need(
        args.save_total_limit is None
        or (is_int(args.save_total_limit) and args.save_total_limit >= 1),
        "save_total_limit",
        "None (keep all) or an integer >= 1",
    )


def check_needs_evaluations(args: Any, problems: Problems) -> None:
    """What only works with evaluations: a plateau schedule, saving the best, the best model."""
    if args.lr_scheduler_type in ("reduce_lr_on_plateau", "greedy") and args.eval_strategy == "no":
        problems.append(
            ArgumentProblem(
                "lr_scheduler_type",
                args.lr_scheduler_type,
                "a schedule without evaluations, or an eval_strategy",
                text=f"lr_scheduler_type={args.lr_scheduler_type!r} needs evaluations: "
                "set eval_strategy",
            )
        )
    if args.save_strategy == "best" and args.eval_strategy == "no":
        problems.append(
            ArgumentProblem(
                "save_strategy",
                args.save_strategy,
                "an eval_strategy too",
                text="save_strategy='best' saves when an evaluation improves: set eval_strategy too",
            )
        )
    problems.extend(_best_model_problems(args))


def _best_model_problems(args: Any) -> list[ArgumentProblem]:
    if not args.load_best_model_at_end or args.save_strategy == "best":
        return []
    if args.eval_strategy != args.save_strategy:
        return [
            ArgumentProblem(
                "load_best_model_at_end",
                True,
                "save_strategy == eval_strategy (or save_strategy='best')",
                text="load_best_model_at_end=True needs save_strategy == eval_strategy (or "
                f"save_strategy='best'), got eval_strategy={args.eval_strategy!r} and "
                f"save_strategy={args.save_strategy!r}",
            )
        ]
    if args.eval_strategy == "steps" and is_int(args.eval_steps) and is_int(args.save_steps):
        if args.save_steps % args.eval_steps:
            return [
                ArgumentProblem(
                    "load_best_model_at_end",
                    True,
                    "save_steps a multiple of eval_steps",
                    text="load_best_model_at_end=True needs save_steps to be a multiple of "
                    f"eval_steps, got save_steps={args.save_steps} and eval_steps={args.eval_steps}",
                )
            ]
    return []
