"""The callbacks every Trainer starts with, composed as Transformers composes them.

`default_callbacks(args, callbacks)` is Transformers' list, in its order: `DefaultFlowCallback`,
the reporting integrations of `report_to`, the user's callbacks, then `PrinterCallback` when
`disable_tqdm` is True, else `ProgressCallback`.

`DefaultFlowCallback` and `PrinterCallback` are Transformers' own classes (re-exported by
`trainer`): their logic reads only fields our args and state share with Transformers', and one
class for both trainers means `trainer.pop_callback(transformers.PrinterCallback)`,
`remove_callback(DefaultFlowCallback)` and isinstance checks work whichever import a script
uses. `ProgressCallback` subclasses Transformers' one (so the same holds) and keeps our one
difference: with `disable_tqdm=None` the bar is drawn only on a terminal.

One difference in meaning: `DefaultFlowCallback` sets the control flags at Transformers' points,
so that the callbacks after it see them, but the loop keeps its own logging, evaluation and save
grid; removing it does not stop the loop from logging, evaluating or saving on that grid.
"""

from __future__ import annotations

import sys
from typing import Any

from transformers.trainer_callback import DefaultFlowCallback, PrinterCallback
from transformers.trainer_callback import ProgressCallback as _TransformersProgressCallback

from trainer.args import TrainingArguments
from trainer.callbacks import TrainerControl
from trainer.state import TrainerState


class ProgressCallback(_TransformersProgressCallback):
    """Log and evaluation rows as Transformers prints them, one line per row on stdout
    (`{'loss': '2.31', 'learning_rate': '5e-05', 'epoch': '0.5'}`), and a tqdm bar over
    optimizer steps (and one over evaluation batches) on a terminal.

    `disable_tqdm=None` shows the bars only on a terminal (Transformers shows them everywhere,
    which fills log files with bar redraws); off a terminal the rows are printed without a bar.
    `disable_tqdm=True` gives `PrinterCallback` instead of this one, as in Transformers.
    """

    # Transformers' bar attributes, which its untyped __init__ sets to None (tqdm bars later).
    training_bar: Any
    prediction_bar: Any

    def __init__(self, max_str_len: int = 100) -> None:
        super().__init__(max_str_len=max_str_len)
        self.bar: Any = None
        self.training = False

    @staticmethod
    def _bars_shown(args: TrainingArguments, state: TrainerState) -> bool:
        if not state.is_world_process_zero:
            return False
        disabled = args.disable_tqdm if args.disable_tqdm is not None else not sys.stderr.isatty()
        return not disabled

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.training = True
        if not self._bars_shown(args, state):
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True)
        self.training_bar = self.bar  # Transformers' attribute name

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        loader = kwargs.get("eval_dataloader")
        if not self._bars_shown(args, state) or loader is None or not hasattr(loader, "__len__"):
            return
        if self.prediction_bar is None:
            from tqdm.auto import tqdm

            self.prediction_bar = tqdm(
                total=len(loader), leave=self.bar is None, dynamic_ncols=True
            )
        self.prediction_bar.update(1)

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not self.training or not state.is_world_process_zero:
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
        self.bar = self.training_bar = None


def default_callbacks(
    args: TrainingArguments, reporting: list[Any], callbacks: list[Any] | None
) -> list[Any]:
    """Transformers' starting list (see the module doc); `reporting` are the integrations
    `report_to` names."""
    progress = PrinterCallback if args.disable_tqdm else ProgressCallback
    return [DefaultFlowCallback(), *reporting, *(callbacks or []), progress()]


__all__ = ["DefaultFlowCallback", "PrinterCallback", "ProgressCallback", "default_callbacks"]
