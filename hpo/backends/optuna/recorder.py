"""What a training trial keeps up to date in the storage while it trains (`StorageRecorder`)."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    FIRST_STEP_ATTR,
    LAST_CHECKPOINT_ATTR,
    PROGRESS_ATTR,
    PROGRESS_MAX_STEPS_KEY,
    PROGRESS_RATE_KEY,
    STEP_KEY,
)
from hpo.storage.optuna_compat import set_user_attrs

if TYPE_CHECKING:
    import optuna


class StorageRecorder:
    """A trainer callback that keeps the storage up to date while the trial trains.

    On every save: `last_checkpoint` (what a retry resumes from) and, when it changed,
    `best_checkpoint`. On the first step of a resumed trial: `first_step` (past 0). At every
    step end: a pending stop request ends training with a checkpoint at the current step.
    For each log (training or evaluation) at a new step: `progress`, what the live view shows.
    Progress rides along with that step's checkpoint record when the step saves one, else it
    is written before the next step begins, or after training by the worker with the train
    metrics (`write_pending`): one storage write per logging step at most, and none of its
    own at a step that saves. A fresh trial writes no progress before its first log (the live
    view shows it at step 0); a resumed one writes where it resumed at once.
    """

    def __init__(self, trial: optuna.Trial, stop: threading.Event, *, resumed: bool = False):
        self._trial = trial
        self._stop = stop
        self._first_step_seen = not resumed  # a fresh trial's first step is 1: nothing to say
        self._best: str | None = None
        self.interrupted = False
        self.last_step = 0
        self._began: tuple[float, int] | None = None  # (time, step) when this run began
        self._progress_step: int | None = None
        self._pending: dict[str, Any] = {}  # progress not yet written

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._began = (time.monotonic(), int(state.global_step))
        if state.global_step > 0:  # resumed: show where at once
            self._note_progress(state)
            self.write_pending()

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._note_progress(state)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.write_pending()

    def _note_progress(self, state: Any) -> None:
        step = int(state.global_step)
        if step == self._progress_step or self._began is None:
            return  # a training log and an evaluation at one step: one write
        self._progress_step = step
        began_at, first = self._began
        elapsed = time.monotonic() - began_at
        rate = (step - first) / elapsed if step > first and elapsed > 0 else None
        progress = {
            STEP_KEY: step,
            PROGRESS_MAX_STEPS_KEY: int(state.max_steps),
            PROGRESS_RATE_KEY: rate,
        }
        self._pending = {PROGRESS_ATTR: progress}

    def _take_pending(self) -> dict[str, Any]:
        pending, self._pending = self._pending, {}
        return pending

    def write_pending(self, more: dict[str, Any] | None = None) -> None:
        """Writes the progress not yet written, with `more` attrs, in one storage write."""
        attrs = {**self._take_pending(), **(more or {})}
        if attrs:
            set_user_attrs(self._trial, attrs)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.last_step = int(state.global_step)
        if not self._first_step_seen:
            self._first_step_seen = True
            self._trial.set_user_attr(FIRST_STEP_ATTR, int(state.global_step))
        if self._stop.is_set() and not self.interrupted:
            self.interrupted = True
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        checkpoint = kwargs.get("checkpoint_dir") or getattr(state, "last_checkpoint", None)
        checkpoint = checkpoint or os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        # One storage write for the checkpoint, the best one when it is also that, and the
        # progress of this step.
        attrs = {LAST_CHECKPOINT_ATTR: str(checkpoint), **self._new_best(state)}
        set_user_attrs(self._trial, {**attrs, **self._take_pending()})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Left pending: the worker writes it with the trial's train metrics (or before it
        # tells a pruned or interrupted trial), in one commit.
        self._pending.update(self._new_best(state))

    def _new_best(self, state: Any) -> dict[str, str]:
        """{BEST_CHECKPOINT_ATTR: path} when the best checkpoint changed since it was written."""
        best = getattr(state, "best_model_checkpoint", None)
        if not best or best == self._best:
            return {}
        self._best = str(best)
        return {BEST_CHECKPOINT_ATTR: self._best}
