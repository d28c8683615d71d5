"""auto_find_batch_size: on out-of-memory, start over with a smaller per-device batch.

`find_executable_batch_size` knows nothing of the Trainer (like Transformers' function of that
name): it calls `function(batch_size, accumulation_steps)` and, on out-of-memory, calls it again
with half the batch or less. Each retry is a fresh attempt: the caller's `function` rebuilds
the model (through model_init, or from the initial weights) and the optimizer, and
gradient_accumulation_steps is raised so the effective batch stays the one asked for.
(Transformers keeps the half-trained weights and optimizer state and leaves accumulation as it
was, which silently changes the run.) The size found is stored in the trainer state, and a
resume from that state uses it (`batch_size_to_resume`).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from trainer.state import TrainerState

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


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


def batch_size_to_resume(
    saved: TrainerState, batch_size: int, accumulation_steps: int
) -> tuple[int, int]:
    """The (batch size, accumulation) a previous search settled on, when it was searching for
    the same effective batch; else the ones asked for (a PBT mutation of the batch size trains
    with the size it asks for)."""
    if saved.train_batch_size and (
        saved.train_batch_size * saved.gradient_accumulation_steps
        == batch_size * accumulation_steps
    ):
        return saved.train_batch_size, saved.gradient_accumulation_steps
    return batch_size, accumulation_steps


def find_executable_batch_size(
    function: Callable[[int, int], Result],
    starting_batch_size: int,
    accumulation_steps: int = 1,
    *,
    auto_find_batch_size: bool = True,
    before_retry: Callable[[], None] | None = None,
) -> Result:
    """`function(batch_size, accumulation_steps)`, retried with a smaller batch (and as much
    more accumulation) each time it runs out of memory, until a size fits or none is left.

    `before_retry` runs after a failed attempt's frames are cleared and before the next
    attempt, to let the failed attempt's model and optimizer go. Without auto_find_batch_size,
    `function` runs once and an out-of-memory error propagates.
    """
    batch, accumulation = starting_batch_size, accumulation_steps
    if not auto_find_batch_size:
        return function(batch, accumulation)
    effective = batch * accumulation
    while True:
        try:
            return function(batch, accumulation)
        except Exception as error:
            smaller = smaller_batch(batch, effective) if is_out_of_memory(error) else None
            if smaller is None:
                raise
            # Let the failed attempt's model and optimizer go before building the next one.
            traceback.clear_frames(error.__traceback__)
            message: Any = str(error).splitlines()[0] if str(error) else type(error).__name__
        if before_retry is not None:
            before_retry()
        logger.warning(
            "out of memory with per_device_train_batch_size=%d (%s); retrying from scratch with %d "
            "and gradient_accumulation_steps=%d",
            batch,
            message,
            smaller,
            effective // smaller,
        )
        batch, accumulation = smaller, effective // smaller
