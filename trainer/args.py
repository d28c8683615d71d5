"""TrainingArguments: Transformers' field names, defaults and meanings, checked on creation and
again when train() starts (fields may be assigned in between, as in Transformers).

This module must stay importable without torch: the orchestrator inspects the fields of
`TrainingArguments` (for search spaces, study validation) in processes that never train.

Why one module of ~650 lines: the dataclass mirrors Transformers' fields one for one, and each
check or derived default sits next to the fields it reads so that a field and its rule are
changed together; the construction check (a metaclass, so that `@dataclass` subclasses keep it)
and the process properties are part of the class's contract.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from trainer.refused_args import REFUSED, refusal

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
LOG_LEVELS = ("passive", "debug", "info", "warning", "error", "critical")
INTERVAL_STRATEGIES = ("no", "steps", "epoch")
SAVE_STRATEGIES = ("no", "steps", "epoch", "best")
HUB_STRATEGIES = ("end", "every_save", "checkpoint", "all_checkpoints")


@dataclass(frozen=True)
class ArgumentProblem:
    """One rejected value: its field, the value, and what is expected instead.

    str() is `field=value: expected`, or `text` where the problem is a combination of fields
    (the sentence then names each of them); `field` is the one a fix starts from.
    """

    field: str
    value: Any
    expected: str
    text: str | None = None

    def __str__(self) -> str:
        return (
            self.text if self.text is not None else f"{self.field}={self.value!r}: {self.expected}"
        )


class TrainingArgumentsError(ValueError):
    """TrainingArguments rejected its values; `problems` holds every one of them."""

    def __init__(self, problems: list[ArgumentProblem], unknown_fields: bool = False) -> None:
        self.problems = list(problems)
        self.unknown_fields = unknown_fields
        if unknown_fields:
            message = "Unknown TrainingArguments field(s): " + "; ".join(map(str, problems))
        else:
            message = "Invalid TrainingArguments:\n  - " + "\n  - ".join(map(str, problems))
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the problems (Ray and multiprocessing pickle exceptions).
        return (type(self), (self.problems, self.unknown_fields))


_CONSTRUCTING = "_constructing"


class _CheckedConstruction(type):
    """Checks the keywords of every construction, of TrainingArguments and of any subclass.

    A dataclass answers an unknown keyword with a bare TypeError, and `@dataclass` on a subclass
    (how Seq2SeqTrainingArguments, TRL's configs and user scripts add fields) writes a fresh
    `__init__` that would bypass a check placed there. The class's `__call__` runs before any
    `__init__`, so every subclass keeps the check: an unknown name gets the closest real field,
    a refused Transformers field its reason, both as TrainingArgumentsError (a ValueError).
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        names = field_names(cls)
        unknown = sorted(set(kwargs) - names - set(REFUSED))
        if unknown:
            problems = [_unknown_field(name, kwargs[name], names) for name in unknown]
            raise TrainingArgumentsError(problems, unknown_fields=True)
        refused = [
            ArgumentProblem(name, kwargs[name], reason, text=reason)
            for name in sorted((set(kwargs) & set(REFUSED)) - names)
            if (reason := refusal(name, kwargs[name])) is not None
        ]
        if refused:
            raise TrainingArgumentsError(refused)
        # A refused field at its Transformers default is accepted and dropped (it reads as that
        # default through __getattr__).
        kwargs = {k: v for k, v in kwargs.items() if k in names}
        # type.__call__, with the instance marked while its __init__ / __post_init__ run: a
        # subclass's __post_init__ may set attributes of its own (TRL's configs do).
        # `cls` is the class being built (this is its metaclass), not a metaclass.
        instance = cls.__new__(cls)  # type: ignore[call-overload]
        object.__setattr__(instance, _CONSTRUCTING, True)
        try:
            instance.__init__(*args, **kwargs)
        finally:
            instance.__dict__.pop(_CONSTRUCTING, None)
        return instance


@dataclass
class TrainingArguments(metaclass=_CheckedConstruction):
    """The arguments of one training run; `dataclasses.replace(args, **changes)` makes a variant.

    Field names, defaults and meanings follow `transformers.TrainingArguments` (5.x), so a script
    written for Transformers runs unchanged. Every value is checked when the object is created
    and again by `validate()` when train() starts, since fields may be assigned in between.
    Transformers fields the trainer does not implement (`trainer/refused_args.py`) read as their
    default and are refused, with the reason, at any other value. A `@dataclass` subclass may
    add fields (`Seq2SeqTrainingArguments` does), and keeps these checks.
    """

    # --- output ---
    output_dir: str | None = None
    run_name: str | None = None
    logging_dir: str | None = None
    report_to: None | str | list[str] = "none"  # this order: HfArgumentParser reads it so
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
    # --- logging ---
    logging_strategy: str = "steps"
    logging_steps: float = 500
    logging_first_step: bool = False
    disable_tqdm: bool | None = None
    include_num_input_tokens_seen: str | bool = "no"
    log_level: str = "passive"
    log_level_replica: str = "warning"  # one process: there are no replicas
    log_on_each_node: bool = True  # one process: one node
    project: str = "huggingface"  # the project name report_to integrations log under
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
    # --- hub ---
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    hub_strategy: str = "every_save"
    hub_private_repo: bool | None = None
    # --- reproducibility ---
    seed: int = 42
    data_seed: int | None = None
    full_determinism: bool = False
    # --- data loading ---
    dataloader_drop_last: bool = False
    dataloader_num_workers: int = 0
    dataloader_pin_memory: bool = True
    dataloader_persistent_workers: bool = False
    dataloader_prefetch_factor: int | None = None
    remove_unused_columns: bool = True
    label_names: list[str] | None = None
    length_column_name: str = "length"  # read only by group_by_length sampling (refused)
    # --- script flags (read by user scripts, not by the trainer) ---
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Derives the dependent defaults and raises TrainingArgumentsError listing every
        invalid value; train() calls it again, after any assignment to the fields."""
        _normalise(self)
        problems = _problems(self)
        if problems:
            raise TrainingArgumentsError(problems)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not fields: the refused Transformers fields read as
        # their Transformers default (scripts read e.g. args.local_rank).
        if name in REFUSED:
            return REFUSED[name][0]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        names = field_names(type(self))
        if name in REFUSED and name not in names:
            reason = refusal(name, value)
            if reason is not None:
                raise TrainingArgumentsError([ArgumentProblem(name, value, reason, text=reason)])
            return
        # A typo'd field name is an error rather than a silently ignored attribute; a
        # subclass's own class attributes (a property with a setter, say) may be assigned, and
        # its __post_init__ may set any attribute (and later assign it again).
        known = (
            name in names
            or name.startswith("_")
            or hasattr(type(self), name)
            or name in self.__dict__
        )
        if not known and not self.__dict__.get(_CONSTRUCTING):
            raise TrainingArgumentsError([_unknown_field(name, value, names)], unknown_fields=True)
        object.__setattr__(self, name, value)

    # --- the process and device (Transformers names; always one process here) ---
    @property
    def device(self) -> Any:
        import torch

        return torch.device("cuda" if torch.cuda.is_available() and not self.use_cpu else "cpu")

    @property
    def n_gpu(self) -> int:
        # One device even on a multi-GPU machine: no DataParallel.
        return 1 if self.device.type == "cuda" else 0

    # Under torch.distributed (torchrun, or hpo's `trial_processes`) these are the process
    # group's values, so a callback that checks `args.should_save` writes from one rank only.
    @property
    def world_size(self) -> int:
        """Processes training together (1 without a process group)."""
        group = _process_group()
        return group[1] if group else 1

    @property
    def process_index(self) -> int:
        """This process's global rank (0 without a process group)."""
        group = _process_group()
        return group[0] if group else 0

    @property
    def local_process_index(self) -> int:
        """This process's rank on its machine: LOCAL_RANK as torchrun sets it, else the rank."""
        group = _process_group()
        if group is None:
            return 0
        return int(os.environ.get("LOCAL_RANK", group[0]))

    @property
    def should_save(self) -> bool:
        """Whether this process writes: the main process (of each node with save_on_each_node)."""
        if self.save_on_each_node:
            return self.local_process_index == 0
        return self.process_index == 0

    @property
    def should_log(self) -> bool:
        """Whether this process logs: the main process (of each node with log_on_each_node)."""
        if self.log_on_each_node:
            return self.local_process_index == 0
        return self.process_index == 0

    @property
    def parallel_mode(self) -> str:
        """Transformers' ParallelMode value."""
        return "distributed" if _process_group() else "not_parallel"

    # --- derived values (Transformers names) ---
    @property
    def train_batch_size(self) -> int:
        return self.per_device_train_batch_size

    @property
    def eval_batch_size(self) -> int:
        return self.per_device_eval_batch_size

    def get_warmup_steps(self, num_training_steps: int) -> int:
        """Warmup in optimizer steps: an absolute count, or a fraction of `num_training_steps`."""
        if self.warmup_steps >= 1 or self.warmup_steps == 0 and self.warmup_ratio == 0:
            return int(self.warmup_steps)
        ratio = self.warmup_steps if self.warmup_steps > 0 else self.warmup_ratio
        return int(-(-num_training_steps * ratio // 1))  # ceil, as Transformers does

    def to_dict(self) -> dict[str, Any]:
        """Plain values; the hub token is masked so the dict can be logged or stored."""
        values = dataclasses.asdict(self)
        if values.get("hub_token"):
            values["hub_token"] = "<HUB_TOKEN>"
        for key, value in values.items():
            if type(value).__module__ == "torch" and type(value).__name__ == "dtype":
                values[key] = str(value).split(".")[1]  # torch.float32 -> "float32", for JSON
        return values

    def to_sanitized_dict(self) -> dict[str, Any]:
        """to_dict() with only int / float / str / bool values (others as str), for TensorBoard
        hparams (Transformers' method, which its TensorBoard callback calls)."""
        valid = (bool, int, float, str)
        return {k: v if isinstance(v, valid) else str(v) for k, v in self.to_dict().items()}

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(TrainingArguments))
_FIELD_NAMES_OF: dict[type, frozenset[str]] = {TrainingArguments: FIELD_NAMES}


def field_names(args: Any) -> frozenset[str]:
    """The field names of a TrainingArguments instance or class, a subclass's own included."""
    cls = args if isinstance(args, type) else type(args)
    names = _FIELD_NAMES_OF.get(cls)
    if names is None:  # first use of a subclass (after @dataclass has made its fields)
        names = _FIELD_NAMES_OF[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


def _process_group() -> tuple[int, int] | None:
    """(rank, world size) of an initialised torch.distributed process group, else None.

    Read from `sys.modules` so that this module never imports torch itself: a process group
    exists only where something has imported torch.distributed already.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist.get_rank(), dist.get_world_size()


def _unknown_field(name: str, value: Any, names: frozenset[str] = FIELD_NAMES) -> ArgumentProblem:
    close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
    hint = (
        f"did you mean {close[0]!r}?" if close else "see trainer.TrainingArguments for the fields"
    )
    return ArgumentProblem(name, value, hint, text=f"{name!r} is not a field ({hint})")


def _set(args: TrainingArguments, name: str, value: Any) -> None:
    object.__setattr__(args, name, value)  # no per-field check: _normalise's own values


def _normalise(args: TrainingArguments) -> None:
    """Fill the defaults Transformers derives from other fields (done once, at creation)."""
    if args.output_dir is None:
        _set(args, "output_dir", "trainer_output")
    _set(args, "output_dir", os.path.expanduser(str(args.output_dir)))
    for name in (
        "lr_scheduler_type",
        "optim",
        "eval_strategy",
        "save_strategy",
        "logging_strategy",
    ):
        value = getattr(args, name)
        if hasattr(value, "value"):  # a Transformers enum member
            _set(args, name, value.value)
    if isinstance(args.lr_scheduler_kwargs, str) and args.lr_scheduler_kwargs.startswith("{"):
        _set(args, "lr_scheduler_kwargs", json.loads(args.lr_scheduler_kwargs))
    if isinstance(args.report_to, str):
        _set(args, "report_to", [] if args.report_to == "none" else [args.report_to])
    if args.report_to is None or args.report_to == ["none"]:
        _set(args, "report_to", [])
    # The lines above made report_to a list; mypy does not follow `_set`.
    if _in_kubeflow_trainjob() and "kubeflow" not in args.report_to:  # type: ignore[operator]
        _set(args, "report_to", [*args.report_to, "kubeflow"])  # type: ignore[misc]
    if args.eval_strategy != "no" and args.do_eval is False:
        _set(args, "do_eval", True)
    # A compile mode or backend asks for compilation; inductor is torch.compile's own default.
    if args.torch_compile_mode is not None or args.torch_compile_backend is not None:
        _set(args, "torch_compile", True)
    if args.torch_compile and args.torch_compile_backend is None:
        _set(args, "torch_compile_backend", "inductor")
    if args.use_cpu:
        _set(args, "dataloader_pin_memory", False)  # no accelerator memory to pin for
    for name in ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"):
        if isinstance(getattr(args, name), str):
            _set(args, name, json.loads(getattr(args, name)))
    if isinstance(args.include_num_input_tokens_seen, bool):
        mode = "all" if args.include_num_input_tokens_seen else "no"
        _set(args, "include_num_input_tokens_seen", mode)
    if args.eval_strategy == "steps" and not args.eval_steps:
        _set(args, "eval_steps", args.logging_steps)
    if args.load_best_model_at_end and args.metric_for_best_model is None:
        _set(args, "metric_for_best_model", "loss")
    if args.greater_is_better is None and args.metric_for_best_model is not None:
        _set(args, "greater_is_better", not args.metric_for_best_model.endswith("loss"))
    for name in ("logging_steps", "eval_steps", "save_steps", "warmup_steps"):
        value = getattr(args, name)
        if isinstance(value, float) and value >= 1 and value == int(value):
            _set(args, name, int(value))


def _in_kubeflow_trainjob() -> bool:
    """Transformers' test (is_kubeflow_available): inside a Kubeflow TrainJob its callback
    reports progress, unless DISABLE_KUBEFLOW_INTEGRATION is true."""
    if os.environ.get("DISABLE_KUBEFLOW_INTEGRATION", "FALSE").upper() == "TRUE":
        return False
    return os.environ.get("KUBEFLOW_TRAINER_SERVER_URL") is not None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _problems(args: TrainingArguments) -> list[ArgumentProblem]:
    """Every invalid value at once, each naming the field, the value and what is allowed."""
    problems: list[ArgumentProblem] = []

    def need(ok: bool, name: str, allowed: str) -> None:
        if not ok:
            problems.append(ArgumentProblem(name, getattr(args, name), allowed))

    for name in ("per_device_train_batch_size", "per_device_eval_batch_size"):
        need(_is_int(getattr(args, name)) and getattr(args, name) >= 1, name, "an integer >= 1")
    need(
        _is_int(args.gradient_accumulation_steps) and args.gradient_accumulation_steps >= 1,
        "gradient_accumulation_steps",
        "an integer >= 1",
    )
    need(
        _is_int(args.max_steps) and (args.max_steps == -1 or args.max_steps > 0),
        "max_steps",
        "a positive integer, or -1 to train for num_train_epochs",
    )
    if args.max_steps == -1:
        need(
            _is_number(args.num_train_epochs) and args.num_train_epochs > 0,
            "num_train_epochs",
            "a number > 0 (or set max_steps)",
        )
    for name in ("learning_rate", "weight_decay", "adam_epsilon", "max_grad_norm"):
        need(_is_number(getattr(args, name)) and getattr(args, name) >= 0, name, "a number >= 0")
    for name in ("adam_beta1", "adam_beta2"):
        need(_is_number(getattr(args, name)) and 0 <= getattr(args, name) < 1, name, "in [0, 1)")
    need(args.optim in OPTIMIZER_NAMES, "optim", f"one of {', '.join(OPTIMIZER_NAMES)}")
    need(
        args.lr_scheduler_type in SCHEDULER_NAMES,
        "lr_scheduler_type",
        f"one of the transformers.get_scheduler names: {', '.join(SCHEDULER_NAMES)}",
    )
    for name in ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"):
        value = getattr(args, name)
        need(value is None or isinstance(value, dict), name, "a dict (or a JSON object string)")
    need(
        _is_number(args.label_smoothing_factor) and 0 <= args.label_smoothing_factor < 1,
        "label_smoothing_factor",
        "a number in [0, 1)",
    )
    need(
        args.neftune_noise_alpha is None
        or (_is_number(args.neftune_noise_alpha) and args.neftune_noise_alpha > 0),
        "neftune_noise_alpha",
        "None or a number > 0",
    )
    need(
        args.include_num_input_tokens_seen in INPUT_TOKEN_MODES,
        "include_num_input_tokens_seen",
        f"one of {', '.join(INPUT_TOKEN_MODES)} (or a bool)",
    )
    for name in ("log_level", "log_level_replica"):
        need(getattr(args, name) in LOG_LEVELS, name, f"one of {', '.join(LOG_LEVELS)}")
    need(
        args.torch_empty_cache_steps is None
        or (_is_int(args.torch_empty_cache_steps) and args.torch_empty_cache_steps >= 1),
        "torch_empty_cache_steps",
        "None or an integer >= 1",
    )
    need(
        args.lr_scheduler_kwargs is None or isinstance(args.lr_scheduler_kwargs, dict),
        "lr_scheduler_kwargs",
        "a dict (or a JSON object string)",
    )
    need(
        _is_number(args.warmup_steps)
        and args.warmup_steps >= 0
        and (args.warmup_steps < 1 or _is_int(args.warmup_steps)),
        "warmup_steps",
        "an integer >= 0 (steps) or a float in [0, 1) (fraction of the total steps)",
    )
    need(
        _is_number(args.warmup_ratio) and 0 <= args.warmup_ratio <= 1,
        "warmup_ratio",
        "a number in [0, 1]",
    )
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
    for name, allowed in (
        ("logging_strategy", INTERVAL_STRATEGIES),
        ("eval_strategy", INTERVAL_STRATEGIES),
        ("save_strategy", SAVE_STRATEGIES),
        ("hub_strategy", HUB_STRATEGIES),
    ):
        need(getattr(args, name) in allowed, name, f"one of {', '.join(allowed)}")
    for name in ("logging_steps", "save_steps"):
        need(_positive_steps(getattr(args, name)), name, "an integer >= 1 or a fraction in (0, 1)")
    if args.eval_strategy == "steps":
        need(
            _positive_steps(args.eval_steps),
            "eval_steps",
            "an integer >= 1 or a fraction in (0, 1)",
        )
    need(
        args.save_total_limit is None
        or (_is_int(args.save_total_limit) and args.save_total_limit >= 1),
        "save_total_limit",
        "None (keep all) or an integer >= 1",
    )
    need(_is_int(args.seed), "seed", "an integer")
    need(args.data_seed is None or _is_int(args.data_seed), "data_seed", "None or an integer")
    need(
        _is_int(args.dataloader_num_workers) and args.dataloader_num_workers >= 0,
        "dataloader_num_workers",
        "an integer >= 0",
    )
    need(
        args.dataloader_prefetch_factor is None or args.dataloader_num_workers != 0,
        "dataloader_prefetch_factor",
        "only valid with dataloader_num_workers > 0",
    )
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
    return problems


def _positive_steps(value: Any) -> bool:
    return _is_number(value) and (0 < value < 1 or (_is_int(value) and value >= 1))


def _best_model_problems(args: TrainingArguments) -> list[ArgumentProblem]:
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
    if args.eval_strategy == "steps" and _is_int(args.eval_steps) and _is_int(args.save_steps):
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
