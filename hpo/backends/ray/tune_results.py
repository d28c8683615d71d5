"""What the mirror reads from a Ray Tune trial and its results: the error that failed it, the
trainer's metrics, and values that can go into the storage (finite numbers, JSON)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from hpo.attrs import EVAL_PREFIX, STEP_KEY

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


def error_reason(trial: Trial) -> str:
    """The last line of the trial's error (the exception and its message), or a stand-in."""
    text = ""
    if trial.error_file:
        try:
            with open(trial.error_file, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # Tune prefixes each failure with "Failure # N (occurred at ...)"; the exception line
    # is the last line of the traceback that follows.
    lines = [line for line in lines if not line.startswith("Failure #")]
    return lines[-1][:2000] if lines else "the Ray trial failed (no error message recorded)"


def train_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The trainer's metrics in a Tune result (its last): what the Optuna backend records
    from TrainOutput.metrics, without Tune's own bookkeeping (time, iteration, node)."""
    return {
        key: float(value)
        for key, value in result.items()
        if key.startswith((EVAL_PREFIX, "train_")) or key in ("epoch", "loss", STEP_KEY)
        if is_number(value)
    }


def is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        out[key] = value.item() if hasattr(value, "item") else value
    return out
