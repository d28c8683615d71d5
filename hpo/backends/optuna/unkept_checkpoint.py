"""No last checkpoint for a trial that retention would delete the moment it completes.

Under `keep: best` a finished trial keeps a checkpoint only while it is the study's best
(hpo.storage.retention). When the evaluation at a trial's last step gives the trial's value
(no separate final evaluation follows) and a finished trial of the study is already strictly
better, nothing will ever load this trial's last checkpoint: writing it, recording it, and
retention clearing the record and deleting the folder soon after are work the search does not
need. For a short trial that is most of what it costs beyond Optuna's own bookkeeping.

The trainer decides a save after the step's evaluation (as Transformers does), so the callback
cancels it from on_evaluate. The trial is told COMPLETE right after training; a worker killed
in that window leaves it to be resumed from its previous checkpoint, one evaluation earlier.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

from hpo.backends.objective import TrialContext, metric_value
from hpo.errors import HpoError

if TYPE_CHECKING:
    import optuna


def applies(ctx: TrialContext) -> bool:
    """Whether a study's trials can know at their last evaluation that they will not be kept."""
    spec = ctx.spec
    return (
        spec.keep == "best"
        and not spec.objective.is_multi  # a Pareto front has no single value to beat
        and ctx.final_eval_dataset is None  # else the value comes after the last checkpoint
    )


class SkipUnkeptLastCheckpoint:
    """A trainer callback: at the last step's evaluation, cancel the save when a finished trial
    of the study is strictly better (a tie could still make this trial the one kept)."""

    def __init__(self, trial: optuna.Trial, ctx: TrialContext, stop: threading.Event):
        self._trial = trial
        self._metric = ctx.spec.objective.metrics[0]
        self._direction = ctx.spec.objective.directions[0]
        self._stop = stop  # an interrupted trial keeps its checkpoint: it is resumed from it

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step < state.max_steps or self._stop.is_set():
            return
        try:
            value = metric_value(kwargs.get("metrics") or {}, self._metric)
        except HpoError:
            return  # the trial fails on it when told; not this callback's concern
        if not math.isfinite(value):
            return  # the same: no query for a trial that will fail
        best = self._best_finished_value()
        if best is None:
            return
        if value > best if self._direction == "minimize" else value < best:
            control.should_save = False

    def _best_finished_value(self) -> float | None:
        from sqlalchemy.exc import SQLAlchemyError

        from hpo.storage.optuna_compat import best_finished_value

        try:
            return best_finished_value(self._trial.study, self._direction)
        except SQLAlchemyError:  # the storage cannot say now: keep the checkpoint
            return None
