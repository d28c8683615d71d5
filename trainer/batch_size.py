"""auto_find_batch_size: on out-of-memory, start over with a smaller per-device batch.

Each retry rebuilds the model (through model_init, or from the initial weights) and the
optimizer, and raises gradient_accumulation_steps so the effective batch stays the one asked
for. (Transformers keeps the half-trained weights and optimizer state and leaves accumulation
as it was, which silently changes the run.) The size found is stored in the trainer state, and a
resume from that state uses it.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from typing import TYPE_CHECKING, Any

import torch

from trainer import checkpoint as ckpt

if TYPE_CHECKING:
    from trainer.state import TrainOutput
    from trainer.trainer import Trainer
    from trainer.trial import TrialPlan

logger = logging.getLogger(__name__)


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def smaller_batch(batch_size: int, effective_batch: int) -> int | None:
    """The largest divisor of the effective batch that is at most half the current batch, so
    that batch * accumulation stays exactly the effective batch; None below 1."""
    for candidate in range(batch_size // 2, 0, -1):
        if effective_batch % candidate == 0:
            return candidate
    return None


def run_with_batch_size_search(
    trainer: Trainer,
    plan: TrialPlan,
    checkpoint: str | None,
    ignore_keys_for_eval: list[str] | None,
) -> TrainOutput:
    args = trainer.args
    batch, accumulation = args.per_device_train_batch_size, args.gradient_accumulation_steps
    if checkpoint is not None and args.auto_find_batch_size:
        saved = ckpt.read_state(checkpoint)
        # The size a previous search settled on, for the same effective batch. A run that asks
        # for another batch size (a PBT mutation) trains with the size it asks for.
        if saved.train_batch_size and (
            saved.train_batch_size * saved.gradient_accumulation_steps == batch * accumulation
        ):
            batch, accumulation = saved.train_batch_size, saved.gradient_accumulation_steps
    effective = batch * accumulation
    while True:
        trainer.args = dataclasses.replace(
            args, per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation
        )
        if not args.auto_find_batch_size:
            return trainer._train_once(plan, checkpoint, batch, accumulation, ignore_keys_for_eval)
        try:
            return trainer._train_once(plan, checkpoint, batch, accumulation, ignore_keys_for_eval)
        except Exception as error:
            smaller = smaller_batch(batch, effective) if is_out_of_memory(error) else None
            if smaller is None:
                raise
            # Let the failed attempt's model and optimizer go before building the next one.
            traceback.clear_frames(error.__traceback__)
            message: Any = str(error).splitlines()[0] if str(error) else type(error).__name__
        trainer._release(keep_model=trainer.model_init is None)
        logger.warning(
            "out of memory with per_device_train_batch_size=%d (%s); retrying from scratch with %d "
            "and gradient_accumulation_steps=%d",
            batch,
            message,
            smaller,
            effective // smaller,
        )
        batch, accumulation = smaller, effective // smaller
        checkpoint = None  # positions in a checkpoint count batches of the old size
