"""Callbacks in the Transformers style: `on_*(args, state, control, **kwargs)` hooks.

A callback steers the loop only through `TrainerControl` flags: it may stop training or ask for
an evaluation, a save or a log at the current step. The trainer resets the per-step flags.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

from trainer.args import TrainingArguments
from trainer.state import TrainerState

logger = logging.getLogger(__name__)


@dataclass
class TrainerControl:
    """Flags callbacks set to steer the loop. `should_training_stop` ends training;
    `should_epoch_stop` ends the current epoch (cleared when the next one begins); the others
    ask for an evaluation, a save or a log at the current step and are cleared after it.

    As in Transformers, the save is decided after the step's evaluation: on_evaluate may clear
    `should_save` to cancel the checkpoint the save strategy asked for."""

    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_evaluate: bool = False
    should_save: bool = False
    should_log: bool = False


class TrainerCallback:
    """No-op hooks; override the ones you need. Keyword arguments include `model`,
    `optimizer`, `lr_scheduler`, `metrics` (on_evaluate), `logs` (on_log) and
    `checkpoint_dir` (on_save: the directory just written, also `state.last_checkpoint`)."""

    def on_init_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_predict(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        pass


class CallbackHandler:
    """Calls one event on every callback in order; a callback may return a new control."""

    def __init__(self, callbacks: list[Any]) -> None:
        self.callbacks: list[Any] = []
        for callback in callbacks:
            self.add(callback)

    def add(self, callback: Any) -> None:
        instance = callback() if isinstance(callback, type) else callback
        self.callbacks.append(instance)

    def pop(self, callback: Any) -> Any | None:
        for existing in self.callbacks:
            if existing is callback or (isinstance(callback, type) and type(existing) is callback):
                self.callbacks.remove(existing)
                return existing
        return None

    def call(
        self,
        event: str,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> TrainerControl:
        for callback in self.callbacks:
            hook = getattr(callback, event, None)
            if hook is None:
                continue
            result = hook(args, state, control, **kwargs)
            if isinstance(result, TrainerControl):
                control = result
        return control


class EarlyStoppingCallback(TrainerCallback):
    """Stops training when `metric_for_best_model` has not improved by more than
    `early_stopping_threshold` for `early_stopping_patience` evaluations in a row."""

    def __init__(
        self, early_stopping_patience: int = 1, early_stopping_threshold: float = 0.0
    ) -> None:
        if not isinstance(early_stopping_patience, int) or early_stopping_patience < 1:
            raise ValueError(
                f"early_stopping_patience={early_stopping_patience!r}: must be an integer >= 1"
            )
        if early_stopping_threshold < 0:
            raise ValueError(f"early_stopping_threshold={early_stopping_threshold!r}: must be >= 0")
        self.early_stopping_patience = early_stopping_patience
        self.early_stopping_threshold = early_stopping_threshold
        self.best: float | None = None
        self.patience_counter = 0

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.best = None
        self.patience_counter = 0

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        name = objective_name(args)
        metrics = kwargs.get("metrics") or {}
        if name not in metrics:
            # Transformers warns and goes on: an evaluate(test_ds, metric_key_prefix="test")
            # after training has test_* metrics only, and must not fail.
            logger.warning(
                "EarlyStoppingCallback watches %r (metric_for_best_model), but the evaluation "
                "returned only %s; early stopping skips this evaluation",
                name,
                sorted(metrics),
            )
            return
        value = float(metrics[name])
        greater = (
            args.greater_is_better
            if args.greater_is_better is not None
            else not name.endswith("loss")
        )
        improved = self.best is None or (
            value - self.best > self.early_stopping_threshold
            if greater
            else self.best - value > self.early_stopping_threshold
        )
        if improved:
            self.best = value
            self.patience_counter = 0
            return
        self.patience_counter += 1
        if self.patience_counter >= self.early_stopping_patience:
            control.should_training_stop = True


class ProgressCallback(TrainerCallback):
    """Log and evaluation rows as Transformers prints them, one line per row on stdout
    (`{'loss': '2.31', 'learning_rate': '5e-05', 'epoch': '0.5'}`), and a tqdm bar over
    optimizer steps on a terminal.

    `disable_tqdm=None` shows the bar only on a terminal (Transformers shows it everywhere, which
    fills log files with bar redraws); off a terminal, and with `disable_tqdm=True`
    (Transformers' PrinterCallback), the rows are printed without a bar. As with Transformers,
    rows print during train(), and always with disable_tqdm=True.
    """

    def __init__(self) -> None:
        self.bar: Any = None
        self.training = False

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.training = True
        disabled = args.disable_tqdm if args.disable_tqdm is not None else not sys.stderr.isatty()
        if disabled:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not (self.training or args.disable_tqdm):
            return
        logs = kwargs.get("logs") or {}
        row = {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in logs.items()}
        row.pop("total_flos", None)
        if self.bar is not None:
            self.bar.write(str(row))
        else:
            print(row, flush=True)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.training = False
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def objective_name(args: TrainingArguments) -> str:
    """`metric_for_best_model` with the `eval_` prefix Transformers adds (default eval_loss)."""
    name = args.metric_for_best_model or "loss"
    return name if name.startswith("eval_") else f"eval_{name}"
