"""TrainingArguments: Transformers' field names, defaults and meanings, checked on creation and
again when train() starts (fields may be assigned in between, as in Transformers).

This module and the modules of its fields must stay importable without torch: the orchestrator
inspects the fields of `TrainingArguments` (for search spaces, study validation) in processes
that never train.

The fields come in groups, each in the module that holds its derived defaults and its checks,
so that a field and its rule are changed together: `trainer/args_logging.py` (output, logging,
Hub), `trainer/args_optim.py` (duration, optimizer and schedule, precision, loss),
`trainer/args_saving.py` (evaluation, checkpoints); the reproducibility, data-loading and
script fields are here. `TrainingArguments` is a dataclass over those groups (its bases), in
Transformers' order. Here too: the construction check (a metaclass, so that `@dataclass`
subclasses keep it), the refused fields, and the process properties.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainer.args_logging import (
    HubFields,
    LoggingFields,
    OutputFields,
    check_hub_strategy,
    check_log_levels,
    check_logging_steps,
    check_logging_strategy,
    normalise_logging,
    normalise_output,
)
from trainer.args_optim import OPTIMIZER_NAMES as OPTIMIZER_NAMES
from trainer.args_optim import SCHEDULER_NAMES as SCHEDULER_NAMES
from trainer.args_optim import (
    OptimizationFields,
    check_duration,
    check_model_options,
    check_optimizer,
    check_precision,
    check_schedule,
    normalise_optimization,
)
from trainer.args_problems import ArgumentProblem as ArgumentProblem
from trainer.args_problems import Problems, is_int, set_derived
from trainer.args_problems import TrainingArgumentsError as TrainingArgumentsError
from trainer.args_saving import (
    CheckpointFields,
    EvaluationFields,
    check_intervals,
    check_needs_evaluations,
    check_save_steps,
    check_strategies,
    normalise_saving,
)
from trainer.refused_args import REFUSED, refusal

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
        instance = cls.__new__(cls)  # type: ignore[call-overload]
        object.__setattr__(instance, _CONSTRUCTING, True)
        try:
            instance.__init__(*args, **kwargs)
        finally:
            instance.__dict__.pop(_CONSTRUCTING, None)
        return instance


@dataclass
class TrainingArguments(
    HubFields,
    CheckpointFields,
    EvaluationFields,
    LoggingFields,
    OptimizationFields,
    OutputFields,
    metaclass=_CheckedConstruction,
):
    """The arguments of one training run; `dataclasses.replace(args, **changes)` makes a variant.

    Field names, defaults and meanings follow `transformers.TrainingArguments` (5.x), so a script
    written for Transformers runs unchanged. Every value is checked when the object is created
    and again by `validate()` when train() starts, since fields may be assigned in between.
    Transformers fields the trainer does not implement (`trainer/refused_args.py`) read as their
    default and are refused, with the reason, at any other value. A `@dataclass` subclass may
    add fields (`Seq2SeqTrainingArguments` does), and keeps these checks.

    The fields of the bases come first, last base first (a dataclass orders fields so): output,
    optimization, logging, evaluation, checkpoints, Hub; then this class's own.
    """

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
        for normalise in _NORMALISE:
            normalise(self)
        problems = Problems(self)
        for check in _CHECKS:
            check(self, problems)
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


def _normalise_run(args: TrainingArguments) -> None:
    if args.use_cpu:
        set_derived(args, "dataloader_pin_memory", False)  # no accelerator memory to pin for


def _check_run(args: TrainingArguments, problems: Problems) -> None:
    """Seeds and data loading."""
    need = problems.need
    need(is_int(args.seed), "seed", "an integer")
    need(args.data_seed is None or is_int(args.data_seed), "data_seed", "None or an integer")
    need(
        is_int(args.dataloader_num_workers) and args.dataloader_num_workers >= 0,
        "dataloader_num_workers",
        "an integer >= 0",
    )
    need(
        args.dataloader_prefetch_factor is None or args.dataloader_num_workers != 0,
        "dataloader_prefetch_factor",
        "only valid with dataloader_num_workers > 0",
    )


# The defaults Transformers derives from other fields. The saving fields' come after the logging
# fields' (eval_steps defaults to logging_steps).
_NORMALISE: tuple[Callable[[Any], None], ...] = (
    normalise_output,
    normalise_optimization,
    normalise_logging,
    normalise_saving,
    _normalise_run,
)
# Every check, in the order an error lists its problems (the order a message has always had).
_CHECKS: tuple[Callable[[Any, Problems], None], ...] = (
    check_duration,
    check_optimizer,
    check_model_options,
    check_log_levels,
    check_schedule,
    check_precision,
    check_logging_strategy,
    check_strategies,
    check_hub_strategy,
    check_logging_steps,
    check_save_steps,
    check_intervals,
    _check_run,
    check_needs_evaluations,
)
