"""Transformers 5 TrainingArguments fields that trainer.TrainingArguments accepts only at their
Transformers default, each with the reason a different value is refused.

Kept apart from `trainer/args.py` (and torch-free, like it) so that the dataclass lists only the
fields the trainer honours. `tests/trainer/test_args_compat.py` checks, against the installed
transformers, that every one of its fields is either a field here or in this table, with the
same default.
"""

from __future__ import annotations

from typing import Any

_ONE_PROCESS = (
    "trainer.Trainer trains on one device per process; several processes are plain "
    "torch.distributed (start them with torchrun), without DDP, FSDP or DeepSpeed options"
)
_LIGER = "Liger kernels are not supported; leave it off"

# name -> (Transformers' default, why another value is refused)
REFUSED: dict[str, tuple[Any, str]] = {
    "optim_target_modules": (None, "GaLore/APOLLO optimizers (which read it) are not supported"),
    "use_liger_kernel": (False, _LIGER),
    "liger_kernel_config": (None, _LIGER),
    "logging_nan_inf_filter": (
        True,
        "a NaN or infinite loss stops training with NonFiniteLossError; there is nothing left to filter",
    ),
    "trackio_space_id": (None, "report_to='trackio' is not supported"),
    "trackio_bucket_id": (None, "report_to='trackio' is not supported"),
    "trackio_static_space_id": (None, "report_to='trackio' is not supported"),
    "eval_do_concat_batches": (True, "predictions are always concatenated across batches"),
    "include_for_metrics": (
        [],
        "EvalPrediction carries predictions and label_ids only (no inputs or losses)",
    ),
    "parallelism_config": (None, _ONE_PROCESS),
    "dataloader_in_order": (True, "batches are always produced in order"),
    "train_sampling_strategy": (
        "random",
        "only the random (seeded, resumable) epoch order is supported",
    ),
    "ddp_find_unused_parameters": (None, _ONE_PROCESS),
    "ddp_bucket_cap_mb": (None, _ONE_PROCESS),
    "ddp_broadcast_buffers": (None, _ONE_PROCESS),
    "ddp_static_graph": (None, _ONE_PROCESS),
    "ddp_backend": (None, _ONE_PROCESS),
    "ddp_timeout": (1800, _ONE_PROCESS),
    "fsdp": (None, _ONE_PROCESS),
    "fsdp_config": (None, _ONE_PROCESS),
    "deepspeed": (None, _ONE_PROCESS),
    "local_rank": (-1, _ONE_PROCESS),
    "debug": ("", "debug modes (underflow_overflow, tpu_metrics_debug) are not supported"),
    "skip_memory_metrics": (True, "memory metrics are not reported"),
    "hub_always_push": (False, "not supported by trainer's Hub upload"),
    "hub_revision": (None, "not supported by trainer's Hub upload"),
    "dataloader_multiprocessing_context": (
        None,
        "DataLoader workers use the platform's default start method",
    ),
}


def refusal(name: str, value: Any) -> str | None:
    """Why `name=value` is refused, or None when it is a field of this table at its default."""
    default, reason = REFUSED[name]
    if value == default or (value is None and default == []):
        return None
    return f"{name}={value!r} is not supported ({reason}); leave it at {default!r}"
