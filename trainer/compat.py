"""Every call this package makes into a library's private or unstable surface, one section per
library, each with a test in tests/trainer/test_compat.py that runs it against the installed
version: a release that moves one of these fails that test by name.

Imports are lazy: `import trainer` loads neither torch's compiler nor ray.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

# --- torch ---


def uncompiled(model: Any) -> Any:
    """The module `torch.compile(model)` wrapped, or `model` itself when it is not compiled.

    torch has no public accessor for the wrapped module; `_orig_mod` is what `torch.compile`'s
    OptimizedModule stores it in (and what Transformers and Accelerate unwrap as well).
    """
    return getattr(model, "_orig_mod", model)


def reschedule_from(scheduler: Any, base_lr: float) -> None:
    """Makes a LambdaLR-style scheduler (`base_lrs` and `lr_lambdas`, as every Transformers
    schedule is) run from `base_lr` at its current position: every group's `lr` and the
    scheduler's `get_last_lr()` become `base_lr * lr_lambda(last_epoch)`.

    Public API only: the position is stepped back by one and stepped again, which recomputes
    the rates the way the scheduler itself does.
    """
    scheduler.base_lrs = [base_lr for _ in scheduler.optimizer.param_groups]
    scheduler.last_epoch -= 1
    with warnings.catch_warnings():
        # torch warns about a step() it believes comes before optimizer.step(); this one
        # replays a position, it does not advance the schedule.
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()


# --- ray ---


def in_tune_session() -> bool:
    """Whether this process is running a Ray Tune trial function right now.

    False without importing ray when Tune is not loaded (no trial of it can be running then).
    Outside a trial, `get_trial_id()` warns once and returns None; the warning is for users who
    call it by mistake, this is a deliberate question.
    """
    tune = sys.modules.get("ray.tune")
    if tune is None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tune.get_context().get_trial_id() is not None


# --- transformers ---


def generation_default(name: str) -> Any:
    """The value generate() uses for `name` when neither the call nor the model's generation
    config sets it (max_length: 20). Transformers 5 keeps these defaults in a private static
    method of GenerationConfig, and Seq2SeqTrainer pads its predictions to them."""
    from transformers import GenerationConfig

    return GenerationConfig._get_default_generation_params()[name]
