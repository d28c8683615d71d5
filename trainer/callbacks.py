"""Callbacks in the Transformers style: `on_*(args, state, control, **kwargs)` hooks.

A callback steers the loop only through `TrainerControl` flags: it may stop training or ask for
an evaluation, a save or a log at the current step. The trainer resets the per-step flags.

The handler keeps Transformers' `CallbackHandler` contract: the same event methods (each
resetting the same flags before the callbacks run), `add_callback` / `pop_callback` /
`remove_callback` matching a class with isinstance (so `pop_callback(transformers.PrinterCallback)`
finds the default printer, which is Transformers' class), and the same warning when one callback
class is added twice. The default callbacks themselves live in `trainer/default_callbacks.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from trainer.args import TrainingArguments
from trainer.keys import eval_metric_key
from trainer.state import TrainerState

logger = logging.getLogger(__name__)
# Transformers' own logger for the messages Transformers prints word for word, so that
# `transformers.logging.set_verbosity_error()` and filters written for them silence ours too.
transformers_logger = logging.getLogger("transformers.trainer_callback")


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

    def on_pre_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """After the gradients of a step are complete (and clipped), before optimizer.step()."""

    def on_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Right after optimizer.step(), before the scheduler steps and the gradients are zeroed."""

    def on_substep_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """After each micro-batch of gradient accumulation but the step's last one."""

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """After each batch of an evaluation or prediction pass."""

    def on_push_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Before an upload to the Hub (push_to_hub, or a checkpoint's push)."""

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


# The flags Transformers' CallbackHandler clears before it calls each event's callbacks.
_CLEARED_BEFORE = {
    "on_train_begin": ("should_training_stop",),
    "on_epoch_begin": ("should_epoch_stop",),
    "on_step_begin": ("should_log", "should_evaluate", "should_save"),
    "on_evaluate": ("should_evaluate",),
    "on_save": ("should_save",),
    "on_log": ("should_log",),
}

EVENTS = (
    "on_init_end",
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_step_begin",
    "on_pre_optimizer_step",
    "on_optimizer_step",
    "on_substep_end",
    "on_step_end",
    "on_evaluate",
    "on_predict",
    "on_save",
    "on_log",
    "on_prediction_step",
    "on_push_begin",
)


class CallbackHandler:
    """Calls one event on every callback in order; a callback may return a new control.

    Transformers' methods and names: `add_callback`, `pop_callback`, `remove_callback`,
    `callback_list`, `call_event` and one method per event (`handler.on_log(args, state,
    control, logs=...)`). The model, optimizer and scheduler passed to every callback are the
    trainer's current ones (the trainer hands them to `call`)."""

    def __init__(
        self,
        callbacks: list[Any],
        model: Any = None,
        processing_class: Any = None,
        optimizer: Any = None,
        lr_scheduler: Any = None,
    ) -> None:
        self.callbacks: list[Any] = []
        for callback in callbacks:
            self.add_callback(callback)
        self.model = model
        self.processing_class = processing_class
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.train_dataloader: Any = None
        self.eval_dataloader: Any = None

    @property
    def callback_list(self) -> str:
        return "\n".join(type(callback).__name__ for callback in self.callbacks)

    def add_callback(self, callback: Any) -> None:
        """Adds a callback (a class is instantiated); warns, in Transformers' words, when one of
        the same class is already there (it is added all the same, as Transformers does)."""
        instance = callback() if isinstance(callback, type) else callback
        cls = callback if isinstance(callback, type) else type(callback)
        if cls in [type(existing) for existing in self.callbacks]:
            transformers_logger.warning(
                f"You are adding a {cls} to the callbacks of this Trainer, but there is already "
                "one. The current list of callbacks is\n:" + self.callback_list
            )
        self.callbacks.append(instance)

    def pop_callback(self, callback: Any) -> Any | None:
        """Removes and returns the first callback that is `callback` or (a class) an instance of
        it; None when there is none."""
        for existing in self.callbacks:
            if _matches(existing, callback):
                self.callbacks.remove(existing)
                return existing
        return None

    def remove_callback(self, callback: Any) -> None:
        self.pop_callback(callback)

    # The names this handler had before it took Transformers' ones.
    add = add_callback
    pop = pop_callback

    def call(
        self,
        event: str,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> TrainerControl:
        for flag in _CLEARED_BEFORE.get(event, ()):
            setattr(control, flag, False)
        for callback in self.callbacks:
            hook = getattr(callback, event, None)
            if hook is None:
                continue
            result = hook(args, state, control, **kwargs)
            if result is not None and type(result).__name__ == "TrainerControl":
                # ours or Transformers' (a callback written for Transformers may build its own)
                control = result
        return control

    def call_event(
        self,
        event: str,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> TrainerControl:
        """Transformers' entry point: `event` with the handler's model, processing_class,
        optimizer, lr_scheduler and dataloaders (unless given)."""
        for name in ("model", "processing_class", "optimizer", "lr_scheduler"):
            kwargs.setdefault(name, getattr(self, name))
        kwargs.setdefault("train_dataloader", self.train_dataloader)
        kwargs.setdefault("eval_dataloader", self.eval_dataloader)
        return self.call(event, args, state, control, **kwargs)


def _event_method(event: str) -> Any:
    def method(
        self: CallbackHandler,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> TrainerControl:
        return self.call_event(event, args, state, control, **kwargs)

    method.__name__ = event
    method.__doc__ = f"Calls `{event}` on every callback (Transformers' handler method)."
    return method


for _event in EVENTS:
    setattr(CallbackHandler, _event, _event_method(_event))


def _matches(existing: Any, wanted: Any) -> bool:
    if isinstance(wanted, type):
        return isinstance(existing, wanted)
    return existing is wanted


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


def objective_name(args: TrainingArguments) -> str:
    """`metric_for_best_model` with the `eval_` prefix Transformers adds (default eval_loss)."""
    return eval_metric_key(args.metric_for_best_model or "loss")
