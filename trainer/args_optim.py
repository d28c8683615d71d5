"""The optimization fields of TrainingArguments: duration and batch size, optimizer and
schedule, precision and compilation, loss; their derived defaults and their checks.

`OptimizationFields` is a dataclass base of `TrainingArguments` (trainer/args.py), which lists
its fields after the output fields, as Transformers does. Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from trainer.accelerate_compat import normalise_accelerator_config
from trainer.args_problems import (
    ArgumentProblem,
    Problems,
    enum_values,
    is_int,
    is_number,
    set_derived,
    whole_steps,
)

# The names `transformers.get_scheduler` accepts (transformers.trainer_utils.SchedulerType).
# Kept literally so that this module does not import torch; tests check it against transformers.
SCHEDULER_NAMES = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
    "greedy",
)
# transformers.training_args.OptimizerNames (a test checks the list against it). The first three
# are built here; the others by Transformers' own factory (`Trainer.get_optimizer_cls_and_kwargs`).
OPTIMIZER_NAMES = (
    "adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adafactor",
    "adamw_anyprecision", "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad",
    "adamw_bnb_8bit", "adamw_8bit", "ademamix_8bit", "lion_8bit", "lion_32bit",
    "paged_adamw_32bit", "paged_adamw_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit",
    "paged_lion_32bit", "paged_lion_8bit", "rmsprop", "rmsprop_bnb", "rmsprop_bnb_8bit",
    "rmsprop_bnb_32bit", "galore_adamw", "galore_adamw_8bit", "galore_adafactor",
    "galore_adamw_layerwise", "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise", "lomo",
    "adalomo", "grokadamw", "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd",
    "apollo_adamw", "apollo_adamw_layerwise", "stable_adamw",
)  # fmt: skip
INPUT_TOKEN_MODES = ("no", "all", "non_padding")


@dataclass
class OptimizationFields:
    # --- duration and batch size ---
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    auto_find_batch_size: bool = False
    # --- optimizer and schedule ---
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    # Transformers 5.x's default with torch >= 2.8 (torch's fused AdamW kernel).
    optim: str = "adamw_torch_fused"
    # Extra optimizer options as "key=value,key=value" (Transformers' format).
    optim_args: str | None = None
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "linear"
    lr_scheduler_kwargs: dict[str, Any] | None = None
    # An int counts steps; a float in (0, 1) is a fraction of the total steps (Transformers 5.x).
    warmup_steps: float = 0
    # Transformers 4.x name, still accepted: a fraction of the total steps, used when warmup_steps is 0.
    warmup_ratio: float = 0.0
    # --- precision and compilation ---
    bf16: bool = False
    fp16: bool = False
    # evaluate() / predict() outside train() cast the model to this dtype first, as Transformers
    # does (the model stays cast); evaluations inside train() run under bf16= / fp16=
    bf16_full_eval: bool = False
    fp16_full_eval: bool = False
    torch_compile: bool = False
    use_cpu: bool = False
    # None, a dict, a JSON file's path or an AcceleratorConfig (trainer/accelerate_compat.py)
    accelerator_config: Any = None
    torch_compile_backend: str | None = None
    torch_compile_mode: str | None = None
    # Transformers 5's name, and the deprecated alias it keeps (None: off).
    activation_checkpointing: bool | None = None
    activation_checkpointing_kwargs: dict[str, Any] | None = None
    gradient_checkpointing: bool | None = None
    gradient_checkpointing_kwargs: dict[str, Any] | None = None
    # TF32 matmuls on Ampere+ GPUs: True / False set torch's flags, None leaves them alone.
    tf32: bool | None = None
    # --- loss ---
    label_smoothing_factor: float = 0.0
    neftune_noise_alpha: float | None = None
    # One process: the token count is already the whole batch's (nothing to average across).
    average_tokens_across_devices: bool = True
    # Written into model.config.use_cache for training (Transformers 5 default: no cache).
    use_cache: bool = False
    torch_empty_cache_steps: int | None = None

    def get_warmup_steps(self, num_training_steps: int) -> int:
        """Warmup in optimizer steps: an absolute count, or a fraction of `num_training_steps`."""
        if self.warmup_steps >= 1 or self.warmup_steps == 0 and self.warmup_ratio == 0:
            return int(self.warmup_steps)
        ratio = self.warmup_steps if self.warmup_steps > 0 else self.warmup_ratio
        return int(-(-num_training_steps * ratio // 1))  # ceil, as Transformers does


def normalise_optimization(args: Any) -> None:
    """The values Transformers derives for these fields (a JSON string becomes a dict...)."""
    enum_values(args, "lr_scheduler_type", "optim")
    if isinstance(args.lr_scheduler_kwargs, str) and args.lr_scheduler_kwargs.startswith("{"):
        set_derived(args, "lr_scheduler_kwargs", json.loads(args.lr_scheduler_kwargs))
    # A compile mode or backend asks for compilation; inductor is torch.compile's own default.
    if args.torch_compile_mode is not None or args.torch_compile_backend is not None:
        set_derived(args, "torch_compile", True)
    if args.torch_compile and args.torch_compile_backend is None:
        set_derived(args, "torch_compile_backend", "inductor")
    normalise_accelerator_config(args)
    for name in ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"):
        if isinstance(getattr(args, name), str):
            set_derived(args, name, json.loads(getattr(args, name)))
    if isinstance(args.include_num_input_tokens_seen, bool):
        mode = "all" if args.include_num_input_tokens_seen else "no"
        set_derived(args, "include_num_input_tokens_seen", mode)
    whole_steps(args, "warmup_steps")


def check_duration(args: Any, problems: Problems) -> None:
    """Batch sizes, accumulation, and how long to train."""
    need = problems.need
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size"):
        need(is_int(getattr(args, name)) and getattr(args, name) >= 1, name, "an integer >= 1")
    need(
        is_int(args.gradient_accumulation_steps) and args.gradient_accumulation_steps >= 1,
        "gradient_accumulation_steps",
        "an integer >= 1",
    )
    need(
        is_int(args.max_steps) and (args.max_steps == -1 or args.max_steps > 0),
        "max_steps",
        "a positive integer, or -1 to train for num_train_epochs",
    )
    if args.max_steps == -1:
        need(
            is_number(args.num_train_epochs) and args.num_train_epochs > 0,
            "num_train_epochs",
            "a number > 0 (or set max_steps)",
        )


def check_optimizer(args: Any, problems: Problems) -> None:
    """The optimizer's hyperparameters and name, and the schedule's name."""
    need = problems.need
    for name in ("learning_rate", "weight_decay", "adam_epsilon", "max_grad_norm"):
        need(is_number(getattr(args, name)) and getattr(args, name) >= 0, name, "a number >= 0")
    for name in ("adam_beta1", "adam_beta2"):
        need(is_number(getattr(args, name)) and 0 <= getattr(args, name) < 1, name, "in [0, 1)")
    need(args.optim in OPTIMIZER_NAMES, "optim", f"one of {', '.join(OPTIMIZER_NAMES)}")
    need(
        args.lr_scheduler_type in SCHEDULER_NAMES,
        "lr_scheduler_type",
        f"one of the transformers.get_scheduler names: {', '.join(SCHEDULER_NAMES)}",
    )


def check_model_options(args: Any, problems: Problems) -> None:
    """Checkpointing options, label smoothing, NEFTune, the input-token count."""
    need = problems.need
    for name in ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"):
        value = getattr(args, name)
        need(value is None or isinstance(value, dict), name, "a dict (or a JSON object string)")
    need(
        is_number(args.label_smoothing_factor) and 0 <= args.label_smoothing_factor < 1,
        "label_smoothing_factor",
        "a number in [0, 1)",
    )
    need(
        args.neftune_noise_alpha is None
        or (is_number(args.neftune_noise_alpha) and args.neftune_noise_alpha > 0),
        "neftune_noise_alpha",
        "None or a number > 0",
    )
    need(
        args.include_num_input_tokens_seen in INPUT_TOKEN_MODES,
        "include_num_input_tokens_seen",
        f"one of {', '.join(INPUT_TOKEN_MODES)} (or a bool)",
    )


def check_schedule(args: Any, problems: Problems) -> None:
    """Emptying the device cache, the schedule's options and warmup."""
    need = problems.need
    need(
        args.torch_empty_cache_steps is None
        or (is_int(args.torch_empty_cache_steps) and args.torch_empty_cache_steps >= 1),
        "torch_empty_cache_steps",
        "None or an integer >= 1",
    )
    need(
        args.lr_scheduler_kwargs is None or isinstance(args.lr_scheduler_kwargs, dict),
        "lr_scheduler_kwargs",
        "a dict (or a JSON object string)",
    )
    need(
        is_number(args.warmup_steps)
        and args.warmup_steps >= 0
        and (args.warmup_steps < 1 or is_int(args.warmup_steps)),
        "warmup_steps",
        "an integer >= 0 (steps) or a float in [0, 1) (fraction of the total steps)",
    )
    need(
        is_number(args.warmup_ratio) and 0 <= args.warmup_ratio <= 1,
        "warmup_ratio",
        "a number in [0, 1]",
    )


def check_precision(args: Any, problems: Problems) -> None:
    """At most one mixed precision, for training and for full evaluations."""
    if args.bf16 and args.fp16:
        problems.append(
            ArgumentProblem(
                "bf16",
                args.bf16,
                "at most one mixed precision",
                text="bf16=True and fp16=True: choose at most one mixed precision",
            )
        )
    if args.bf16_full_eval and args.fp16_full_eval:
        problems.append(
            ArgumentProblem(
                "bf16_full_eval",
                args.bf16_full_eval,
                "at most one of bf16_full_eval and fp16_full_eval",
                text="bf16_full_eval=True and fp16_full_eval=True: choose at most one",
            )
        )
